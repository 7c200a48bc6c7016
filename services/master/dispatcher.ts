import { randomUUID } from 'node:crypto';
import { authHeaders } from '../shared/auth.js';
import { describeErrorResponse } from '../shared/http-error.js';
import type { Logger } from '../shared/logger.js';
import type { JobStore, TaskRecord } from './job-store.js';
import type { Metrics } from './metrics.js';
import type { WorkerRecord, WorkerRegistry } from './worker-registry.js';

export type UnitKind = 'whole' | 'tile' | 'variants';

/** One piece of work for one worker: a whole small image, or one tile of a large one. */
export interface WorkUnit {
  /** Unique and stable across retries; used in logs and the lease journal. */
  id: string;
  jobId: string;
  imageIndex: number;
  kind: UnitKind;
  /** Pixels this unit processes: the backlog the scaler reads is measured in these. */
  pixels: number;
  /**
   * Builds the request body when a worker is ready, so queued units hold no image bytes. Its parts are
   * streamed as they are: fetch would copy a single buffer body, and joining the parts is another copy.
   */
  body(): Promise<Buffer[]>;
  /** Extra request headers (the variants task travels in one). */
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface UnitResult {
  data: Buffer;
  /** The worker's x-dips-result header (JSON, URI-encoded), when it sent one. */
  meta?: string;
}

/** The worker rejected the input itself (it answered 4xx): retrying elsewhere cannot help. */
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
  leaseMs: number;
  lateResultGraceMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  token?: string;
}

interface Pending {
  unit: WorkUnit;
  attempts: number;
  readyAt: number;
  resolve(result: UnitResult): void;
  reject(error: unknown): void;
  lease?: Lease;
  settled: boolean;
  onAbort: () => void;
}

interface Lease {
  id: string;
  pending: Pending;
  worker: WorkerRecord;
  controller: AbortController;
  timer: NodeJS.Timeout;
  closed: boolean;
}

const maxBackoffMs = 30_000;
/**
 * Tasks sent per worker slot: the second one waits in the worker's queue, so a slot starts its next
 * task as soon as it answers instead of idling for a round trip to the master.
 */
const tasksPerSlot = 2;

/**
 * Sends units of work to workers, at most `tasksPerSlot` per worker slot at a time. Every dispatch is a lease
 * with a deadline; on a worker error, an expired lease or a worker that stops heartbeating, the unit
 * is re-queued with exponential backoff until the attempt limit. Only the current lease's result is
 * accepted: a late answer from an expired lease is counted and dropped.
 */
export class Dispatcher {
  private readonly queue: Pending[] = [];
  /** Open leases; an expired lease leaves this set but may still receive its (ignored) late answer. */
  private readonly leases = new Set<Lease>();
  private wakeTimer: NodeJS.Timeout | undefined;
  private readonly journalEntries: TaskRecord[] = [];
  private journalFlush: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(
    private readonly registry: WorkerRegistry,
    private readonly options: DispatcherOptions,
    private readonly store: JobStore,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {
    registry.on('available', () => this.pump());
    registry.on('dead', (worker) => this.workerLost(worker));
  }

  run(unit: WorkUnit): Promise<UnitResult> {
    return new Promise<UnitResult>((resolve, reject) => {
      if (unit.signal?.aborted) return reject(unit.signal.reason);
      const pending: Pending = { unit, attempts: 0, readyAt: 0, resolve, reject, settled: false, onAbort: () => this.cancel(pending) };
      unit.signal?.addEventListener('abort', pending.onAbort, { once: true });
      this.enqueue(pending);
    });
  }

  backlog(): Backlog {
    let queuedPixels = 0;
    for (const pending of this.queue) queuedPixels += pending.unit.pixels;
    let inflightPixels = 0;
    for (const lease of this.leases) inflightPixels += lease.pending.unit.pixels;
    return { queuedUnits: this.queue.length, queuedPixels, inflightUnits: this.leases.size, inflightPixels };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.wakeTimer);
    this.flushJournal();
    for (const lease of this.leases) {
      clearTimeout(lease.timer);
      lease.controller.abort();
    }
    this.leases.clear();
  }

  private enqueue(pending: Pending): void {
    this.queue.push(pending);
    this.journal(pending, 'queued');
    this.pump();
  }

  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    let nextWake = Infinity;
    for (;;) {
      const workers = this.registry.withFreeSlots(tasksPerSlot);
      if (workers.length === 0) break;
      const index = this.queue.findIndex((pending) => pending.readyAt <= now);
      if (index < 0) break;
      const [pending] = this.queue.splice(index, 1);
      this.lease(pending!, workers[0]!);
    }
    for (const pending of this.queue) if (pending.readyAt > now) nextWake = Math.min(nextWake, pending.readyAt);
    clearTimeout(this.wakeTimer);
    if (nextWake < Infinity) this.wakeTimer = setTimeout(() => this.pump(), nextWake - now);
    this.updateGauges();
  }

  private lease(pending: Pending, worker: WorkerRecord): void {
    const { unit } = pending;
    worker.inflight += 1;
    const lease: Lease = {
      id: randomUUID(),
      pending,
      worker,
      controller: new AbortController(),
      timer: setTimeout(() => this.expire(lease, `lease expired after ${this.options.leaseMs} ms on worker ${worker.id}`), this.options.leaseMs),
      closed: false,
    };
    pending.lease = lease;
    this.leases.add(lease);
    this.journal(pending, 'leased', lease);
    this.logger.debug({ unit: unit.id, job: unit.jobId, worker: worker.id, lease: lease.id }, 'leased');
    void this.send(lease);
  }

  private async send(lease: Lease): Promise<void> {
    const { pending, worker } = lease;
    const { unit } = pending;
    let response: Response;
    let sent = 0;
    const started = performance.now();
    try {
      const parts = await unit.body();
      if (lease.closed) return;
      sent = parts.reduce((sum, part) => sum + part.length, 0);
      const request: RequestInit & { duplex: 'half' } = {
        method: 'POST',
        body: streamOf(parts),
        duplex: 'half',
        headers: {
          ...unit.headers,
          ...authHeaders(this.options.token),
          'content-type': 'application/octet-stream',
          'x-dips-lease': lease.id,
          'x-dips-unit': unit.id,
        },
        signal: lease.controller.signal,
      };
      response = await fetch(`${worker.address}/v1/tasks/${unit.kind}`, request);
    } catch (error) {
      if (lease.closed) return;
      this.attemptFailed(lease, `worker ${worker.id} unreachable: ${(error as Error).message}`);
      // The connection itself failed (sent is set once the body is built): send this worker nothing more
      // until it heartbeats again, or a crashed worker uses up every attempt of the units sent to it
      // before its heartbeats time out.
      if (sent > 0) this.registry.markDead(worker.id);
      return;
    }
    if (response.ok) {
      let data: Buffer;
      try {
        data = Buffer.from(await response.arrayBuffer());
      } catch (error) {
        if (!lease.closed) this.attemptFailed(lease, `worker ${worker.id} answer cut off: ${(error as Error).message}`);
        return;
      }
      if (lease.closed) {
        this.metrics.lateResults.inc();
        this.logger.info({ unit: unit.id, job: unit.jobId, worker: worker.id, lease: lease.id }, 'late result ignored');
        return;
      }
      this.closeLease(lease);
      const meta = response.headers.get('x-dips-result') ?? undefined;
      this.metrics.unitsCompleted.inc({ kind: unit.kind });
      this.metrics.unitBytes.inc({ kind: unit.kind, direction: 'sent' }, sent);
      this.metrics.unitBytes.inc({ kind: unit.kind, direction: 'received' }, data.length);
      this.metrics.unitRoundTrip.observe({ kind: unit.kind }, (performance.now() - started) / 1000);
      this.settle(pending, 'done', () => pending.resolve({ data, ...(meta === undefined ? {} : { meta }) }));
      return;
    }
    const reason = await describeErrorResponse(response);
    if (lease.closed) return;
    if (response.status === 503) {
      // The worker is draining: not the unit's fault, so no attempt is spent.
      this.closeLease(lease);
      worker.state = worker.state === 'dead' ? 'dead' : 'draining';
      this.queue.unshift(pending);
      this.journal(pending, 'queued');
      this.pump();
    } else if (response.status >= 400 && response.status < 500 && response.status !== 401 && response.status !== 408 && response.status !== 429) {
      this.closeLease(lease);
      this.settle(pending, 'failed', () => pending.reject(new PermanentTaskError(reason.replace(/^\d+ [a-z_]+: /, ''))), reason);
    } else {
      this.attemptFailed(lease, `worker ${worker.id} answered ${reason}`);
    }
  }

  private expire(lease: Lease, reason: string): void {
    if (lease.closed) return;
    this.attemptFailed(lease, reason);
    // Keep listening a while so a late answer is seen (and ignored), then give up on the connection.
    setTimeout(() => lease.controller.abort(), this.options.lateResultGraceMs).unref();
  }

  private attemptFailed(lease: Lease, reason: string): void {
    const { pending } = lease;
    this.closeLease(lease);
    pending.attempts += 1;
    this.logger.warn({ unit: pending.unit.id, job: pending.unit.jobId, worker: lease.worker.id, attempt: pending.attempts, reason }, 'attempt failed');
    if (pending.attempts >= this.options.maxAttempts) {
      const error = new Error(`failed after ${pending.attempts} attempts; last: ${reason}`);
      this.settle(pending, 'failed', () => pending.reject(error), reason);
      return;
    }
    this.metrics.retries.inc({ reason: reason.startsWith('lease expired') ? 'lease' : reason.includes('heartbeat') ? 'heartbeat' : 'error' });
    const backoff = Math.min(maxBackoffMs, this.options.retryBaseMs * 2 ** (pending.attempts - 1));
    pending.readyAt = Date.now() + backoff;
    this.queue.push(pending);
    this.journal(pending, 'queued', undefined, reason);
    this.pump();
  }

  private closeLease(lease: Lease): void {
    lease.closed = true;
    clearTimeout(lease.timer);
    if (lease.worker.inflight > 0) lease.worker.inflight -= 1;
    lease.pending.lease = undefined;
    this.leases.delete(lease);
    this.pump();
  }

  private workerLost(worker: WorkerRecord): void {
    for (const lease of [...this.leases]) {
      if (lease.worker.id === worker.id && !lease.closed) this.expire(lease, `worker ${worker.id} missed its heartbeats`);
    }
  }

  private cancel(pending: Pending): void {
    const index = this.queue.indexOf(pending);
    if (index >= 0) this.queue.splice(index, 1);
    if (pending.lease) {
      const { lease } = pending;
      this.closeLease(lease);
      lease.controller.abort();
    }
    this.settle(pending, 'failed', () => pending.reject(pending.unit.signal?.reason), 'canceled');
    this.updateGauges();
  }

  private settle(pending: Pending, state: 'done' | 'failed', finish: () => void, error?: string): void {
    if (pending.settled) return;
    pending.settled = true;
    pending.unit.signal?.removeEventListener('abort', pending.onAbort);
    this.journal(pending, state, undefined, error);
    finish();
    this.updateGauges();
  }

  /** Entries are written together once per turn of the event loop (one SQLite commit for all of them). */
  private journal(pending: Pending, state: TaskRecord['state'], lease?: Lease, error?: string): void {
    // After close the store is closing too: what settles now is not worth recording.
    if (this.closed) return;
    const { unit } = pending;
    const now = Date.now();
    const entries = this.journalEntries.push({
      id: unit.id,
      jobId: unit.jobId,
      index: unit.imageIndex,
      state,
      attempts: pending.attempts,
      at: now,
      ...(lease ? { workerId: lease.worker.id, leaseId: lease.id, leaseDeadline: now + this.options.leaseMs } : {}),
      ...(error === undefined ? {} : { error }),
    });
    if (entries === 1) this.journalFlush = setImmediate(() => this.flushJournal());
  }

  private flushJournal(): void {
    clearImmediate(this.journalFlush);
    const entries = this.journalEntries.splice(0);
    if (entries.length === 0) return;
    try {
      // The job may have been deleted (retention) meanwhile; the journal is advisory.
      for (const { task, error } of this.store.recordTasks(entries)) this.logger.debug({ unit: task.id, err: error }, 'lease journal write skipped');
    } catch (error) {
      this.logger.warn({ err: error, entries: entries.length }, 'lease journal write failed');
    }
  }

  private updateGauges(): void {
    this.metrics.queueDepth.set(this.queue.length);
    this.metrics.inflight.set(this.leases.size);
  }
}

/** A request body fetch sends chunk by chunk, without copying the parts. */
function streamOf(parts: readonly Buffer[]): RequestInit['body'] {
  return (async function* () {
    yield* parts;
  })() as unknown as RequestInit['body'];
}
