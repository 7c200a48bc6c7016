import { link, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import { inputErrorFrom, openInput } from './decode.js';
import { encodePipeline, type EncodeOptions } from './encode.js';
import { Intermediate } from './intermediate.js';
import { mergeAnnotations, type Annotations } from './operation.js';
import { serializePipeline } from './pipeline.js';
import { planStageTiles, stageOutputSize, type Stage, type StageTile, type TiledPlan } from './planner.js';
import type { TileResult, TileTask } from './tile-task.js';

/**
 * Where a tiled run stands, saved as tiles finish so a restarted master resumes the stage
 * without redoing finished tiles. Plain JSON. The intermediates it refers to live in the run's workDir.
 */
export interface TiledRunState {
  /** Index of the stage in progress (stages before it are complete). */
  stage: number;
  /** Tiles of that stage whose cores are written to the stage's output. */
  doneTiles: number[];
  /** Element-wise sum of the histograms the done tiles returned (for the next stage). */
  histogram?: number[];
  /** The previous stage's merged histogram, for this stage's leading statistics step. */
  mergedHistogram?: number[];
  annotations: Annotations;
}

/** Persistence of TiledRunState; saves arrive in order and each reflects the files on disk. */
export interface TiledRunCheckpoint {
  load(): Promise<TiledRunState | undefined>;
  save(state: TiledRunState): Promise<void>;
}

export interface TiledRunProgress {
  stage: number;
  stages: number;
  /** Tiles of the current stage done, and its tile count. */
  done: number;
  total: number;
}

export interface TiledRunOptions {
  plan: TiledPlan;
  /** Path of the uploaded (encoded) image. */
  source: string;
  /** The image's name as the user knows it, for error messages; default: the file name of `source`. */
  name?: string;
  /** Directory for the uncompressed intermediates, one per stage boundary; the caller removes it. */
  workDir: string;
  /** Format, quality, output options; `source` (the input file) for the metadata they keep. */
  output: EncodeOptions;
  maxPixels: number;
  /** Runs one task somewhere (in this process, or on a worker with retries). */
  runTile: (task: TileTask, signal: AbortSignal) => Promise<TileResult>;
  /** Tiles in flight at once; also bounds the tiles held in memory. */
  concurrency: number;
  checkpoint?: TiledRunCheckpoint;
  onProgress?: (progress: TiledRunProgress) => void;
  signal?: AbortSignal;
}

export interface TiledRunResult {
  /** The encoded output image. */
  data: Buffer;
  width: number;
  height: number;
  annotations: Annotations;
}

/** The input of stage `index` (the output of stage index - 1); the last one is the final image. */
const stageInputPath = (workDir: string, index: number) => join(workDir, `stage-${index}.v`);

/**
 * Runs a tiled plan on the master: decodes the upload once into an uncompressed intermediate, then for
 * each stage cuts tiles with their halo, hands them to `runTile` (at most `concurrency` at once), writes
 * the returned cores into the next intermediate and merges returned histograms; finally encodes the
 * last intermediate. Memory holds only the tiles in flight. Cancellation is checked between tiles.
 */
export async function runTiledImage(options: TiledRunOptions): Promise<TiledRunResult> {
  const { plan, workDir, checkpoint, signal } = options;
  let state: TiledRunState = (await checkpoint?.load()) ?? { stage: 0, doneTiles: [], annotations: {} };
  if (state.stage === 0 && state.doneTiles.length === 0) {
    signal?.throwIfAborted();
    const name = options.name ?? basename(options.source);
    const { pipeline } = await openInput(options.source, { maxPixels: options.maxPixels, name });
    const decoded = await Intermediate.fromPipeline(pipeline, stageInputPath(workDir, 0)).catch((error: unknown) => {
      throw inputErrorFrom(error, name);
    });
    await decoded.close();
  }
  for (let index = state.stage; index < plan.stages.length; index++) {
    state = await runStage(options, index, state);
    await checkpoint?.save(state);
    await rm(stageInputPath(workDir, index), { force: true });
  }
  const finalPath = stageInputPath(workDir, plan.stages.length);
  const final = await Intermediate.open(finalPath);
  const { width, height, channels } = final;
  await final.close();
  signal?.throwIfAborted();
  const data = await encodePipeline(sharp(finalPath, { limitInputPixels: false }), { channels }, options.output);
  return { data, width, height, annotations: state.annotations };
}

/** Runs stage `index` (resuming from `resume`) and returns the state that starts the next stage. */
async function runStage(options: TiledRunOptions, index: number, resume: TiledRunState): Promise<TiledRunState> {
  const { plan, workDir, checkpoint } = options;
  const stage = plan.stages[index];
  const input = await Intermediate.open(stageInputPath(workDir, index));
  const outputPath = stageInputPath(workDir, index + 1);
  const returnCore = stage.steps.length > 0;
  const done = new Set(resume.doneTiles);
  const annotations = structuredClone(resume.annotations);
  let histogram: Uint32Array | undefined = resume.histogram && Uint32Array.from(resume.histogram);
  let output = done.size > 0 && returnCore ? Intermediate.open(outputPath) : undefined;
  let saving: Promise<void> = Promise.resolve();
  try {
    const tiles = planStageTiles(stage, input, plan.tileSize);
    const outputSize = stageOutputSize(stage, input);
    const report = () =>
      options.onProgress?.({ stage: index, stages: plan.stages.length, done: done.size, total: tiles.length });
    report();

    const runOne = async (tile: StageTile, signal: AbortSignal) => {
      const task = await taskFor(stage, tile, input, resume.mergedHistogram, returnCore);
      signal.throwIfAborted();
      const result = await options.runTile(task, signal);
      if (returnCore) {
        if (!result.core) throw new Error(`tile ${tile.index} of stage ${index + 1} returned no pixels`);
        output ??= Intermediate.create(outputPath, outputSize ?? result.core, result.core.channels);
        await (await output).write(result.core, tile.core ?? { x: 0, y: 0 });
      }
      if (stage.histogramFor) histogram = addHistogram(histogram, result, tile);
      mergeAnnotations(annotations, result.annotations);
      done.add(tile.index);
      report();
      if (checkpoint) await saveProgress(checkpoint);
    };
    // One save covers every tile finished before it starts: tiles that finish while a save is waiting
    // share it, so a stage of n tiles does not write n ever-longer states one by one.
    let nextSave: Promise<void> | undefined;
    const saveProgress = (store: TiledRunCheckpoint): Promise<void> => {
      nextSave ??= saving
        .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
        .then(() => {
          nextSave = undefined;
          return store.save({
            stage: index,
            doneTiles: [...done],
            histogram: histogram && Array.from(histogram),
            mergedHistogram: resume.mergedHistogram,
            annotations: structuredClone(annotations),
          });
        });
      saving = nextSave;
      return nextSave;
    };
    const pending = tiles.filter((tile) => !done.has(tile.index));
    await runBounded(pending, options.concurrency, runOne, options.signal);
    if (!returnCore) {
      // A measuring stage leaves the pixels as they are: its output is its input.
      await link(input.path, outputPath).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
    }
    return { stage: index + 1, doneTiles: [], mergedHistogram: histogram && Array.from(histogram), annotations };
  } finally {
    await input.close();
    await (await output?.catch(() => undefined))?.close();
  }
}

async function taskFor(
  stage: Stage,
  tile: StageTile,
  input: Intermediate,
  mergedHistogram: number[] | undefined,
  returnCore: boolean,
): Promise<TileTask> {
  const task: TileTask = {
    steps: serializePipeline(stage.steps),
    tile: await input.read(tile.source),
    source: tile.source,
    imageSize: { width: input.width, height: input.height },
    returnCore,
  };
  if (tile.core) task.core = tile.core;
  if (stage.leadingStatistics) {
    if (!mergedHistogram) throw new Error('a stage starting with a statistics step has no merged histogram');
    task.histogram = Uint32Array.from(mergedHistogram);
  }
  if (stage.histogramFor) [task.histogramFor] = serializePipeline([stage.histogramFor]);
  return task;
}

function addHistogram(sum: Uint32Array | undefined, result: TileResult, tile: StageTile): Uint32Array {
  const part = result.histogram;
  if (!part) throw new Error(`tile ${tile.index} returned no histogram`);
  if (sum && sum.length !== part.length) {
    throw new Error(`tile ${tile.index} returned a histogram of ${part.length} bins, others ${sum.length}`);
  }
  const total = sum ?? new Uint32Array(part.length);
  for (let i = 0; i < total.length; i++) total[i] += part[i];
  return total;
}

/**
 * Runs `run` on every item with at most `concurrency` at once. The first failure (or the caller's
 * abort) stops starting new items and aborts the signal given to the running ones; waits for them
 * before rethrowing, so nothing writes after this returns.
 */
async function runBounded<T>(
  items: readonly T[],
  concurrency: number,
  run: (item: T, signal: AbortSignal) => Promise<void>,
  outer?: AbortSignal,
): Promise<void> {
  const controller = new AbortController();
  const forward = () => controller.abort(outer?.reason);
  outer?.addEventListener('abort', forward, { once: true });
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      outer?.throwIfAborted();
      controller.signal.throwIfAborted();
      await run(items[next++], controller.signal);
    }
  };
  try {
    const lanes = Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, () =>
      lane().catch((error: unknown) => {
        controller.abort(error);
        throw error;
      }),
    );
    const outcomes = await Promise.allSettled(lanes);
    const failure = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failure) throw failure.reason;
  } finally {
    outer?.removeEventListener('abort', forward);
  }
}
