import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { authHeaders } from '../shared/auth.js';
import { keepAliveRequest } from '../shared/http-client.js';
import type { Logger } from '../shared/logger.js';
import { describeApiError, isPermanentStatus, readErrorResponse } from '../protocol/errors.js';
import {
  maxTasksPerBatch,
  taskResult,
  type ImageOutput,
  type Location,
  type Task,
  type TaskBatch,
  type TaskFailure,
  type TaskKind,
  type TaskResult,
  type TaskSpec,
} from '../protocol/tasks.js';
import { type WorkItem, type WorkKind, workSignature } from '../scaler/work.js';
import type { Blobs } from './blobs.js';
import type { Metrics } from './metrics.js';
import type { WorkerRecord, WorkerRegistry } from './worker-registry.js';

/** A unit's task for one lease: where the worker reads and writes, and what it does. */
export interface PreparedTask {
  input: Location;
  /** Absent for a variants task (each variant names its own output) and for a measuring tile (it writes nothing). */
  output?: Location;
  spec: TaskSpec;
}

/** One piece of work for one worker: a whole small image, or one tile of a large one. */
export interface WorkUnit {
  /** Unique and stable across retries; used in logs. */
  id: string;
  jobId: string;
  imageIndex: number;
  kind: TaskKind;
  /** Pixels this unit processes: the backlog the scaler reads is measured in these. */
  pixels: number;
  /**
   * Builds the task when a worker is ready, for that lease and worker: presigned URLs expire and
   * master-served blobs belong to the lease, so queued units hold neither.
   */
  prepare(lease: string, worker: WorkerRecord): Promise<PreparedTask>;
  signal?: AbortSignal;
  /** What the worker does to the unit's pixels: the scaler's cost model keys on it. */
  work?: WorkKind;
}

export interface UnitResult {
  /** The lease whose attempt succeeded (its blobs held the output). */
  lease: string;
  processingMs: number;
  bytesIn: number;
  bytesOut: number;
  image?: ImageOutput;
  /** A variants unit's results, in the order the worker wrote them to its output. */
  variants?: Extract<TaskResult, { ok: true }>['variants'];
  /** A decode or tile unit's report. */
  tile?: Extract<TaskResult, { ok: true }>['tile'];
}

/** The unit cannot succeed: the worker rejected its input, or two workers failed it identically. */
export class PermanentTaskError extends Error {
  override readonly name = 'PermanentTaskError';
}

export interface Backlog {
  queuedUnits: number;
  queuedPixels: number;
  inflightUnits: number;
  inflightPixels: number;
}

export interface DispatcherOptions {
  /** How long a lease lives without renewal; every heartbeat that lists it renews it. */
  leaseMs: number;
  lateResultGraceMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  /** The worker credential the master sends with tasks. */
  token?: string;
  /** Jitter source in [0, 1): tests fix it. */
  random?: () => number;
}

interface Pending {
  unit: WorkUnit;
  attempts: number;
  readyAt: number;
  resolve(result: UnitResult): void;
  reject(error: unknown): void;
  lease?: Lease;
  /** The last failure a worker reported for this unit, and which worker: the same failure on another worker is final. */
  lastFailure?: { worker: string; signature: string };
  settled: boolean;
  onAbort: () => void;
}

interface Lease {
  id: string;
  pending: Pending;
  worker: WorkerRecord;
  batch: AbortController;
  timer: NodeJS.Timeout;
  closed: boolean;
  leasedAt: number;
}

const maxBackoffMs = 30_000;
/**
 * Tasks sent per worker slot: the second one waits in the worker's queue, so a slot starts its next
 * task as soon as it answers instead of idling for a round trip to the master.
 */
const tasksPerSlot = 2;

/**
 * Sends units of work to workers in batches (one request per worker per turn carries every unit it has
 * room for; results stream back one line each). Every unit sent is a lease: it expires unless the
 * worker's heartbeats keep listing it, and on a worker error, an expired lease or a worker that stops
 * heartbeating the unit is re-queued with jittered exponential backoff until the attempt limit. Only
 * the current lease's result is accepted: a late answer from an expired lease is counted and dropped.
 */
export class Dispatcher {
  private readonly queue: Pending[] = [];
  /** Open leases by id; an expired lease leaves this map but may still receive its late answer. */
  private readonly leases = new Map<string, Lease>();
  /** Leases that expired within the late-result grace: their answer still counts if the unit is not out again. */
  private readonly expired = new Map<string, Lease>();
  private wakeTimer: NodeJS.Timeout | undefined;
  private pumpScheduled = false;
  private closed = false;
  private readonly random: () => number;
  private readonly doneListeners: Array<(unit: WorkUnit, result: UnitResult) => void> = [];

  constructor(
    private readonly registry: WorkerRegistry,
    private readonly blobs: Blobs,
    private readonly options: DispatcherOptions,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    /** Called once per turn with the units that were leased in it (the store marks their images started). */
    private readonly onLeased: (units: readonly WorkUnit[]) => void = () => undefined,
  ) {
    this.random = options.random ?? Math.random;
    registry.on('available', () => this.schedulePump());
    registry.on('dead', (worker) => this.workerLost(worker));
    registry.on('heartbeat', (worker, held) => this.renew(worker, held));
  }

  run(unit: WorkUnit): Promise<UnitResult> {
    return new Promise<UnitResult>((resolve, reject) => {
      if (unit.signal?.aborted) return reject(unit.signal.reason);
      const pending: Pending = { unit, attempts: 0, readyAt: 0, resolve, reject, settled: false, onAbort: () => this.cancel(pending) };
      unit.signal?.addEventListener('abort', pending.onAbort, { once: true });
      this.queue.push(pending);
      this.schedulePump();
    });
  }

  /** Called for every unit a worker completed, with its result (processingMs: the scaler's service time). */
  /**
   * Whole-image units queued or on workers, as the scaler's backlog lists them (tiles are counted by
   * their image, ImageRunner.tiledWork). Units queued with the same work are one item.
   */
  wholeWork(now = Date.now()): WorkItem[] {
    const queued = new Map<string, WorkItem>();
    for (const { unit } of this.queue) {
      if (unit.kind !== 'whole') continue;
      const kind = unit.work ?? { pipeline: [] };
      const key = workSignature(kind);
      const item = queued.get(key) ?? { kind, pixels: 0, units: 0, runningMs: 0 };
      item.pixels += unit.pixels;
      item.units += 1;
      queued.set(key, item);
    }
    const running: WorkItem[] = [];
    for (const { pending, leasedAt } of this.leases.values()) {
      if (pending.unit.kind !== 'whole') continue;
      running.push({ kind: pending.unit.work ?? { pipeline: [] }, pixels: pending.unit.pixels, units: 1, runningMs: now - leasedAt });
    }
    return [...queued.values(), ...running];
  }

  onUnitDone(listener: (unit: WorkUnit, result: UnitResult) => void): void {
    this.doneListeners.push(listener);
  }

  backlog(): Backlog {
    let queuedPixels = 0;
    for (const pending of this.queue) queuedPixels += pending.unit.pixels;
    let inflightPixels = 0;
    for (const lease of this.leases.values()) inflightPixels += lease.pending.unit.pixels;
    return { queuedUnits: this.queue.length, queuedPixels, inflightUnits: this.leases.size, inflightPixels };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.wakeTimer);
    for (const lease of this.leases.values()) {
      clearTimeout(lease.timer);
      lease.batch.abort();
    }
    this.leases.clear();
  }

  /**
   * Pumps once per turn of the event loop, so units queued together (a job's images, a stage's tiles)
   * leave together in one batch per worker.
   */
  private schedulePump(): void {
    if (this.pumpScheduled || this.closed) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    const leased: WorkUnit[] = [];
    // A unit that failed on a worker goes to another one when there is another: a second opinion is what
    // tells a deterministic failure from a worker's trouble.
    const alternatives = this.registry.list().filter((worker) => worker.state === 'ready').length > 1;
    const workers = this.registry.withFreeSlots(tasksPerSlot);
    const batches = new Map<WorkerRecord, Lease[]>(workers.map((worker) => [worker, []]));
    // Every worker's free slots first, then the queue behind them: a few units (the strips of one image)
    // spread over the workers instead of waiting in one worker's queue while another is idle.
    for (const depth of [1, tasksPerSlot]) {
      for (const worker of workers) {
        const batch = batches.get(worker)!;
        const room = Math.min(maxTasksPerBatch, worker.slots * depth - worker.inflight);
        for (let index = 0; index < this.queue.length && batch.length < room; ) {
          const pending = this.queue[index]!;
          if (pending.readyAt > now || (alternatives && pending.lastFailure?.worker === worker.id)) {
            index += 1;
            continue;
          }
          this.queue.splice(index, 1);
          batch.push(this.lease(pending, worker));
          leased.push(pending.unit);
        }
      }
    }
    for (const [worker, batch] of batches) {
      if (batch.length === 0) continue;
      this.registry.reserve(worker, batch.length);
      void this.send(worker, batch);
    }
    let nextWake = Infinity;
    for (const pending of this.queue) if (pending.readyAt > now) nextWake = Math.min(nextWake, pending.readyAt);
    clearTimeout(this.wakeTimer);
    if (nextWake < Infinity) this.wakeTimer = setTimeout(() => this.schedulePump(), nextWake - now);
    if (leased.length > 0) this.onLeased(leased);
    this.updateGauges();
  }

  private lease(pending: Pending, worker: WorkerRecord): Lease {
    const lease: Lease = {
      id: randomUUID(),
      pending,
      worker,
      batch: new AbortController(),
      timer: this.leaseTimer(() => lease),
      closed: false,
      leasedAt: Date.now(),
    };
    pending.lease = lease;
    this.leases.set(lease.id, lease);
    return lease;
  }

  private leaseTimer(lease: () => Lease): NodeJS.Timeout {
    return setTimeout(() => this.expire(lease(), `lease expired after ${this.options.leaseMs} ms without renewal on worker ${lease().worker.id}`), this.options.leaseMs);
  }

  /** A heartbeat lists the leases its worker holds: each gets a fresh deadline. */
  private renew(worker: WorkerRecord, held: readonly string[]): void {
    for (const id of held) {
      const lease = this.leases.get(id);
      if (!lease || lease.closed || lease.worker.id !== worker.id) continue;
      clearTimeout(lease.timer);
      lease.timer = this.leaseTimer(() => lease);
    }
  }

  private async send(worker: WorkerRecord, batch: Lease[]): Promise<void> {
    const started = performance.now();
    // One controller for the request: aborting it (cancel, close) ends every task in it on the worker.
    const controller = new AbortController();
    for (const lease of batch) lease.batch = controller;
    let tasks: Task[];
    try {
      tasks = await Promise.all(
        batch.map(async (lease) => ({ unit: lease.pending.unit.id, lease: lease.id, ...(await lease.pending.unit.prepare(lease.id, worker)) })),
      );
    } catch (error) {
      for (const lease of batch) if (!lease.closed) this.attemptFailed(lease, `task could not be prepared: ${(error as Error).message}`);
      return;
    }
    const open = batch.filter((lease) => !lease.closed);
    if (open.length === 0) return;
    const body: TaskBatch = { tasks: tasks.filter((task) => this.leases.get(task.lease)?.closed === false) };
    this.metrics.tasksPerRequest.observe(body.tasks.length);
    let response: IncomingMessage;
    try {
      response = await keepAliveRequest(`${worker.address}/v1/tasks`, {
        method: 'POST',
        body: JSON.stringify(body),
        headers: { ...authHeaders(this.options.token), 'content-type': 'application/json' },
        signal: controller.signal,
      });
    } catch (error) {
      const reason = `worker ${worker.id} unreachable: ${(error as Error).message}`;
      for (const lease of open) if (!lease.closed) this.attemptFailed(lease, reason);
      // Send this worker nothing more until it heartbeats again, or a crashed worker uses up every
      // attempt of the units sent to it before its heartbeats time out.
      if (!controller.signal.aborted) this.registry.markDead(worker.id);
      return;
    }
    const status = response.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      return this.batchRefused(worker, open, new Response(Readable.toWeb(response) as ReadableStream, { status, statusText: response.statusMessage }));
    }
    const answered = new Set<string>();
    try {
      for await (const line of ndjsonLines(response)) {
        const result = taskResult.parse(JSON.parse(line));
        answered.add(result.lease);
        this.resultArrived(worker, result, started);
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      this.logger.warn({ worker: worker.id, err: error }, 'result stream cut off');
      // The connection broke under the worker's answers: it crashed or is unreachable (as above).
      this.registry.markDead(worker.id);
    }
    for (const lease of open) {
      if (!answered.has(lease.id) && !lease.closed) this.attemptFailed(lease, `worker ${worker.id} closed the batch without answering ${lease.pending.unit.id}`);
    }
  }

  /** The worker refused the whole batch. */
  private async batchRefused(worker: WorkerRecord, open: Lease[], response: Response): Promise<void> {
    const error = await readErrorResponse(response);
    if (error.status === 503) {
      // The worker is draining: not the units' fault, so no attempt is spent.
      this.registry.markDraining(worker.id);
      for (const lease of open) {
        if (lease.closed) continue;
        this.closeLease(lease);
        this.queue.unshift(lease.pending);
      }
      this.schedulePump();
      return;
    }
    for (const lease of open) {
      if (lease.closed) continue;
      if (error.permanent) this.fail(lease, new PermanentTaskError(error.message), describeApiError(error));
      else this.attemptFailed(lease, `worker ${worker.id} answered ${describeApiError(error)}`);
    }
  }

  private resultArrived(worker: WorkerRecord, result: TaskResult, started: number): void {
    const late = this.expired.get(result.lease);
    if (late && result.ok && this.reclaim(late.pending)) {
      // A slow worker (a loaded machine, a stalled heartbeat) finished before the unit went out again:
      // its result is as good as any, and running the unit again would only add load.
      this.expired.delete(result.lease);
      this.logger.info({ worker: worker.id, lease: result.lease }, 'late result taken: the unit was waiting for its retry');
      return this.succeed(late.pending, result, started);
    }
    const lease = this.leases.get(result.lease);
    if (!lease || lease.closed) {
      this.metrics.lateResults.inc();
      this.logger.info({ worker: worker.id, lease: result.lease }, 'late result ignored');
      return;
    }
    if (!result.ok) return this.taskFailed(lease, result.error);
    this.closeLease(lease);
    this.succeed(lease.pending, result, started);
  }

  /** Takes a unit waiting in the queue for its retry back out of it; false if it is not waiting there. */
  private reclaim(pending: Pending): boolean {
    if (pending.settled || pending.lease) return false;
    const index = this.queue.indexOf(pending);
    if (index < 0) return false;
    this.queue.splice(index, 1);
    return true;
  }

  private succeed(pending: Pending, result: Extract<TaskResult, { ok: true }>, started: number): void {
    const { unit } = pending;
    this.metrics.unitsCompleted.inc({ kind: unit.kind });
    this.metrics.unitBytes.inc({ kind: unit.kind, direction: 'in' }, result.bytesIn);
    this.metrics.unitBytes.inc({ kind: unit.kind, direction: 'out' }, result.bytesOut);
    this.metrics.unitRoundTrip.observe({ kind: unit.kind }, (performance.now() - started) / 1000);
    const { lease: id, processingMs, bytesIn, bytesOut, image, variants, tile } = result;
    const done: UnitResult = { lease: id, processingMs, bytesIn, bytesOut, ...(image ? { image } : {}), ...(variants ? { variants } : {}), ...(tile ? { tile } : {}) };
    for (const listener of this.doneListeners) listener(unit, done);
    this.settle(pending, () => pending.resolve(done));
  }

  /**
   * A worker ran the task and it failed. A permanent failure (the input or pipeline is wrong) is final
   * at once; another is retried, unless a second worker fails it the same way: then it is
   * deterministic, and more attempts would only repeat it.
   */
  private taskFailed(lease: Lease, failure: TaskFailure): void {
    const { pending, worker } = lease;
    const reason = `${failure.status} ${failure.code}: ${failure.message}`;
    if (isPermanentStatus(failure.status)) return this.fail(lease, new PermanentTaskError(failure.message), reason);
    const signature = `${failure.code}: ${failure.message}`;
    const previous = pending.lastFailure;
    // A storage error says how storage was, not what the unit is: an outage on two workers is still an outage.
    if (previous && previous.worker !== worker.id && previous.signature === signature && failure.code !== 'storage_error') {
      return this.fail(lease, new PermanentTaskError(`${failure.message} (the same on two workers)`), reason);
    }
    pending.lastFailure = { worker: worker.id, signature };
    this.attemptFailed(lease, `worker ${worker.id} failed it: ${reason}`);
  }

  private fail(lease: Lease, error: Error, reason: string): void {
    const { pending } = lease;
    this.closeLease(lease);
    this.logger.warn({ unit: pending.unit.id, job: pending.unit.jobId, worker: lease.worker.id, reason }, 'unit failed for good');
    this.settle(pending, () => pending.reject(error));
  }

  private expire(lease: Lease, reason: string): void {
    if (lease.closed) return;
    const { batch } = lease;
    this.attemptFailed(lease, reason);
    this.expired.set(lease.id, lease);
    // Keep listening a while so a late answer is seen, then give up on the connection unless other
    // leases of the batch are still open on it.
    setTimeout(() => {
      this.expired.delete(lease.id);
      if (![...this.leases.values()].some((other) => other.batch === batch)) batch.abort();
    }, this.options.lateResultGraceMs).unref();
  }

  private attemptFailed(lease: Lease, reason: string): void {
    const { pending } = lease;
    this.closeLease(lease);
    pending.attempts += 1;
    this.logger.warn({ unit: pending.unit.id, job: pending.unit.jobId, worker: lease.worker.id, attempt: pending.attempts, reason }, 'attempt failed');
    if (pending.attempts >= this.options.maxAttempts) {
      const error = new Error(`failed after ${pending.attempts} attempts; last: ${reason}`);
      this.settle(pending, () => pending.reject(error));
      return;
    }
    this.metrics.retries.inc({ reason: reason.startsWith('lease expired') ? 'lease' : reason.includes('heartbeat') ? 'heartbeat' : 'error' });
    pending.readyAt = Date.now() + retryDelay(this.options.retryBaseMs, pending.attempts, this.random());
    this.queue.push(pending);
    this.schedulePump();
  }

  private closeLease(lease: Lease): void {
    lease.closed = true;
    clearTimeout(lease.timer);
    this.registry.release(lease.worker);
    this.blobs.drop(lease.id);
    lease.pending.lease = undefined;
    this.leases.delete(lease.id);
    this.schedulePump();
  }

  private workerLost(worker: WorkerRecord): void {
    for (const lease of [...this.leases.values()]) {
      if (lease.worker.id === worker.id && !lease.closed) this.expire(lease, `worker ${worker.id} missed its heartbeats`);
    }
  }

  private cancel(pending: Pending): void {
    const index = this.queue.indexOf(pending);
    if (index >= 0) this.queue.splice(index, 1);
    const { lease } = pending;
    if (lease) {
      this.closeLease(lease);
      if (![...this.leases.values()].some((other) => other.batch === lease.batch)) lease.batch.abort();
    }
    this.settle(pending, () => pending.reject(pending.unit.signal?.reason));
  }

  private settle(pending: Pending, finish: () => void): void {
    if (pending.settled) return;
    pending.settled = true;
    pending.unit.signal?.removeEventListener('abort', pending.onAbort);
    finish();
    this.updateGauges();
  }

  private updateGauges(): void {
    this.metrics.queueDepth.set(this.queue.length);
    this.metrics.inflight.set(this.leases.size);
  }
}

/**
 * The non-blank lines of a response body as they arrive. A body cut off before its end (the worker
 * crashed, the connection broke) throws: that tells a lost worker from one that answered and closed.
 */
async function* ndjsonLines(body: IncomingMessage): AsyncIterable<string> {
  body.setEncoding('utf8');
  let rest = '';
  for await (const chunk of body as AsyncIterable<string>) {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop()!;
    for (const line of lines) if (line.trim() !== '') yield line;
  }
  if (rest.trim() !== '') yield rest;
}

/**
 * Exponential backoff with "equal jitter": half the step is fixed, half random, so units that failed
 * together (a worker died under them) do not all come back at the same moment, yet none retries at once.
 */
export function retryDelay(baseMs: number, attempt: number, random: number): number {
  const step = Math.min(maxBackoffMs, baseMs * 2 ** (attempt - 1));
  return Math.round(step / 2 + (step / 2) * random);
}
