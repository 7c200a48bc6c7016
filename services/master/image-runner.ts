import fs from 'node:fs/promises';
import path from 'node:path';
import type { MasterConfig } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import type { InputFormat } from '../image-core/decode.js';
import { outputFormatFor, type OutputFormat } from '../image-core/encode.js';
import { parsePipeline, serializePipeline } from '../image-core/pipeline.js';
import { planImage, type TiledPlan } from '../image-core/planner.js';
import { decodeTileResult, encodeTileTask } from '../image-core/tile-task.js';
import { runTiledImage, type TiledRunCheckpoint, type TiledRunState } from '../image-core/tiled-run.js';
import type { Location } from '../protocol/tasks.js';
import { bufferSink, bufferSource, type Blobs } from './blobs.js';
import { PermanentTaskError, type Dispatcher } from './dispatcher.js';
import { splitAnnotations, type ImageOutcome, type ImageWork, type JobStore } from './job-store.js';
import { inputKey, outputKey } from './keys.js';
import type { Metrics } from './metrics.js';
import type { Storage } from './storage.js';
import type { WorkerRecord, WorkerRegistry } from './worker-registry.js';
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
  blobs: Blobs;
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
    let tiled = false;
    try {
      const steps = parsePipeline(work.pipeline);
      const plan = planImage(work, steps, {
        ...(this.deps.config.tileSize ? { tileSize: this.deps.config.tileSize } : {}),
        workerMemoryBytes: this.deps.config.workerMemoryBytes,
      });
      log.debug({ mode: plan.mode }, 'image started');
      tiled = plan.mode === 'tiled';
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
    // Only tiled runs have a work dir: a whole image costs the master no file system call.
    if (tiled) await fs.rm(workDir, { recursive: true, force: true });
    if (outcome.status === 'failed') log.warn({ reason: outcome.error }, 'image failed');
    const { finished, ageMs } = store.finishImage(work.jobId, work.index, outcome);
    metrics.imagesFinished.inc({ status: outcome.status });
    if (finished) metrics.jobLatency.observe(ageMs / 1000);
    this.fill();
  }

  /**
   * Small images: one worker reads the upload from storage and writes the encoded result to storage
   * itself; the master only hands it the two locations.
   */
  private async runWhole(work: ImageWork, signal: AbortSignal): Promise<ImageOutcome> {
    const encode = (work.format as OutputFormat | undefined) ?? outputFormatFor(work.inputFormat as InputFormat);
    const result = await this.deps.dispatcher.run({
      id: `${work.jobId}/${work.index}`,
      jobId: work.jobId,
      imageIndex: work.index,
      kind: 'whole',
      pixels: work.width * work.height,
      work: { pipeline: work.pipeline as WorkKind['pipeline'], decode: work.inputFormat, encode },
      prepare: async (lease, worker) => ({
        input: await this.locate(inputKey(work.jobId, work.index), 'get', lease, worker),
        output: await this.locate(outputKey(work.jobId, work.index), 'put', lease, worker),
        spec: {
          kind: 'whole',
          name: work.name,
          pipeline: work.pipeline as Array<Record<string, unknown>>,
          ...(work.format ? { format: work.format as OutputFormat } : {}),
          ...(work.quality ? { quality: work.quality } : {}),
          ...(work.options ? { options: work.options } : {}),
        },
      }),
      signal,
    });
    if (!result.image) throw new Error('worker answered without a result description');
    const { width, height, format, annotations } = result.image;
    return { status: 'succeeded', width, height, outputFormat: format, ...splitAnnotations(annotations ?? {}) };
  }

  /**
   * Where a worker reads or writes a stored object: directly when it can (presigned URL, shared file
   * system), else through the master, which streams the object to or from storage for that lease.
   */
  private async locate(key: string, access: 'get' | 'put', lease: string, worker: WorkerRecord): Promise<Location> {
    const { storage, blobs } = this.deps;
    const direct = await storage.locate(key, access, worker);
    if (direct) return direct;
    return access === 'get'
      ? blobs.offer(lease, 'in', { read: () => storage.getStream(key) })
      : blobs.offer(lease, 'out', { write: (body) => storage.putStream(key, body) });
  }

  /**
   * Large images (or any larger than DIPS_TILE_SIZE): tiles go to workers through the dispatcher; the
   * run's progress is checkpointed in the store so a restarted master continues where it stopped.
   */
  private async runTiled(work: ImageWork, plan: TiledPlan, workDir: string, signal: AbortSignal): Promise<ImageOutcome> {
    const { store, storage, dispatcher, registry, blobs, config } = this.deps;
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
      output: { ...work.options, format, ...(work.quality ? { quality: work.quality } : {}), source },
      maxPixels: config.maxPixels,
      // Enough tiles in flight to fill every worker's slots, so the pool stays busy. Not more: twice as many
      // (one queued behind each slot) raised the master's peak on a 100 MP image by ~110 MiB (docs/performance.md).
      concurrency: Math.max(2, registry.totalSlots()),
      onProgress: ({ stage, done, total }) => Object.assign(progress, { stage, done: total > 0 ? done / total : 0 }),
      checkpoint,
      signal,
      runTile: async (task, tileSignal) => {
        const tile = tiles++;
        const outputs = new Map<string, () => Buffer>();
        const result = await dispatcher.run({
          id: `${work.jobId}/${work.index}/tile-${tile}`,
          jobId: work.jobId,
          imageIndex: work.index,
          kind: 'tile',
          pixels: task.tile.width * task.tile.height,
          work: { pipeline: task.steps },
          // The tile's pixels are in the master's memory (the stage's intermediate): served per lease.
          prepare: async (lease) => {
            const sink = bufferSink(tileResultLimit(config.maxPixels));
            outputs.set(lease, sink.result);
            return { input: blobs.offer(lease, 'in', bufferSource(encodeTileTask(task))), output: blobs.offer(lease, 'out', sink.blob), spec: { kind: 'tile' } };
          },
          signal: tileSignal,
        });
        return decodeTileResult(outputs.get(result.lease)!());
      },
    });
    await storage.putBuffer(outputKey(work.jobId, work.index), result.data);
    return {
      status: 'succeeded',
      width: result.width,
      height: result.height,
      outputFormat: format,
      ...splitAnnotations(result.annotations),
    };
  }
}

/**
 * The most bytes a tile's answer may have: an image at the pixel limit, 4 bytes per pixel (RGBA, 8 bit),
 * plus a header of annotations and histogram. A stage that resizes may return more than it was sent.
 */
const tileResultLimit = (maxPixels: number): number => maxPixels * 4 + 8 * 1024 * 1024;

const keyOf = (jobId: string, index: number): string => `${jobId}/${index}`;
