import { EventEmitter } from 'node:events';
/**
 * Workers known to the master, learnt from their heartbeats (a heartbeat registers). The registry is
 * the only writer of worker records: others read them and ask it to change them. A worker silent for
 * longer than the timeout is dead: 'dead' is emitted so the dispatcher re-queues its leases;
 * 'heartbeat' carries the leases the worker says it holds, which the dispatcher renews.
 */
export class WorkerRegistry extends EventEmitter {
    heartbeatTimeoutMs;
    masterFilesId;
    forgetAfterMs;
    workers = new Map();
    sweeper;
    constructor(heartbeatTimeoutMs, 
    /** The master's own filesId (services/shared/files-id.ts). */
    masterFilesId, 
    /** Dead workers stay listed this long (at least 5 minutes) so /v1/cluster shows what happened. */
    forgetAfterMs = Math.max(heartbeatTimeoutMs * 10, 5 * 60_000)) {
        super();
        this.heartbeatTimeoutMs = heartbeatTimeoutMs;
        this.masterFilesId = masterFilesId;
        this.forgetAfterMs = forgetAfterMs;
        this.sweeper = setInterval(() => this.sweep(), Math.max(100, Math.floor(heartbeatTimeoutMs / 4)));
        this.sweeper.unref();
    }
    heartbeat(id, beat) {
        const state = beat.draining ? 'draining' : 'ready';
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
        }
        else {
            // Updated in place: the dispatcher's leases hold this record.
            Object.assign(record, fields);
        }
        this.emit('heartbeat', record, beat.leases ?? []);
        if (state === 'ready' && !wasReady)
            this.emit('available');
        return record;
    }
    /**
     * A worker leaving on purpose (SIGTERM, after answering everything it held). Its answers may still be
     * arriving, so its leases are left to complete; a lease that never does still expires.
     */
    remove(id) {
        this.workers.delete(id);
    }
    markDead(id) {
        const record = this.workers.get(id);
        if (!record || record.state === 'dead')
            return;
        record.state = 'dead';
        this.emit('dead', record);
    }
    /** The worker refused work because it is shutting down: send it nothing more. */
    markDraining(id) {
        const record = this.workers.get(id);
        if (record && record.state === 'ready')
            record.state = 'draining';
    }
    /** Counts `count` units leased to the worker. */
    reserve(worker, count) {
        worker.inflight += count;
    }
    /** One unit leased to the worker came back (or was given up). */
    release(worker) {
        if (worker.inflight > 0)
            worker.inflight -= 1;
    }
    get(id) {
        return this.workers.get(id);
    }
    list() {
        return [...this.workers.values()];
    }
    /** Task slots of all ready workers together. */
    totalSlots() {
        return this.list().reduce((sum, worker) => sum + (worker.state === 'ready' ? worker.slots : 0), 0);
    }
    sweep() {
        const now = Date.now();
        for (const worker of this.workers.values()) {
            if (worker.state !== 'dead' && now - worker.lastHeartbeat > this.heartbeatTimeoutMs)
                this.markDead(worker.id);
            else if (worker.state === 'dead' && now - worker.lastHeartbeat > this.forgetAfterMs)
                this.workers.delete(worker.id);
        }
    }
    close() {
        clearInterval(this.sweeper);
    }
}
//# sourceMappingURL=worker-registry.js.map