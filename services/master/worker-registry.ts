import { EventEmitter } from 'node:events';
import type { WorkerState } from '../protocol/api.js';
import type { Heartbeat } from '../protocol/tasks.js';

export interface WorkerRecord {
  readonly id: string;
  readonly address: string;
  readonly slots: number;
  readonly state: WorkerState;
  /** Units the master has leased to this worker and not yet seen come back. */
  readonly inflight: number;
  readonly lastHeartbeat: number;
  /** The worker shares the master's file system (same filesId): it gets `file` locations. */
  readonly colocated: boolean;
}

type MutableRecord = { -readonly [K in keyof WorkerRecord]: WorkerRecord[K] };

/**
 * Workers known to the master, learnt from their heartbeats (a heartbeat registers). The registry is
 * the only writer of worker records: others read them and ask it to change them. A worker silent for
 * longer than the timeout is dead: 'dead' is emitted so the dispatcher re-queues its leases;
 * 'heartbeat' carries the leases the worker says it holds, which the dispatcher renews.
 */
export class WorkerRegistry extends EventEmitter<{ dead: [WorkerRecord]; available: []; heartbeat: [WorkerRecord, readonly string[]] }> {
  private readonly workers = new Map<string, MutableRecord>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly heartbeatTimeoutMs: number,
    /** The master's own filesId (services/shared/files-id.ts). */
    private readonly masterFilesId: string,
    /** Dead workers stay listed this long (at least 5 minutes) so /v1/cluster shows what happened. */
    private readonly forgetAfterMs = Math.max(heartbeatTimeoutMs * 10, 5 * 60_000),
  ) {
    super();
    this.sweeper = setInterval(() => this.sweep(), Math.max(100, Math.floor(heartbeatTimeoutMs / 4)));
    this.sweeper.unref();
  }

  heartbeat(id: string, beat: Heartbeat): WorkerRecord {
    const state: WorkerState = beat.draining ? 'draining' : 'ready';
    const fields = {
      address: beat.address.replace(/\/+$/, ''),
      slots: beat.slots,
      state,
      lastHeartbeat: Date.now(),
      colocated: beat.filesId !== undefined && beat.filesId === this.masterFilesId,
    };
    let record = this.workers.get(id);
    const wasReady = record?.state === 'ready';
    if (!record) {
      record = { id, inflight: 0, ...fields };
      this.workers.set(id, record);
    } else {
      // Updated in place: the dispatcher's leases hold this record.
      Object.assign(record, fields);
    }
    this.emit('heartbeat', record, beat.leases ?? []);
    if (state === 'ready' && !wasReady) this.emit('available');
    return record;
  }

  /**
   * A worker leaving on purpose (SIGTERM, after answering everything it held). Its answers may still be
   * arriving, so its leases are left to complete; a lease that never does still expires.
   */
  remove(id: string): void {
    this.workers.delete(id);
  }

  markDead(id: string): void {
    const record = this.workers.get(id);
    if (!record || record.state === 'dead') return;
    record.state = 'dead';
    this.emit('dead', record);
  }

  /** The worker refused work because it is shutting down: send it nothing more. */
  markDraining(id: string): void {
    const record = this.workers.get(id);
    if (record && record.state === 'ready') record.state = 'draining';
  }

  /** Counts `count` units leased to the worker. */
  reserve(worker: WorkerRecord, count: number): void {
    (worker as MutableRecord).inflight += count;
  }

  /** One unit leased to the worker came back (or was given up). */
  release(worker: WorkerRecord): void {
    if (worker.inflight > 0) (worker as MutableRecord).inflight -= 1;
  }

  get(id: string): WorkerRecord | undefined {
    return this.workers.get(id);
  }

  list(): WorkerRecord[] {
    return [...this.workers.values()];
  }

  /** Task slots of all ready workers together. */
  totalSlots(): number {
    return this.list().reduce((sum, worker) => sum + (worker.state === 'ready' ? worker.slots : 0), 0);
  }

  private sweep(): void {
    const now = Date.now();
    for (const worker of this.workers.values()) {
      if (worker.state !== 'dead' && now - worker.lastHeartbeat > this.heartbeatTimeoutMs) this.markDead(worker.id);
      else if (worker.state === 'dead' && now - worker.lastHeartbeat > this.forgetAfterMs) this.workers.delete(worker.id);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
