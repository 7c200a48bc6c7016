import { z } from 'zod';
import { outputOptions } from './output.js';
import { outputFormat, quality, workerState } from './api.js';

/**
 * Master <-> worker wire messages. Every task kind has the same framing: a unit of work names where the
 * worker reads its input and where it writes its output (a Location), plus the kind's own spec. The
 * master sends tasks in batches (POST {worker}/v1/tasks, a TaskBatch); the worker answers with one
 * TaskResult per task as each finishes (NDJSON lines, in completion order). Bytes never ride in these
 * messages: they move between storage and the worker (docs/data-path.md).
 */

/** At most this many tasks in one batch, and leases one worker holds (the dispatcher's window bound). */
export const maxTasksPerBatch = 512;
/**
 * A batch's body at most, in bytes: a few hundred tasks of small JSON each (locations, pipeline). A
 * variants task with many presigned URLs runs to ~20 KB, so a full window may need several requests.
 */
export const maxTaskBatchBytes = 4 * 1024 * 1024;
/**
 * A worker may claim at most this many slots: a slot is one vCPU's worth of work, and the instance
 * types DIPS deploys have far fewer. The bound keeps a bogus registration from drawing the whole queue.
 */
export const maxWorkerSlots = 256;

const byteRange = z.object({ start: z.number().int().min(0), end: z.number().int().min(0) }).refine((r) => r.end >= r.start, 'range end before start');

/**
 * Where bytes are. `file`: a path on a file system the worker shares with the master (a co-located
 * worker with local storage reads and writes it directly; outputs are written beside and renamed).
 * `url`: an HTTP(S) URL, e.g. a presigned S3 URL; GET reads (with a Range header when `range` is set),
 * PUT writes, `headers` are sent as they are. `master`: a path the master serves itself
 * (/v1/blobs/...), fetched from the worker's master URL with the worker credential.
 */
export const location = z.discriminatedUnion('via', [
  z.object({ via: z.literal('file'), path: z.string().min(1), range: byteRange.optional() }),
  z.object({ via: z.literal('url'), url: z.url(), headers: z.record(z.string(), z.string()).optional(), range: byteRange.optional() }),
  z.object({ via: z.literal('master'), path: z.string().regex(/^\/v1\/blobs\/[A-Za-z0-9._-]+\/(in|out)$/), range: byteRange.optional() }),
]);
export type Location = z.infer<typeof location>;

/** One whole image: decode the input, run the pipeline, encode. */
export const imageSpec = z.object({
  kind: z.literal('whole'),
  name: z.string(),
  pipeline: z.array(z.record(z.string(), z.unknown())),
  format: outputFormat.optional(),
  quality: quality.optional(),
  options: outputOptions.optional(),
});
/*
 * A tiled image is three kinds of work, all on workers (docs/tiling.md): `decode` the upload into an
 * uncompressed .v intermediate, run each `tile` of each stage, `encode` the last intermediate. Tiles are
 * full-width strips, so a tile's input is one byte range of its stage's intermediate (the rows it spans)
 * and its output one byte range of the next (a positioned write, or one part of a multipart upload).
 */
const count = z.number().int().min(0);
const rect = z.object({ x: count, y: count, width: count, height: count });
const imageShape = z.object({ width: count, height: count, channels: z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(4)]) });
/** Histograms are small (256 bins per band of an 8-bit image); the bound keeps a bogus one small too. */
const histogram = z.array(count).max(65_536);
/** Decode the input (an upload) into a .v intermediate written whole to the output; the result's `tile` gives its shape. */
export const decodeSpec = z.object({ kind: z.literal('decode'), name: z.string().max(1024) });
/**
 * One tile of one stage: the input is the bytes of the full rows `source` spans in the stage's
 * intermediate of shape `input` (with `decode`: the upload, whose rows the tile decodes itself, `input`
 * being the decoded shape the plan expects); the output receives the core's bytes (the output Location's range, the
 * header first for the core at the origin), or a whole stage's complete .v file, or nothing (no output:
 * a measuring stage, which returns only the histogram).
 */
export const tileSpec = z.object({
  kind: z.literal('tile'),
  steps: z.array(z.record(z.string(), z.unknown())),
  input: imageShape,
  source: rect,
  core: rect.optional(),
  /** A tiled stage's whole output shape (the core at the origin writes the .v header). */
  output: imageShape.optional(),
  histogram: histogram.optional(),
  histogramFor: z.record(z.string(), z.unknown()).optional(),
  returnCore: z.boolean(),
  /** The upload's name, for errors: set when the input is the upload (the first stage decodes its own rows). */
  decode: z.object({ name: z.string().max(1024) }).optional(),
  /**
   * The last stage of a JPEG output: the output receives the core's rows encoded as their part of the
   * JPEG (restart intervals of `pieceRows` rows, services/image-core/jpeg-restart.ts), not pixels.
   */
  jpeg: z.object({ pieceRows: z.number().int().min(8).max(65_535), quality: quality.optional(), options: outputOptions.optional() }).optional(),
});
/**
 * Encode the input, the last .v intermediate of shape `shape`, into the image's output. With `segments`,
 * the last stage's strips have encoded the JPEG already: the input is the first strip's bytes and
 * `segments` the others' in order, and the output is their concatenation.
 */
export const encodeSpec = z.object({
  kind: z.literal('encode'),
  shape: imageShape,
  format: outputFormat,
  quality: quality.optional(),
  options: outputOptions.optional(),
  segments: z.array(location).max(8192).optional(),
});
/**
 * The planner budget an image must plan `whole` under to run as one variants task (planImage's options):
 * the master's DIPS_WORKER_MEMORY_BYTES and DIPS_TILE_SIZE. GET /v1/uploads publishes it, so a client
 * knows before uploading which images a session (a batch job) can take.
 */
export const wholeImageBudget = z.object({ workerMemoryBytes: z.number().int().min(1), tileSize: z.number().int().min(1).optional() });
export type WholeImageBudget = z.infer<typeof wholeImageBudget>;
/** Most results one variants task gives (sizes x formats): each is a separate encode of the same decoded pixels. */
export const maxVariantsPerTask = 12;
/**
 * One image, decoded once and the pipeline run once, then each variant resized (largest width, never
 * enlarged), encoded and written to its own output Location (batch jobs' sizes x formats). `whole` is
 * the master's planner budget: the worker refuses (422 needs_tiling) an image the planner would tile,
 * since only the worker reads the image's header.
 */
export const variantsSpec = z.object({
  kind: z.literal('variants'),
  name: z.string().max(1024),
  pipeline: z.array(z.record(z.string(), z.unknown())),
  /** Encoder options of every variant (the job's). */
  options: outputOptions.optional(),
  whole: wholeImageBudget,
  variants: z
    .array(
      z.object({
        format: outputFormat.optional(),
        quality: quality.optional(),
        width: z.number().int().min(1).max(65_535).optional(),
        output: location,
      }),
    )
    .min(1)
    .max(maxVariantsPerTask),
});
export const taskSpec = z.discriminatedUnion('kind', [imageSpec, decodeSpec, tileSpec, encodeSpec, variantsSpec]);
export type TaskSpec = z.infer<typeof taskSpec>;
export type TaskKind = TaskSpec['kind'];

export const task = z.object({
  /** Stable across retries (logs). */
  unit: z.string().min(1).max(300),
  /** This attempt: results are matched by lease, and heartbeats renew leases by id. */
  lease: z.string().min(1).max(100),
  input: location,
  /** Absent for a variants task (each variant names its own output) and for a measuring tile, whose answer is its histogram. */
  output: location.optional(),
  spec: taskSpec,
}).refine(
  (task) => (task.spec.kind === 'variants' ? task.output === undefined : task.spec.kind === 'tile' || task.output !== undefined),
  'a variants task names its outputs per variant, a tile task may write nothing, every other task has one output',
);
export type Task = z.infer<typeof task>;

export const taskBatch = z.object({ tasks: z.array(task).min(1).max(maxTasksPerBatch) });
export type TaskBatch = z.infer<typeof taskBatch>;

/** What a whole image turned into. */
export const imageOutput = z.object({
  width: z.number().int(),
  height: z.number().int(),
  format: outputFormat,
  qr: z.array(z.string()).optional(),
  /** Every annotation of the pipeline's analysis steps (qr included), for results that keep them all. */
  annotations: z.record(z.string(), z.unknown()).optional(),
});
export type ImageOutput = z.infer<typeof imageOutput>;

export const taskFailure = z.object({ status: z.number().int(), code: z.string(), message: z.string() });
export type TaskFailure = z.infer<typeof taskFailure>;

export const taskResult = z.discriminatedUnion('ok', [
  z.object({
    ok: z.literal(true),
    lease: z.string(),
    /** Worker wall time on the unit, input read to output written (the scaler's service time). */
    processingMs: z.number().min(0),
    /** Bytes the worker read and wrote, for the bench's accounting. */
    bytesIn: z.number().int().min(0),
    bytesOut: z.number().int().min(0),
    image: imageOutput.optional(),
    /** A decode or tile task's report: the shape of the pixels it wrote, its histogram and annotations, and the tag storage gave a part (S3 ETag). */
    tile: imageShape.extend({ histogram: histogram.optional(), annotations: z.record(z.string(), z.unknown()).optional(), tag: z.string().max(200).optional() }).optional(),
    /**
     * A variants task's results, in the order of its variants; `etag` is the storage's ETag answer to the
     * PUT (S3), which the master records to skip the output when it is asked for again.
     */
    variants: z
      .array(z.object({ format: outputFormat, width: z.number().int(), height: z.number().int(), bytes: z.number().int().min(0), etag: z.string().max(200).optional() }))
      .optional(),
  }),
  z.object({ ok: z.literal(false), lease: z.string(), processingMs: z.number().min(0), error: taskFailure }),
]);
export type TaskResult = z.infer<typeof taskResult>;

/**
 * PUT /v1/workers/{id}: registration and heartbeat in one (a heartbeat registers). `leases` lists the
 * tasks the worker holds, accepted and unanswered: each heartbeat renews their leases, so a long task
 * needs no long fixed lease.
 */
export const heartbeat = z.object({
  address: z.url(),
  slots: z.number().int().min(1).max(maxWorkerSlots),
  draining: z.boolean().optional(),
  leases: z.array(z.string().max(100)).max(maxTasksPerBatch * 4).optional(),
  /** Identity of the worker's machine and file system: equal to the master's, it gets `file` locations. */
  filesId: z.string().max(200).optional(),
});
export type Heartbeat = z.infer<typeof heartbeat>;

export const heartbeatAnswer = z.object({ id: z.string(), state: workerState });
export type HeartbeatAnswer = z.infer<typeof heartbeatAnswer>;

/** Worker GET /healthz: its slots, and the memory it lends to whole stages (services/worker/memory-gate.ts). */
export const workerHealth = z.object({
  status: z.enum(['ok', 'draining']),
  running: z.number().int(),
  waiting: z.number().int(),
  slots: z.number().int(),
  memory: z.object({ capacityBytes: z.number().int(), heldBytes: z.number().int(), waiting: z.number().int() }),
});
export type WorkerHealth = z.infer<typeof workerHealth>;
