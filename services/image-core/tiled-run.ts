import { coreRange, type ByteRange } from './intermediate.js';
import { mergeAnnotations, type Annotations } from './operation.js';
import { serializePipeline } from './pipeline.js';
import { planStageTiles, shapesThrough, stageOutputSize, type ImageShape, type Stage, type StageTile, type TiledPlan } from './planner.js';
import type { TileJob, TileOutcome } from './tile-task.js';

/**
 * Where a tiled run stands, saved as tiles finish so a restarted master resumes the stage
 * without redoing finished tiles. Plain JSON. The intermediates it refers to live in storage.
 */
export interface TiledRunState {
  /** Index of the stage in progress (stages before it are complete). */
  stage: number;
  /**
   * The intermediate the stage reads (intermediate k is written by stage k - 1; 0 by the decode) and its
   * shape. A decoding first stage reads the upload instead: intermediate 0 is then never written.
   */
  input: { intermediate: number; shape: ImageShape };
  /** Tiles of that stage whose cores are written to the stage's output. */
  doneTiles: number[];
  /** The stage's output written in parts: the handle `openStage` gave (S3: the multipart upload) and each done tile's part tag. */
  parts?: { handle?: string; tags: Record<number, string> };
  /** Strips of the last stage that wrote their bands of the output JPEG as segments (Stage.restart), once it is done. */
  segments?: number;
  /** A whole stage's output shape, once its one task has reported it. */
  wholeOutput?: ImageShape;
  /** Element-wise sum of the histograms the done tiles returned (for the next stage). */
  histogram?: number[];
  /** The previous stage's merged histogram, for this stage's leading statistics step. */
  mergedHistogram?: number[];
  annotations: Annotations;
}

/** Persistence of TiledRunState; saves arrive in order and each reflects what is in storage. */
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

/**
 * Where one tile writes: a byte range of intermediate `intermediate` (a tiled stage), the whole of it (a
 * whole stage), or JPEG segment `segment` (its band of the output, Stage.restart).
 */
export type TileTarget =
  | {
      intermediate: number;
      /** The core's bytes in the intermediate (coreRange), and its part number (1-based, in byte order). */
      part?: { range: ByteRange; number: number; handle?: string };
    }
  | { segment: number };

/**
 * The work of a tiled run, done by workers: the run only decides what to do, in what order, and
 * what to remember. `tile` resolves with the tile's outcome and, for a part, the tag storage gave it.
 */
export interface TiledRunWork {
  /** Decodes the upload into intermediate 0 (only when the first stage does not decode its own rows). */
  decode(signal: AbortSignal): Promise<ImageShape>;
  /** Prepares intermediate `intermediate` to receive parts (S3: starts a multipart upload); the handle is checkpointed. */
  openParts(intermediate: number): Promise<string | undefined>;
  /** Runs a tile reading the rows of intermediate `input`, or the upload when `job.decode` is set. */
  tile(job: TileJob, input: number, output: TileTarget | undefined, signal: AbortSignal): Promise<TileOutcome & { tag?: string }>;
  /** Every part of the intermediate is written: make it whole (S3: complete the upload with the tags, in order). */
  closeParts(intermediate: number, handle: string | undefined, tags: string[]): Promise<void>;
  /** Encodes the last intermediate into the image's output. */
  encode(intermediate: number, shape: ImageShape, signal: AbortSignal): Promise<void>;
  /** Joins the `segments` JPEG segments the last stage's strips wrote, in order, into the image's output. */
  assemble(segments: number, shape: ImageShape, signal: AbortSignal): Promise<void>;
}

export interface TiledRunOptions {
  plan: TiledPlan;
  work: TiledRunWork;
  /** The upload's name as the user knows it: tiles that decode it name it in their errors. */
  name: string;
  /** Tiles in flight at once. */
  concurrency: number;
  checkpoint?: TiledRunCheckpoint;
  onProgress?: (progress: TiledRunProgress) => void;
  signal?: AbortSignal;
}

export interface TiledRunResult {
  width: number;
  height: number;
  annotations: Annotations;
}

/**
 * Runs a tiled plan: the first stage's tiles decode their rows from the upload (or, when that stage
 * cannot, a worker first decodes the upload into an uncompressed intermediate); for each stage, workers
 * run its tiles (at most `concurrency` at once), each reading its rows from the stage's input and writing
 * its core into the next intermediate; histograms are merged here; a worker encodes the last
 * intermediate, or, for a baseline JPEG, the last stage's strips encode their bands and a worker joins
 * them (Stage.restart). No pixel passes through this function. Cancellation is checked between tiles.
 */
export async function runTiledImage(options: TiledRunOptions): Promise<TiledRunResult> {
  const { plan, work, checkpoint } = options;
  const signal = options.signal ?? new AbortController().signal;
  let state = await checkpoint?.load();
  if (!state) {
    signal.throwIfAborted();
    const shape = plan.stages[0].decodes ? plan.input : await work.decode(signal);
    state = { stage: 0, input: { intermediate: 0, shape }, doneTiles: [], annotations: {} };
    await checkpoint?.save(state);
  }
  for (let index = state.stage; index < plan.stages.length; index++) {
    state = await runStage(options, index, state, signal);
    await checkpoint?.save(state);
  }
  signal.throwIfAborted();
  if (state.segments !== undefined) await work.assemble(state.segments, state.input.shape, signal);
  else await work.encode(state.input.intermediate, state.input.shape, signal);
  return { width: state.input.shape.width, height: state.input.shape.height, annotations: state.annotations };
}

/** Runs stage `index` (resuming from `resume`) and returns the state that starts the next stage. */
async function runStage(options: TiledRunOptions, index: number, resume: TiledRunState, signal: AbortSignal): Promise<TiledRunState> {
  const { plan, work, checkpoint } = options;
  const stage = plan.stages[index];
  const input = resume.input;
  const returnCore = stage.steps.length > 0;
  const intermediate = index + 1;
  const tiles = planStageTiles(stage, input.shape, plan.tileSize);
  const tiledOutput = returnCore && !stage.whole ? tiledStageOutput(stage, input.shape) : undefined;
  // Strips writing JPEG segments write objects of their own: no intermediate in parts.
  const inParts = tiledOutput && !stage.restart;
  const done = new Set(resume.doneTiles);
  const annotations = structuredClone(resume.annotations);
  const tags: Record<number, string> = { ...resume.parts?.tags };
  let wholeOutput = resume.wholeOutput;
  let histogram: Uint32Array | undefined = resume.histogram && Uint32Array.from(resume.histogram);
  const handle = inParts ? (resume.parts ? resume.parts.handle : await work.openParts(intermediate)) : undefined;
  const report = () => options.onProgress?.({ stage: index, stages: plan.stages.length, done: done.size, total: tiles.length });
  report();

  const snapshot = (): TiledRunState => ({
    stage: index,
    input,
    doneTiles: [...done],
    ...(inParts ? { parts: { ...(handle ? { handle } : {}), tags: { ...tags } } } : {}),
    ...(wholeOutput ? { wholeOutput } : {}),
    histogram: histogram && Array.from(histogram),
    mergedHistogram: resume.mergedHistogram,
    annotations: structuredClone(annotations),
  });
  // The handle must be on record before a part is written: a restarted master continues the same upload.
  if (inParts && !resume.parts) await checkpoint?.save(snapshot());

  const runOne = async (tile: StageTile, tileSignal: AbortSignal) => {
    const job = jobFor(stage, tile, { input: input.shape, output: tiledOutput, mergedHistogram: resume.mergedHistogram, returnCore, name: options.name });
    const target: TileTarget | undefined = !returnCore
      ? undefined
      : stage.restart
        ? { segment: tile.index }
        : tiledOutput
        ? { intermediate, part: { range: coreRange(tiledOutput, tile.core!), number: tile.index + 1, ...(handle ? { handle } : {}) } }
        : { intermediate };
    tileSignal.throwIfAborted();
    const outcome = await work.tile(job, input.intermediate, target, tileSignal);
    if (stage.whole && returnCore) wholeOutput = { width: outcome.width, height: outcome.height, channels: outcome.channels };
    if (outcome.tag !== undefined) tags[tile.index] = outcome.tag;
    if (stage.histogramFor) histogram = addHistogram(histogram, outcome, tile);
    mergeAnnotations(annotations, outcome.annotations ?? {});
    done.add(tile.index);
    report();
    if (checkpoint) await saveProgress(checkpoint);
  };
  // One save covers every tile finished before it starts: tiles that finish while a save is waiting
  // share it, so a stage of n tiles does not write n ever-longer states one by one.
  let saving: Promise<void> = Promise.resolve();
  let nextSave: Promise<void> | undefined;
  const saveProgress = (store: TiledRunCheckpoint): Promise<void> => {
    nextSave ??= saving
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => {
        nextSave = undefined;
        return store.save(snapshot());
      });
    saving = nextSave;
    return nextSave;
  };
  const pending = tiles.filter((tile) => !done.has(tile.index));
  // A decoding strip costs more the lower its rows lie in the upload (each decodes from the top): the
  // longest go first, so the short ones fill in at the end instead of one long strip running alone.
  const lastRow = ({ source }: StageTile) => source.y + source.height;
  if (stage.decodes) pending.sort((a, b) => lastRow(b) - lastRow(a));
  await runBounded(pending, options.concurrency, runOne, signal);
  if (inParts) await work.closeParts(intermediate, handle, tiles.map((tile) => tags[tile.index] ?? ''));
  // A measuring stage leaves the pixels as they are: the next stage reads the same intermediate.
  const output = !returnCore ? input : { intermediate, shape: tiledOutput ?? wholeOutput! };
  return {
    stage: index + 1,
    input: output,
    doneTiles: [],
    ...(stage.restart ? { segments: tiles.length } : {}),
    mergedHistogram: histogram && Array.from(histogram),
    annotations,
  };
}

/** A tiled stage's output shape, from the steps' declarations (the tiles' reports are checked against it). */
function tiledStageOutput(stage: Stage, input: ImageShape): ImageShape {
  const size = stageOutputSize(stage, input)!;
  return { ...size, channels: shapesThrough(stage.steps, input).at(-1)!.channels };
}

/** The task of one tile: `output` is a tiled stage's output shape, `name` the upload's (for a decoding stage's errors). */
function jobFor(
  stage: Stage,
  tile: StageTile,
  context: { input: ImageShape; output: ImageShape | undefined; mergedHistogram: number[] | undefined; returnCore: boolean; name: string },
): TileJob {
  const { input, output, mergedHistogram, returnCore, name } = context;
  const job: TileJob = { steps: serializePipeline(stage.steps), input, source: tile.source, returnCore };
  if (tile.core) job.core = tile.core;
  if (stage.decodes) job.decode = { name };
  if (output) job.output = output;
  if (stage.restart) job.jpeg = { pieceRows: stage.restart.pieceRows };
  if (stage.leadingStatistics) {
    if (!mergedHistogram) throw new Error('a stage starting with a statistics step has no merged histogram');
    job.histogram = mergedHistogram;
  }
  if (stage.histogramFor) [job.histogramFor] = serializePipeline([stage.histogramFor]);
  return job;
}

function addHistogram(sum: Uint32Array | undefined, outcome: TileOutcome, tile: StageTile): Uint32Array {
  const part = outcome.histogram;
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
  outer: AbortSignal,
): Promise<void> {
  const controller = new AbortController();
  const forward = () => controller.abort(outer.reason);
  outer.addEventListener('abort', forward, { once: true });
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      outer.throwIfAborted();
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
    outer.removeEventListener('abort', forward);
  }
}
