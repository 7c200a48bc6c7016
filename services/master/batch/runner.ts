import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import pRetry from 'p-retry';
import type { OutputFormat } from '../../protocol/output.js';
import { parsePipeline, PipelineError, serializePipeline } from '../../image-core/pipeline.js';
import type { BatchJobBody, ManifestLine, ResolvedBatchJobBody } from '../../protocol/batch.js';
import type { TaskSpec, WholeImageBudget, Location as WireLocation } from '../../protocol/tasks.js';
import { HttpError } from '../../shared/http-error.js';
import type { Logger } from '../../shared/logger.js';
import type { Blobs } from '../blobs.js';
import type { Dispatcher } from '../dispatcher.js';
import type { BatchJobSpec, FinishedImage, ItemOutcome, ItemWork, JobStatus, JobStore, NewItem, OutputRecord } from '../job-store.js';
import { isTerminal, splitAnnotations } from '../job-store.js';
import { outputKey } from '../keys.js';
import type { Metrics } from '../metrics.js';
import type { Storage } from '../storage.js';
import type { WorkerRecord } from '../worker-registry.js';
import { listInputs, ownUpload } from './inputs.js';
import { errorKindOf, ItemError } from './item-error.js';
import { contentKey, resolveItem, type OutputTarget, type ResolvedItem } from './locations.js';
import type { ObjectInfo, ObjectStores, WorkerReach } from './objects.js';
import { formatUri, joinUnder, parseUri, type Location, type Roots } from './uri.js';

export interface BatchRunnerDeps {
  store: JobStore;
  /** The master's own storage: results of jobs without an output prefix. */
  storage: Storage;
  dispatcher: Dispatcher;
  /** Serves an item's file to a worker that does not share the master's disk, and takes its results (lease-scoped). */
  blobs: Blobs;
  stores: ObjectStores;
  sources: Roots;
  destinations: Roots;
  metrics: Metrics;
  logger: Logger;
  config: { maxPixels: number; maxPipelineSteps: number; workerMemoryBytes: number; tileSize?: number | undefined; maxQueuedItems: number };
  /** Scratch space for manifest copies. */
  workDir: string;
  /** Base delay of the storage retries (transient errors); doubled per attempt. */
  retryBaseMs: number;
}

/** Seconds a client waits before submitting again to a master full of batch items: they finish at tens per second. */
const queueRetryAfterSeconds = 30;
/** Items listed per transaction: large enough that listing 100,000 keys takes a hundred commits, small enough to stream. */
const listPage = 1000;
/** Tries of one storage read or write before the item fails as transient (with the base delay doubled each time). */
const storageRetries = 4;
/** Tries of a listing that breaks off (it resumes from the last page committed). */
const listingAttempts = 5;
/** Items in flight even before workers register (they wait in the dispatcher's queue; each holds a few hundred bytes). */
const minItemsInFlight = 8;

/**
 * The planner budget a batch item is held to: its worker runs it whole or fails it (422 needs_tiling).
 * GET /v1/uploads publishes this same budget, so a client makes a session with an image that would tile
 * an upload job (POST /v1/uploads/{id}/job, which tiles) rather than a batch job.
 */
export function itemBudget(config: { workerMemoryBytes: number; tileSize?: number | undefined }): WholeImageBudget {
  return { workerMemoryBytes: config.workerMemoryBytes, ...(config.tileSize ? { tileSize: config.tileSize } : {}) };
}

/**
 * Runs batch jobs: lists their inputs into the store page by page, then takes queued items a bounded
 * number at a time: a worker reads each input and writes its results; the master records the outcome.
 */
export class BatchRunner {
  private readonly active = new Map<string, AbortController>();
  private readonly listing = new Set<string>();
  /** Jobs whose outcomes the last commit recorded, with each one's status after: checked once per commit. */
  private readonly recordedJobs = new Map<string, JobStatus>();
  /** A refill is due at the end of this turn (items finished in it). */
  private refillDue = false;
  /** An item of a job with maxFailures failed in this turn: its outcome is committed at once, not held. */
  private failureDue = false;
  private stopped = false;

  constructor(private readonly deps: BatchRunnerDeps) {}

  /** Resumes listings and manifest copies a previous master left unfinished, then takes work. */
  start(): void {
    for (const jobId of this.deps.store.jobsBeingListed()) void this.list(jobId);
    for (const jobId of this.deps.store.jobsAwaitingManifest()) void this.writeManifestCopy(jobId);
    this.fill();
  }

  stop(): void {
    // What finished before the stop is kept, as if it had been written at once.
    this.deps.store.commitHeld();
    this.stopped = true;
    for (const controller of this.active.values()) controller.abort(new Error('master stopping'));
  }

  /** Validates a JSON job body and creates the job (or finds the unfinished one with the same body). */
  async submit(body: ResolvedBatchJobBody): Promise<{ id: string; status: JobStatus; resumed?: boolean }> {
    const { store, sources, destinations, stores } = this.deps;
    if (body.pipeline.length > this.deps.config.maxPipelineSteps) {
      throw new HttpError(413, 'pipeline_too_long', `the pipeline has ${body.pipeline.length} steps; at most ${this.deps.config.maxPipelineSteps} are allowed`);
    }
    let pipeline;
    try {
      pipeline = serializePipeline(parsePipeline(body.pipeline, this.deps.config.maxPipelineSteps));
    } catch (error) {
      if (error instanceof PipelineError) throw new HttpError(422, 'bad_pipeline', error.message);
      throw error;
    }
    if ('prefix' in body.inputs) await this.checkFolder(parseUri(body.inputs.prefix, 'input prefix'), sources, 'input prefix');
    if ('urls' in body.inputs) for (const url of body.inputs.urls) sources.rootOf(parseUri(url, 'input'), 'input');
    if ('manifest' in body.inputs) {
      const manifest = parseUri(body.inputs.manifest, 'manifest');
      sources.rootOf(manifest, 'manifest');
      const found = await stores.for(manifest).stat(manifest).catch((error: unknown) => {
        throw new HttpError(403, 'outside_root', (error as Error).message);
      });
      if (!found) throw new HttpError(422, 'manifest_not_found', `manifest ${body.inputs.manifest} does not exist`);
    }
    if (body.output) await this.checkFolder(parseUri(body.output.prefix, 'output prefix'), destinations, 'output prefix');
    const spec = { ...body, pipeline };
    const specKey = createHash('sha256').update(JSON.stringify(spec)).digest('hex');
    const existing = store.unfinishedJobWithSpec(specKey);
    if (existing) return { id: existing, status: store.jobSummary(existing)!.status, resumed: true };
    // Batch items have their own bound (uploads count against DIPS_MAX_QUEUED_IMAGES): rows in SQLite,
    // paged, never in memory. A new job is refused while the master holds that many (one being listed
    // goes on; resuming adds none).
    const { count, uploads } = store.pendingImages();
    if (count - uploads >= this.deps.config.maxQueuedItems) {
      throw new HttpError(429, 'saturated', `the master holds ${count - uploads} unfinished batch items, its limit (DIPS_MAX_QUEUED_ITEMS=${this.deps.config.maxQueuedItems}); retry later`, queueRetryAfterSeconds);
    }
    const id = randomUUID();
    const format = body.output?.format ?? body.format;
    const quality = body.output?.quality ?? body.quality;
    store.createBatchJob({ id, pipeline, spec, specKey, ...(format ? { format } : {}), ...(quality ? { quality } : {}) });
    this.deps.logger.info({ job: id, inputs: body.inputs }, 'batch job accepted');
    void this.list(id);
    return { id, status: 'queued' };
  }

  /** A prefix must lie under a root, also once symbolic links are resolved (403 otherwise). */
  private async checkFolder(location: Location, roots: Roots, what: string): Promise<void> {
    roots.rootOf(location, what);
    if (location.scheme !== 'file') return;
    let real: string;
    try {
      real = await fs.realpath(location.path);
    } catch {
      return; // not there (yet): an output folder is created; an input folder lists nothing
    }
    roots.rootOf({ scheme: 'file', path: real }, `${what} ${formatUri(location)}, resolved,`);
  }

  /** Takes as many queued items as the bound allows. */
  fill(): void {
    if (this.stopped) return;
    // As many as the workers' windows hold, and some more being checked (input version, skip-if-exists)
    // or recorded by the master meanwhile (Dispatcher.unitsWanted).
    const bound = Math.max(minItemsInFlight, this.deps.dispatcher.unitsWanted());
    for (const work of this.deps.store.claimQueuedItems(bound - this.active.size)) {
      const controller = new AbortController();
      this.active.set(`${work.jobId}/${work.index}`, controller);
      void this.run(work, controller.signal);
    }
  }

  /** Lists a job's inputs into the store, resuming after its last committed page. */
  private async list(jobId: string): Promise<void> {
    if (this.listing.has(jobId)) return;
    this.listing.add(jobId);
    const { store, logger } = this.deps;
    try {
      for (let attempt = 1; ; attempt++) {
        const job = store.batchJob(jobId);
        if (!job || job.listed || job.status === 'canceled' || this.stopped) return;
        const spec = job.spec as BatchJobBody;
        try {
          await this.listFrom(jobId, spec, job.listCursor);
          if (this.stopped) return;
          const empty = store.jobSummary(jobId)?.progress.total === 0;
          store.finishListing(jobId, empty ? `no inputs found in ${JSON.stringify(spec.inputs)}` : undefined);
          break;
        } catch (error) {
          if (this.stopped) return;
          const message = (error as Error).message;
          if (errorKindOf(error) === 'permanent' || error instanceof HttpError || attempt >= listingAttempts) {
            store.finishListing(jobId, `listing the inputs failed: ${message}`);
            break;
          }
          logger.warn({ job: jobId, attempt, err: error }, 'listing broke off; resuming');
          await sleep(this.deps.retryBaseMs * 2 ** (attempt - 1));
        }
      }
    } finally {
      this.listing.delete(jobId);
    }
    this.fill();
    await this.afterChange(jobId);
  }

  private async listFrom(jobId: string, spec: BatchJobBody, cursor: string | undefined): Promise<void> {
    const { store, stores, sources } = this.deps;
    const exclude = spec.output ? parseUri(spec.output.prefix) : undefined;
    let page: NewItem[] = [];
    let last = cursor;
    const commit = () => {
      if (page.length === 0) return;
      store.addItems(jobId, page, last!);
      page = [];
      this.fill();
    };
    for await (const input of listInputs(spec.inputs, { stores, sources, ...(exclude ? { exclude } : {}) }, cursor)) {
      if (this.stopped) return;
      page.push({ source: input.uri, name: input.name, ...(input.version ? { version: input.version } : {}) });
      last = input.cursor;
      if (page.length >= listPage) {
        commit();
        const status = store.batchJob(jobId)?.status;
        if (!status || status === 'canceled' || store.batchJob(jobId)?.listed) return;
      }
    }
    commit();
  }

  private async run(work: ItemWork, signal: AbortSignal): Promise<void> {
    const { store, logger } = this.deps;
    let outcome: ItemOutcome;
    const job = store.batchJobSpec(work.jobId);
    try {
      if (!job) throw new ItemError('permanent', `job ${work.jobId} is gone`);
      outcome = await this.process(work, job, signal);
    } catch (error) {
      outcome = signal.aborted
        ? { status: 'canceled' }
        : { status: 'failed', error: (error as Error).message, errorKind: errorKindOf(error) };
    } finally {
      this.active.delete(`${work.jobId}/${work.index}`);
    }
    if (this.stopped) return;
    if (outcome.status === 'failed') logger.warn({ job: work.jobId, item: work.index, reason: outcome.error, kind: outcome.errorKind }, 'item failed');
    store.finishLater({ jobId: work.jobId, index: work.index, outcome }, (result) => this.recorded(work.jobId, outcome, result));
    if (outcome.status === 'failed' && (job?.spec as BatchJobBody | undefined)?.maxFailures !== undefined) this.failureDue = true;
    if (this.refillDue) return;
    this.refillDue = true;
    setImmediate(() => this.refill());
  }

  /**
   * Once per turn in which items finished: the items that take their places are claimed at once (a
   * claim commits nothing, so workers do not wait for the store's window), while the outcomes wait for
   * the store's next commit (JobStore heldWritesMs), which records them with the claims and started marks
   * of the same window: one commit for many items. A failure in a job with maxFailures is committed now,
   * so the limit is checked after the same outcomes as when each turn committed. An outcome not yet
   * committed when the master dies is an item still queued or running in the store: the next master runs it again.
   */
  private refill(): void {
    this.refillDue = false;
    if (this.failureDue) this.deps.store.commitHeld();
    this.failureDue = false;
    this.fill();
  }

  /** An outcome is committed: metrics now, and each job it touched checked once per commit. */
  private recorded(jobId: string, outcome: ItemOutcome, { status, finished, ageMs }: FinishedImage): void {
    const { metrics } = this.deps;
    metrics.imagesFinished.inc({ status: outcome.skipped ? 'skipped' : outcome.status });
    if (finished) metrics.jobLatency.observe(ageMs / 1000);
    if (this.recordedJobs.size === 0) queueMicrotask(() => void this.afterCommit());
    this.recordedJobs.set(jobId, status);
  }

  private async afterCommit(): Promise<void> {
    const jobs = [...this.recordedJobs];
    this.recordedJobs.clear();
    if (this.stopped) return;
    await Promise.all(jobs.map(([jobId, status]) => this.afterChange(jobId, status)));
  }

  /**
   * One item: checked against the roots, its input's version taken from the listing (or read, no bytes,
   * for an input named on its own), skipped when every output was written with the same content key;
   * otherwise one worker reads the input, decodes it once and writes every output itself
   * (docs/data-path.md). The master records what was written.
   */
  private async process(work: ItemWork, job: BatchJobSpec, signal: AbortSignal): Promise<ItemOutcome> {
    const spec = job.spec as BatchJobBody;
    const { pipeline } = job;
    const resolved = resolveItem(spec, work);
    const { source } = resolved;
    try {
      if (!ownUpload(spec.inputs, source)) this.deps.sources.rootOf(source, 'input');
      for (const output of resolved.outputs) this.deps.destinations.rootOf(output.location, 'output');
    } catch (error) {
      throw new ItemError('permanent', (error as Error).message);
    }
    const store = this.deps.stores.for(source);
    const { version } = work;
    const info = await this.retrying(() => (version && store.readyListed ? store.readyListed(source, version) : store.stat(source)), signal);
    if (!info) throw new ItemError('permanent', `${work.source} does not exist`);
    // Only outputs under a prefix are recorded with their content key (a result in the master's storage is not).
    const key = resolved.outputs.length > 0 ? contentKey({ uri: work.source, fingerprint: info.fingerprint }, pipeline, resolved.outputs) : '';
    if (resolved.outputs.length > 0 && (await this.alreadyWritten(resolved.outputs, key, signal))) {
      return { status: 'succeeded', skipped: true, outputs: resolved.outputs.map((output) => formatUri(output.location)) };
    }
    let result;
    try {
      result = await this.render(work, job, resolved, info, signal);
    } catch (error) {
      if (version && !signal.aborted) await this.checkListedVersion(work, source, version, signal);
      throw error;
    }
    const image = result.image!;
    const described = { width: image.width, height: image.height, outputFormat: image.format, ...splitAnnotations(image.annotations) };
    if (resolved.outputs.length === 0) return { status: 'succeeded', ...described };
    const recorded: OutputRecord[] = [];
    for (const [index, output] of resolved.outputs.entries()) {
      const fingerprint = await this.retrying(() => this.deps.stores.for(output.location).writtenVersion(output.location, result.variants![index]!.etag), signal);
      recorded.push({ uri: formatUri(output.location), contentKey: key, fingerprint });
    }
    return { status: 'succeeded', ...described, outputs: recorded.map((record) => record.uri), recorded };
  }

  /**
   * After a listed item failed: if its input changed or went since the listing (S3 answers the worker's
   * pinned GET with 412, or 404), that is the item's error, permanent: the listed version is what the
   * content key names, so the item is not run on another. A retry (POST …/retry) reads the version anew.
   */
  private async checkListedVersion(work: ItemWork, source: Location, listed: ObjectInfo, signal: AbortSignal): Promise<void> {
    // Storage that cannot tell either: the item keeps the error it failed with.
    const now = await this.retrying(() => this.deps.stores.for(source).stat(source), signal).catch(() => listed);
    if (!now) throw new ItemError('permanent', `${work.source} was deleted after its listing`);
    if (now.fingerprint !== listed.fingerprint) {
      throw new ItemError('permanent', `${work.source} changed after its listing (version ${listed.fingerprint} listed, ${now.fingerprint} now); retry the job's failed items to process it as it is now`);
    }
  }

  /** True when every output is there, written with this content key, and unchanged since. */
  private async alreadyWritten(outputs: readonly OutputTarget[], key: string, signal: AbortSignal): Promise<boolean> {
    for (const output of outputs) {
      const record = this.deps.store.outputRecord(formatUri(output.location));
      if (!record || record.contentKey !== key) return false;
      const now = await this.retrying(() => this.deps.stores.for(output.location).stat(output.location), signal);
      if (now?.fingerprint !== record.fingerprint) return false;
    }
    return true;
  }

  /**
   * Has one worker make the item's results with one variants task, reading and writing storage
   * itself. Each lease gets fresh locations (presigned URLs expire; master-served blobs are per lease);
   * a job without an output prefix keeps its one result in the master's storage.
   */
  private async render(work: ItemWork, job: BatchJobSpec, resolved: ResolvedItem, input: ObjectInfo, signal: AbortSignal) {
    const { pipeline } = job;
    const { blobs, config, stores } = this.deps;
    const targets: Array<Partial<OutputTarget>> = resolved.outputs.length > 0 ? resolved.outputs : [{}];
    const maxBytes = variantResultLimit(config.maxPixels);
    // Blobs of variant outputs are named per lease and variant; Blobs.drop(lease) knows only <lease>/in|out.
    const served: string[] = [];
    const serve = (id: string, direction: 'in' | 'out', reach: WorkerReach) => {
      if ('direct' in reach) return reach.direct;
      served.push(id);
      return blobs.offer(id, direction, reach.served);
    };
    const { source } = resolved;
    try {
      const result = await this.deps.dispatcher.run({
        id: `${work.jobId}/${work.index}`,
        jobId: work.jobId,
        imageIndex: work.index,
        kind: 'variants',
        pixels: 0, // unknown until a worker reads the header; batch items are small (they run whole)
        prepare: async (lease, worker) => {
          const variants = [];
          for (const [index, target] of targets.entries()) {
            const id = `${lease}.v${index}`;
            const output = target.location
              ? serve(id, 'out', await stores.for(target.location).reach(target.location, { put: { maxBytes } }, worker))
              : await this.masterStorageOutput(outputKey(work.jobId, work.index), id, worker, serve);
            const format = target.format ?? (job.format as OutputFormat | undefined);
            const quality = target.quality ?? job.quality;
            variants.push({ ...(format ? { format } : {}), ...(quality ? { quality } : {}), ...(target.width ? { width: target.width } : {}), output });
          }
          const spec: TaskSpec = {
            kind: 'variants',
            name: work.name,
            pipeline: pipeline as Array<Record<string, unknown>>,
            ...optionsOf(job.spec),
            whole: itemBudget(config),
            variants,
          };
          return { input: serve(`${lease}.in`, 'in', await stores.for(source).reach(source, { get: input }, worker)), spec };
        },
        signal,
      });
      if (!result.variants || result.variants.length !== targets.length || !result.image) throw new ItemError('transient', 'worker answered without describing every result');
      return result;
    } finally {
      for (const id of served) blobs.drop(id);
    }
  }

  /** A job without an output prefix: the worker writes to the master's storage as for uploads. */
  private async masterStorageOutput(key: string, id: string, worker: WorkerRecord, serve: (id: string, direction: 'out', reach: WorkerReach) => WireLocation) {
    const { storage } = this.deps;
    const direct = await storage.locate(key, 'put', worker);
    return serve(id, 'out', direct ? { direct } : { served: { write: (body) => storage.putStream(key, body) } });
  }

  /** Retries storage calls that failed transiently, with exponential backoff; permanent errors fail at once. */
  private retrying<T>(call: () => Promise<T>, signal: AbortSignal): Promise<T> {
    return pRetry(call, {
      retries: storageRetries,
      minTimeout: this.deps.retryBaseMs,
      factor: 2,
      signal,
      shouldRetry: ({ error }) => errorKindOf(error) === 'transient',
    });
  }

  /**
   * After an item or the listing changed a job: enforce maxFailures, write the manifest copy when it ends.
   * `status`: the job's status after the change, when the caller knows it; a job that is still running
   * and has no maxFailures then needs no read at all (this runs for every recorded turn).
   */
  private async afterChange(jobId: string, status?: JobStatus): Promise<void> {
    const { store } = this.deps;
    const spec = store.batchJobSpec(jobId)?.spec as BatchJobBody | undefined;
    if (!spec) return;
    const running = status !== undefined && !isTerminal(status);
    if (running && spec.maxFailures === undefined) return;
    const job = store.batchJob(jobId);
    if (!job) return;
    let stopped = false;
    if (spec.maxFailures !== undefined && job.error === undefined && !isTerminal(job.status)) {
      const view = store.jobSummary(jobId)!;
      const limit = failureLimit(spec.maxFailures, view.progress.total);
      if (view.progress.failed > limit) {
        const reason = `stopped: ${view.progress.failed} items failed, more than maxFailures ${JSON.stringify(spec.maxFailures)}${typeof spec.maxFailures === 'string' ? ` (${limit} of ${view.progress.total})` : ''}`;
        this.deps.logger.warn({ job: jobId, failed: view.progress.failed }, reason);
        store.stopJob(jobId, reason);
        for (const [key, controller] of this.active) if (key.startsWith(`${jobId}/`)) controller.abort(new Error(reason));
        stopped = true;
      }
    }
    const after = stopped ? store.batchJob(jobId) : job;
    if (after && isTerminal(after.status) && !after.manifestWritten) await this.writeManifestCopy(jobId);
  }

  /** The job's manifest, one line per item, read from the store a page at a time. */
  async *manifestLines(jobId: string): AsyncIterable<ManifestLine> {
    let cursor: string | undefined;
    do {
      const page = this.deps.store.itemsPage(jobId, { limit: listPage, ...(cursor ? { cursor } : {}) });
      for (const item of page.items) {
        yield {
          input: item.input ?? item.name,
          ...(item.output ? { output: item.output } : item.status === 'succeeded' ? { output: `/v1/jobs/${jobId}/images/${item.index}` } : {}),
          ...(item.outputs ? { outputs: item.outputs } : {}),
          status: item.skipped ? 'skipped' : item.status,
          ...(item.error ? { error: item.error } : {}),
          ...(item.annotations ? { annotations: item.annotations } : {}),
        };
      }
      cursor = page.next;
    } while (cursor);
  }

  /** With an output prefix, a copy of the manifest goes next to the results: `<prefix>manifest-<job id>.jsonl`. */
  private async writeManifestCopy(jobId: string): Promise<void> {
    const { store, stores, logger } = this.deps;
    const job = store.batchJob(jobId);
    const spec = job?.spec as BatchJobBody | undefined;
    if (!job || !spec?.output) {
      if (job) store.markManifestWritten(jobId);
      return;
    }
    const target = manifestLocation(spec.output.prefix, jobId);
    const scratch = path.join(this.deps.workDir, `manifest-${jobId}-${randomUUID()}.jsonl`);
    try {
      await fs.mkdir(this.deps.workDir, { recursive: true });
      const file = createWriteStream(scratch);
      for await (const line of this.manifestLines(jobId)) {
        if (!file.write(`${JSON.stringify(line)}\n`)) await once(file, 'drain');
      }
      file.end();
      await once(file, 'finish');
      await stores.for(target).write(target, { file: scratch });
      store.markManifestWritten(jobId);
      logger.info({ job: jobId, manifest: formatUri(target) }, 'manifest written');
    } catch (error) {
      logger.warn({ job: jobId, err: error }, 'manifest copy not written');
    } finally {
      await fs.rm(scratch, { force: true });
    }
  }
}

export function manifestLocation(outputPrefix: string, jobId: string): Location {
  return joinUnder(parseUri(outputPrefix), `manifest-${jobId}.jsonl`);
}

/** maxFailures as a count: a number as it is, a percentage of the items listed so far. */
export function failureLimit(maxFailures: number | string, total: number): number {
  if (typeof maxFailures === 'number') return maxFailures;
  return Math.floor((Number(maxFailures.slice(0, -1)) / 100) * total);
}

/** Bytes one result may take when the master writes it for a worker: 4 bytes per pixel of the largest image allowed, plus headers. */
function variantResultLimit(maxPixels: number): number {
  return maxPixels * 4 + 1024 * 1024;
}

/** The job's encoder options (from its body or preset), for its variants tasks. */
function optionsOf(spec: unknown): Pick<Extract<TaskSpec, { kind: 'variants' }>, 'options'> {
  const { options } = (spec ?? {}) as ResolvedBatchJobBody;
  return options ? { options } : {};
}
