import fs from 'node:fs/promises';
import path from 'node:path';
import type { MasterConfig } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { decodeResultHeader, encodeWholeTask } from '../shared/whole-task.js';
import type { InputFormat } from '../image-core/decode.js';
import { outputFormatFor, type OutputFormat } from '../image-core/encode.js';
import { parsePipeline, serializePipeline } from '../image-core/pipeline.js';
import { planImage, type TiledPlan } from '../image-core/planner.js';
import { decodeTileResult, encodeTileTask } from '../image-core/tile-task.js';
import { runTiledImage, type TiledRunCheckpoint, type TiledRunState } from '../image-core/tiled-run.js';
import { PermanentTaskError, type Dispatcher } from './dispatcher.js';
import type { ImageOutcome, ImageWork, JobStore } from './job-store.js';
import { inputKey, outputKey } from './keys.js';
import type { Metrics } from './metrics.js';
import type { Storage } from './storage.js';
import type { WorkerRegistry } from './worker-registry.js';
import type { WorkItem, WorkKind } from '../scaler/work.js';

/** An active tiled image's work still to do, for the scaler: its stages' steps and where the run is. */
interface TiledProgress {
  pixels: number;
  stages: Array<Array<Record<string, unknown>>>;
  /** Stage in progress and the share of its tiles done. */
  stage: number;
  done: number;
}

export interface ImageRunnerDeps {
  config: Pick<MasterConfig, 'maxActiveImages' | 'maxPixels' | 'tileSize' | 'workerMemoryBytes'>;
  store: JobStore;
  storage: Storage;
  dispatcher: Dispatcher;
  registry: WorkerRegistry;
  metrics: Metrics;
  logger: Logger;
  /** Scratch space for tiled runs (intermediates on local disk). */
  workDir: string;
}

/**
 * Takes queued images from the store, at most maxActiveImages at a time, and sees each through:
 * whole images go to one worker as they are; large ones are tiled across workers.
 */
export class ImageRunner {
  private readonly active = new Map<string, AbortController>();
  /** Progress of each active tiled image, for the scaler. */
  private readonly tiledProgress = new Map<string, TiledProgress>();
  private stopped = false;

  constructor(private readonly deps: ImageRunnerDeps) {}

  /** Resumes what a previous master left unfinished, then starts taking work. */
  start(): void {
    const resumed = this.deps.store.requeueInterruptedImages();
    if (resumed > 0) this.deps.logger.info({ images: resumed }, 'resuming images interrupted by a restart');
    this.fill();
  }

  fill(): void {
    if (this.stopped) return;
    const room = this.deps.config.maxActiveImages - this.active.size;
    for (const work of this.deps.store.claimQueuedImages(room)) {
      const controller = new AbortController();
      this.active.set(keyOf(work.jobId, work.index), controller);
      void this.run(work, controller.signal);
    }
  }

  /**
   * Work of active tiled images (only a few of their tiles at a time are in the dispatcher): the rest
   * of the current stage and every later stage, each as the tiles its steps make.
   */
  tiledWork(): WorkItem[] {
    const items: WorkItem[] = [];
    for (const { pixels, stages, stage, done } of this.tiledProgress.values()) {
      for (let index = stage; index < stages.length; index++) {
        const left = index === stage ? 1 - done : 1;
        items.push({ kind: { pipeline: stages[index]! }, pixels: pixels * left, units: 1, runningMs: 0 });
      }
    }
    return items;
  }

  /** Stops the job's running images; the store has already marked them canceled. */
  cancelJob(jobId: string): void {
    for (const [key, controller] of this.active) {
      if (key.startsWith(`${jobId}/`)) controller.abort(new Error(`job ${jobId} canceled`));
    }
  }

  stop(): void {
    this.stopped = true;
    for (const controller of this.active.values()) controller.abort(new Error('master stopping'));
  }

  private async run(work: ImageWork, signal: AbortSignal): Promise<void> {
    const { store, metrics, logger } = this.deps;
    const log = logger.child({ job: work.jobId, image: work.index });
    const workDir = path.join(this.deps.workDir, `${work.jobId}-${work.index}`);
    let outcome: ImageOutcome;
    try {
      const steps = parsePipeline(work.pipeline);
      const plan = planImage(work, steps, {
        ...(this.deps.config.tileSize ? { tileSize: this.deps.config.tileSize } : {}),
        workerMemoryBytes: this.deps.config.workerMemoryBytes,
      });
      log.debug({ mode: plan.mode }, 'image started');
      outcome = plan.mode === 'whole' ? await this.runWhole(work, signal) : await this.runTiled(work, plan, workDir, signal);
    } catch (error) {
      outcome = signal.aborted
        ? { status: 'canceled' }
        : { status: 'failed', error: error instanceof PermanentTaskError ? error.message : `${(error as Error).message}` };
    } finally {
      this.active.delete(keyOf(work.jobId, work.index));
      this.tiledProgress.delete(keyOf(work.jobId, work.index));
    }
    // A stopping master leaves the image running in the store (and its tiling work dir) for the next start.
    if (this.stopped) return;
    await fs.rm(workDir, { recursive: true, force: true });
    if (outcome.status === 'failed') log.warn({ reason: outcome.error }, 'image failed');
    const { finished, ageMs } = store.finishImage(work.jobId, work.index, outcome);
    metrics.imagesFinished.inc({ status: outcome.status });
    if (finished) metrics.jobLatency.observe(ageMs / 1000);
    this.fill();
  }

  /** Small images: the upload goes to one worker as it is and comes back encoded. */
  private async runWhole(work: ImageWork, signal: AbortSignal): Promise<ImageOutcome> {
    const { storage, dispatcher } = this.deps;
    const format = (work.format as OutputFormat | undefined) ?? outputFormatFor(work.inputFormat as InputFormat);
    const result = await dispatcher.run({
      id: `${work.jobId}/${work.index}`,
      jobId: work.jobId,
      imageIndex: work.index,
      kind: 'whole',
      pixels: work.width * work.height,
      work: { pipeline: work.pipeline as WorkKind['pipeline'], decode: work.inputFormat, encode: format },
      body: async () => [
        encodeWholeTask(
          {
            name: work.name,
            pipeline: work.pipeline as Array<Record<string, unknown>>,
            ...(work.format ? { format: work.format as OutputFormat } : {}),
            ...(work.quality ? { quality: work.quality } : {}),
          },
          await storage.getBuffer(inputKey(work.jobId, work.index)),
        ),
      ],
      signal,
    });
    if (!result.meta) throw new Error('worker answered without a result description');
    const meta = decodeResultHeader(result.meta);
    await storage.putBuffer(outputKey(work.jobId, work.index), result.data);
    return { status: 'succeeded', width: meta.width, height: meta.height, outputFormat: meta.format, ...(meta.qr ? { qr: meta.qr } : {}) };
  }

  /**
   * Large images (or any larger than DIPS_TILE_SIZE): tiles go to workers through the dispatcher; the
   * run's progress is checkpointed in the store so a restarted master continues where it stopped.
   */
  private async runTiled(work: ImageWork, plan: TiledPlan, workDir: string, signal: AbortSignal): Promise<ImageOutcome> {
    const { store, storage, dispatcher, registry, config } = this.deps;
    // Counted from the start: downloading and decoding come before the first progress report, and a
    // scaler deciding in between must still see this image's work (it is no longer "waiting").
    const progress: TiledProgress = { pixels: work.width * work.height, stages: plan.stages.map((stage) => serializePipeline(stage.steps)), stage: 0, done: 0 };
    this.tiledProgress.set(keyOf(work.jobId, work.index), progress);
    const checkpoint: TiledRunCheckpoint = {
      load: async () => {
        const saved = store.loadCheckpoint(work.jobId, work.index);
        return saved === undefined ? undefined : (JSON.parse(saved) as TiledRunState);
      },
      save: async (state) => store.saveCheckpoint(work.jobId, work.index, JSON.stringify(state)),
    };
    if (store.loadCheckpoint(work.jobId, work.index) === undefined) await fs.rm(workDir, { recursive: true, force: true });
    await fs.mkdir(workDir, { recursive: true });
    const source = path.join(workDir, 'input');
    await storage.downloadTo(inputKey(work.jobId, work.index), source);
    const format = (work.format as OutputFormat | undefined) ?? outputFormatFor(work.inputFormat as InputFormat);
    let tiles = 0;
    const result = await runTiledImage({
      plan,
      source,
      workDir,
      output: { format, ...(work.quality ? { quality: work.quality } : {}) },
      maxPixels: config.maxPixels,
      // Enough tiles in flight to fill every worker's slots, so the pool stays busy. Not more: twice as many
      // (one queued behind each slot) raised the master's peak on a 100 MP image by ~110 MiB (docs/performance.md).
      concurrency: Math.max(2, registry.totalSlots()),
      onProgress: ({ stage, done, total }) => Object.assign(progress, { stage, done: total > 0 ? done / total : 0 }),
      checkpoint,
      signal,
      runTile: async (task, tileSignal) => {
        const tile = tiles++;
        const { data } = await dispatcher.run({
          id: `${work.jobId}/${work.index}/tile-${tile}`,
          jobId: work.jobId,
          imageIndex: work.index,
          kind: 'tile',
          pixels: task.tile.width * task.tile.height,
          work: { pipeline: task.steps },
          body: async () => encodeTileTask(task),
          signal: tileSignal,
        });
        return decodeTileResult(data);
      },
    });
    await storage.putBuffer(outputKey(work.jobId, work.index), result.data);
    return {
      status: 'succeeded',
      width: result.width,
      height: result.height,
      outputFormat: format,
      ...(result.annotations.qr ? { qr: result.annotations.qr } : {}),
    };
  }
}

const keyOf = (jobId: string, index: number): string => `${jobId}/${index}`;
