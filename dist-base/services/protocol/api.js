import { z } from 'zod';
import { outputFormats } from './output.js';
/**
 * API responses of the master, as the contract (/v1/...) defines them. The master builds them with
 * these types; the CLI, console helpers and tests parse them with these schemas (never an `as` cast).
 */
/** partial: some images failed and at least one succeeded; failed: none succeeded. */
export const jobStatuses = ['queued', 'running', 'succeeded', 'partial', 'failed', 'canceled'];
export const jobStatus = z.enum(jobStatuses);
export const imageStatuses = ['queued', 'running', 'succeeded', 'failed', 'canceled'];
export const imageStatus = z.enum(imageStatuses);
const terminalStatuses = new Set(['succeeded', 'partial', 'failed', 'canceled']);
export const isTerminalStatus = (status) => terminalStatuses.has(status);
export const outputFormat = z.enum(outputFormats);
/** Encoder quality for lossy formats (sharp's range). */
export const quality = z.number().int().min(1).max(100);
/** What the pipeline's analysis steps found, by op name (phash, thumbhash, metadata, qr...). */
export const annotations = z.record(z.string(), z.unknown());
export const imageView = z.object({
    index: z.number().int().min(0),
    name: z.string(),
    status: imageStatus,
    error: z.string().optional(),
    width: z.number().int().optional(),
    height: z.number().int().optional(),
    qr: z.array(z.string()).optional(),
    annotations: annotations.optional(),
});
/** Done counts items that succeeded (skipped ones included); skipped: outputs already there (batch jobs). */
export const progress = z.object({
    done: z.number().int(),
    failed: z.number().int(),
    total: z.number().int(),
    skipped: z.number().int().optional(),
});
/** GET /v1/jobs/{id}. `images` is present for jobs of at most 1,000 items; larger ones page through /items. */
export const jobView = z.object({
    id: z.string(),
    status: jobStatus,
    progress,
    images: z.array(imageView).optional(),
    createdAt: z.string(),
    finishedAt: z.string().optional(),
    kind: z.enum(['upload', 'batch']).optional(),
    /** Why the job stopped early (maxFailures) or could not list its inputs. */
    error: z.string().optional(),
});
/** A job view that lists its images: what a client following a job it uploaded reads (upload jobs stay under the 1,000 items a view lists). */
export const jobWithImages = jobView.required({ images: true });
/** 202 answer of POST /v1/jobs. */
export const jobAccepted = z.object({ id: z.string(), status: jobStatus });
/** Results one POST /v1/jobs/{id}/downloads may name: a small job's every result, or a page of a large one. */
export const maxDownloadsPerRequest = 1_000;
/** POST /v1/jobs/{id}/downloads: the finished images a client is about to fetch. */
export const downloadsBody = z.object({
    indexes: z.array(z.number().int().min(0)).min(1).max(maxDownloadsPerRequest),
});
/**
 * Where one result is fetched. An absolute `url` is a presigned GET of the bucket (S3 mode): it carries
 * its own authorisation, so the client sends no token there and the master never sees the request. A
 * relative one is the master's own GET /v1/jobs/{id}/images/{index} (local disk), sent with the token.
 */
export const resultDownload = z.object({
    index: z.number().int().min(0),
    /** The file name a download names the result (the upload's name with the output format's extension). */
    name: z.string(),
    contentType: z.string(),
    url: z.string(),
});
/** The answer of POST /v1/jobs/{id}/downloads, in the order the indexes were given. */
export const downloadsAnswer = z.object({ downloads: z.array(resultDownload) });
export const workerStates = ['ready', 'draining', 'dead'];
export const workerState = z.enum(workerStates);
export const workerView = z.object({
    id: z.string(),
    address: z.string(),
    state: workerState,
    inflight: z.number().int(),
    slots: z.number().int(),
    lastHeartbeat: z.string(),
});
const scalerDecision = z.object({
    at: z.string(),
    action: z.enum(['scale-out', 'scale-in', 'hold']),
    desired: z.number().int(),
    needed: z.number().int(),
    reason: z.string(),
});
/** GET /v1/cluster's `scaler`: the scaling loop's state (services/scaler/scaler.ts), present when the master scales its pool. */
export const scalerStatus = z.object({
    provider: z.enum(['local', 'aws']),
    min: z.number().int(),
    max: z.number().int(),
    desiredCapacity: z.number().int(),
    actualCapacity: z.number().int(),
    /** The backlog in worker-seconds, split by where its costs came from. */
    backlog: z.object({
        workerSeconds: z.number(),
        learnedWorkerSeconds: z.number(),
        defaultWorkerSeconds: z.number(),
        units: z.number().int(),
        pixels: z.number(),
    }),
    /** Seconds of backlog per worker before the pool grows, and its source (e.g. "measured boot"). */
    target: z.object({ secondsPerWorker: z.number(), source: z.string() }),
    /** The latest decision, often "hold". */
    lastDecision: scalerDecision.nullable(),
    /** The latest decision that changed capacity. */
    lastChange: scalerDecision.nullable(),
    /** The provider's last failure, cleared by the next success. */
    lastError: z.object({ at: z.string(), message: z.string() }).nullable(),
    /** Workers running but never heartbeating (AWS instances past their boot grace). */
    silentWorkers: z.array(z.string()),
});
/** GET /v1/cluster's `scaler` until the scaling loop runs (services/scaler/startup.ts retries its start). */
export const scalerStartup = z.object({
    state: z.enum(['starting', 'failed']),
    attempt: z.number().int(),
    attempts: z.number().int(),
    lastError: z.string().optional(),
});
/** GET /v1/cluster. */
export const clusterView = z.object({
    workers: z.array(workerView),
    queueDepth: z.number().int(),
    desiredCapacity: z.number().int(),
    scaler: z.union([scalerStatus, scalerStartup]).optional(),
});
/**
 * Reads a JSON answer through its schema: a master of another version that answers something else
 * fails here with what differs, not later with an undefined field.
 */
export async function parseResponse(schema, response) {
    const json = await response.json();
    const parsed = schema.safeParse(json);
    if (!parsed.success)
        throw new Error(`unexpected answer from ${response.url}: ${z.prettifyError(parsed.error)}`);
    return parsed.data;
}
//# sourceMappingURL=api.js.map