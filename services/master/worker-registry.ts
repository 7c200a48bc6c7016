import { EventEmitter } from 'node:events';

export type WorkerState = 'ready' | 'draining' | 'dead';

export interface WorkerRecord {
  id: string;
  address: string;
  slots: number;
  state: WorkerState;
  /** Units the master has leased to this worker and not yet seen come back. */
  inflight: number;
  lastHeartbeat: number;
}

export interface Heartbeat {
  address: string;
  slots: number;
  draining?: boolean;
}

/**
 * Workers known to the master, learnt from their heartbeats (a heartbeat registers). A worker silent
 * for longer than the timeout is dead: 'dead' is emitted so the dispatcher re-queues its leases.
 */
export class WorkerRegistry extends EventEmitter<{ dead: [WorkerRecord]; available: [] }> {
  private readonly workers = new Map<string, WorkerRecord>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly heartbeatTimeoutMs: number,
    /** Dead workers stay listed this long so /v1/cluster shows what happened. */
    private readonly forgetAfterMs = heartbeatTimeoutMs * 10,
  ) {
    super();
    this.sweeper = setInterval(() => this.sweep(), Math.max(100, Math.floor(heartbeatTimeoutMs / 4)));
    this.sweeper.unref();
  }

  heartbeat(id: string, beat: Heartbeat): WorkerRecord {
    const state: WorkerState = beat.draining ? 'draining' : 'ready';
    const address = beat.address.replace(/\/+$/, '');
    let record = this.workers.get(id);
    const wasReady = record?.state === 'ready';
    if (!record) {
      record = { id, address, slots: beat.slots, state, inflight: 0, lastHeartbeat: Date.now() };
      this.workers.set(id, record);
    } else {
      // Updated in place: the dispatcher's leases hold this record and count its slots on it.
      Object.assign(record, { address, slots: beat.slots, state, lastHeartbeat: Date.now() });
    }
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

  /** Ready workers with room for another task (`depth` tasks per slot), least loaded first. */
  withFreeSlots(depth = 1): WorkerRecord[] {
    return this.list()
      .filter((worker) => worker.state === 'ready' && worker.inflight < worker.slots * depth)
      .sort((a, b) => a.inflight / a.slots - b.inflight / b.slots);
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
