import { Readable } from 'node:stream';
import type { MasterConfig } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import type { InputFormat } from '../image-core/decode.js';
import { outputFormatFor } from '../image-core/encode.js';
import { type OutputFormat } from '../protocol/output.js';
import { parsePipeline, serializePipeline } from '../image-core/pipeline.js';
import { rowsRange, type ByteRange } from '../image-core/intermediate.js';
import { planImage, type ImageShape, type TiledPlan } from '../image-core/planner.js';
import { runTiledImage, type TiledRunCheckpoint, type TiledRunState, type TiledRunWork, type TileTarget } from '../image-core/tiled-run.js';
import type { Location } from '../protocol/tasks.js';
import type { Blobs } from './blobs.js';
import { PermanentTaskError, type Dispatcher, type UnitResult, type WorkUnit } from './dispatcher.js';
import { splitAnnotations, type ImageOutcome, type ImageWork, type JobStore } from './job-store.js';
import { inputKey, intermediateKey, jpegSegmentKey, jpegSegmentsPrefix, outputKey } from './keys.js';
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
    let outcome: ImageOutcome;
    /** A tiled plan: its intermediates are deleted when the image ends, however it ends. */
    let tiledPlan: TiledPlan | undefined;
    try {
      const steps = parsePipeline(work.pipeline);
      const plan = planImage(work, steps, {
        ...(this.deps.config.tileSize ? { tileSize: this.deps.config.tileSize } : {}),
        workerMemoryBytes: this.deps.config.workerMemoryBytes,
        inputFormat: work.inputFormat as InputFormat,
        inputProgressive: work.inputProgressive,
        inputTurned: work.inputTurned,
        inputPlain: work.inputPlain,
        output: { format: (work.format as OutputFormat | undefined) ?? outputFormatFor(work.inputFormat as InputFormat), ...work.options },
      });
      log.debug({ mode: plan.mode }, 'image started');
      if (plan.mode === 'tiled') tiledPlan = plan;
      outcome = plan.mode === 'whole' ? await this.runWhole(work, signal) : await this.runTiled(work, plan, signal);
    } catch (error) {
      outcome = signal.aborted
        ? { status: 'canceled' }
        : { status: 'failed', error: error instanceof PermanentTaskError ? error.message : `${(error as Error).message}` };
    } finally {
      this.active.delete(keyOf(work.jobId, work.index));
      this.tiledProgress.delete(keyOf(work.jobId, work.index));
    }
    // A stopping master leaves the image running in the store (and its intermediates) for the next start.
    if (this.stopped) return;
    // Only tiled runs have intermediates: a whole image costs the master no storage call.
    if (tiledPlan !== undefined) await this.deleteIntermediates(work, tiledPlan).catch((error: unknown) => log.warn({ error }, 'could not delete intermediates'));
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
  private async locate(key: string, access: 'get' | 'put', lease: string, worker: WorkerRecord, range?: ByteRange): Promise<Location> {
    const { storage, blobs } = this.deps;
    const direct = await storage.locate(key, access, worker, range);
    if (direct) return direct;
    // The blob serves only the range: the worker reads all of it.
    return access === 'get'
      ? blobs.offer(lease, 'in', { read: () => storage.getStream(key, range) })
      : blobs.offer(lease, 'out', { write: (body) => storage.putStream(key, body) });
  }

  /**
   * Large images (or any larger than DIPS_TILE_SIZE): workers run the tiles of every stage (the first
   * stage's decoding their rows from the upload, or after a decode task) and encode the output (a baseline
   * JPEG: the last stage's strips encode their bands and a join task concatenates them), reading and writing
   * in storage themselves; the master only plans, merges histograms and checkpoints the run in the store, so
   * a restarted master continues where it stopped.
   */
  private async runTiled(work: ImageWork, plan: TiledPlan, signal: AbortSignal): Promise<ImageOutcome> {
    const { store, registry } = this.deps;
    // Counted from the start: a decode task comes before the first progress report, and a scaler deciding
    // in between must still see this image's work (it is no longer "waiting").
    const progress: TiledProgress = { pixels: work.width * work.height, stages: plan.stages.map((stage) => serializePipeline(stage.steps)), stage: 0, done: 0 };
    this.tiledProgress.set(keyOf(work.jobId, work.index), progress);
    const checkpoint: TiledRunCheckpoint = {
      load: async () => {
        const saved = store.loadCheckpoint(work.jobId, work.index);
        return saved === undefined ? undefined : (JSON.parse(saved) as TiledRunState);
      },
      save: async (state) => store.saveCheckpoint(work.jobId, work.index, JSON.stringify(state)),
    };
    const format = (work.format as OutputFormat | undefined) ?? outputFormatFor(work.inputFormat as InputFormat);
    const result = await runTiledImage({
      plan,
      work: this.tiledUnits(work, format),
      name: work.name,
      // Enough tiles in flight to keep every slot busy with one queued behind it: the master holds no
      // pixels, so more in flight costs it only a few hundred bytes of task each.
      concurrency: Math.max(2, 2 * registry.totalSlots()),
      onProgress: ({ stage, done, total }) => Object.assign(progress, { stage, done: total > 0 ? done / total : 0 }),
      checkpoint,
      signal,
    });
    return {
      status: 'succeeded',
      width: result.width,
      height: result.height,
      outputFormat: format,
      ...splitAnnotations(result.annotations),
    };
  }

  /** The tiled run's work as dispatcher units: each names where its worker reads and writes in storage. */
  private tiledUnits(work: ImageWork, format: OutputFormat): TiledRunWork {
    const { storage, dispatcher } = this.deps;
    const key = (intermediate: number) => intermediateKey(work.jobId, work.index, intermediate);
    const encoding = { ...(work.quality ? { quality: work.quality } : {}), ...(work.options ? { options: work.options } : {}) };
    let units = 0;
    const run = (kind: 'decode' | 'tile' | 'encode', pixels: number, steps: Array<Record<string, unknown>>, prepare: WorkUnit['prepare'], signal: AbortSignal) =>
      dispatcher.run({
        id: `${work.jobId}/${work.index}/${kind}-${units++}`,
        jobId: work.jobId,
        imageIndex: work.index,
        kind,
        pixels,
        work: { pipeline: steps as WorkKind['pipeline'] },
        prepare,
        signal,
      });
    return {
      decode: async (signal) => {
        const done = await run('decode', work.width * work.height, [], async (lease, worker) => ({
          input: await this.locate(inputKey(work.jobId, work.index), 'get', lease, worker),
          output: await this.locate(key(0), 'put', lease, worker),
          spec: { kind: 'decode', name: work.name },
        }), signal);
        return shapeOf(done);
      },
      openParts: (intermediate) => storage.openParts(key(intermediate)),
      closeParts: (intermediate, upload, tags) => storage.closeParts(key(intermediate), upload, tags),
      tile: async (job, input, output, signal) => {
        const done = await run('tile', job.source.width * job.source.height, job.steps, async (lease, worker) => ({
          // A decoding tile reads the whole upload (it decodes from the top); others read their rows.
          input: job.decode
            ? await this.locate(inputKey(work.jobId, work.index), 'get', lease, worker)
            : await this.locate(key(input), 'get', lease, worker, rowsRange(job.input, job.source)),
          ...(output ? { output: await this.locateOutput(work, output, lease, worker) } : {}),
          spec: { kind: 'tile', ...job, ...(job.jpeg ? { jpeg: { ...job.jpeg, ...encoding } } : {}) },
        }), signal);
        return { ...shapeOf(done), ...done.tile };
      },
      encode: async (intermediate, shape, signal) => {
        await run('encode', shape.width * shape.height, [], async (lease, worker) => ({
          input: await this.locate(key(intermediate), 'get', lease, worker),
          output: await this.locate(outputKey(work.jobId, work.index), 'put', lease, worker),
          spec: { kind: 'encode', shape, format, ...encoding },
        }), signal);
      },
      assemble: async (segments, shape, signal) => {
        // Counted as no pixels: joining the strips' bytes is a copy of the output file.
        await run('encode', 0, [], async (lease, worker) => {
          const keys = Array.from({ length: segments }, (_, segment) => jpegSegmentKey(work.jobId, work.index, segment));
          const direct = await Promise.all(keys.map((segmentKey) => storage.locate(segmentKey, 'get', worker)));
          // A worker that cannot reach storage gets every segment through the master as one stream, in
          // order (a lease has one blob to read): its input is then the joined file already.
          const located = direct.every((location) => location !== undefined)
            ? direct
            : [this.deps.blobs.offer(lease, 'in', { read: async () => Readable.from(inOrder(storage, keys)) })];
          return {
            input: located[0]!,
            output: await this.locate(outputKey(work.jobId, work.index), 'put', lease, worker),
            spec: { kind: 'encode', shape, format, ...encoding, segments: located.slice(1) },
          };
        }, signal);
      },
    };
  }

  private async deleteIntermediates(work: ImageWork, plan: TiledPlan): Promise<void> {
    const keys = Array.from({ length: plan.stages.length + 1 }, (_, intermediate) => intermediateKey(work.jobId, work.index, intermediate));
    await this.deps.storage.deleteKeys(keys);
    if (plan.stages.at(-1)!.restart) await this.deps.storage.deletePrefix(jpegSegmentsPrefix(work.jobId, work.index));
  }

  /** Where a tile writes: a piece of the next intermediate (its byte range), all of it (a whole stage), or its JPEG segment. */
  private async locateOutput(work: ImageWork, target: TileTarget, lease: string, worker: WorkerRecord): Promise<Location> {
    const { storage, blobs } = this.deps;
    if ('segment' in target) return this.locate(jpegSegmentKey(work.jobId, work.index, target.segment), 'put', lease, worker);
    const key = intermediateKey(work.jobId, work.index, target.intermediate);
    if (!target.part) return this.locate(key, 'put', lease, worker);
    const { range, number, handle } = target.part;
    const direct = await storage.locatePart(key, handle, { number, range }, worker);
    return direct ?? blobs.offer(lease, 'out', { write: (body) => storage.putRange(key, range, body) });
  }
}

/** The objects under `keys`, one after the other. */
async function* inOrder(storage: Storage, keys: readonly string[]): AsyncGenerator<Buffer> {
  for (const key of keys) yield* (await storage.getStream(key)) as AsyncIterable<Buffer>;
}

/** The shape a decode or tile unit reported. */
function shapeOf(result: UnitResult): ImageShape {
  if (!result.tile) throw new Error('worker answered a tiled unit without describing what it wrote');
  const { width, height, channels } = result.tile;
  return { width, height, channels };
}

const keyOf = (jobId: string, index: number): string => `${jobId}/${index}`;
