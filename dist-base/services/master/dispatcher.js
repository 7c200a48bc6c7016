import { randomUUID } from 'node:crypto';
import { authHeaders } from '../shared/auth.js';
import { keepAliveRequest, readErrorAnswer } from '../shared/http-client.js';
import { describeApiError, isPermanentStatus } from '../protocol/errors.js';
import { maxTaskBatchBytes, maxTasksPerBatch, taskResult, } from '../protocol/tasks.js';
import { workSignature } from '../scaler/work.js';
import { ServiceTimes } from './service-times.js';
/** The unit cannot succeed: the worker rejected its input, or two workers failed it identically. */
export class PermanentTaskError extends Error {
    name = 'PermanentTaskError';
}
const maxBackoffMs = 30_000;
/** `{"tasks":[` and `]}` around a batch's tasks. */
const batchFramingBytes = 12;
/*
 * Each worker's window: how much work it holds (running and waiting in its queue), sized by expected
 * service time. A request costs the master about the same CPU whatever it carries (node:http's set-up,
 * headers and socket work, the result stream: 0.15-0.2 ms on loopback before any JSON), so refilling each
 * slot as it frees (one request per unit, 1.1 units per request in a sustained batch) was a large part
 * of the master's cost per image. Instead a worker is refilled only once its window has
 * drained below a low-water mark, and then the whole gap goes in one request.
 */
/**
 * A worker always holds this many tasks per slot (one running, one waiting in its queue), as before
 * windows: a slot starts its next task as soon as it answers instead of idling for a round trip. Long
 * units (a huge image's strips) never fill more than this, so they keep spreading over all workers.
 */
const minTasksPerSlot = 2;
/**
 * Expected work per slot a worker is filled up to. It bounds what waits on one worker while another
 * could run it: the imbalance when the queue runs dry at a batch's end (a worker refilled just before
 * finishes up to this much later than one about to be refilled), the work a worker that dies takes with
 * it (retried elsewhere), how long a draining worker needs, and how long units already sent wait when a
 * new worker registers. A second is a few percent of a sustained batch, and holds 5 photos of 1.3 MP
 * per slot at the ~200 ms a blur σ2 task takes with 2 slots per worker on a loaded 2-core machine
 * (12-16 at the 60-80 ms of an idle one).
 */
const windowMsPerSlot = 1_000;
/**
 * A worker is refilled once its expected work per slot is below this (or it holds fewer than
 * minTasksPerSlot per slot). It must outlast the refill's round trip (the master's turn, preparing the
 * tasks, the request, the worker parsing it: a few ms on a LAN, tens on a loaded machine) with margin;
 * the gap to windowMsPerSlot is what one request carries: ~800 ms of work per slot.
 */
const refillBelowMsPerSlot = 200;
/**
 * A unit counts at least this much in a window (windowMsPerSlot / 16): at most 16 tasks per slot, so
 * tiny units do not make huge batches and lease lists, and the window's hysteresis stays in tasks too.
 */
const minExpectedMs = windowMsPerSlot / 16;
/** A unit whose class was never measured counts as long (two fill a slot's window): what a worker gets before it answers once. */
const unknownExpectedMs = windowMsPerSlot / minTasksPerSlot;
/**
 * Leases one worker holds at most, whatever its slots: its heartbeat lists them all, and the heartbeat
 * schema bounds that list (4 x maxTasksPerBatch, with room for expired ones it still runs). It bounds
 * one request's batch too.
 */
const maxLeasesPerWorker = maxTasksPerBatch;
/**
 * Sends units of work to workers in batches (one request per worker per turn carries every unit its
 * window has room for; results stream back one line each). Every unit sent is a lease: it expires unless the
 * worker's heartbeats keep listing it, and on a worker error, an expired lease or a worker that stops
 * heartbeating the unit is re-queued with jittered exponential backoff until the attempt limit. Only
 * the current lease's result is accepted: a late answer from an expired lease is counted and dropped.
 */
export class Dispatcher {
    registry;
    blobs;
    options;
    metrics;
    logger;
    onLeased;
    queue = [];
    /** Open leases by id; an expired lease leaves this map but may still receive its late answer. */
    leases = new Map();
    /** Leases that expired within the late-result grace: their answer still counts if the unit is not out again. */
    expired = new Map();
    wakeTimer;
    pumpScheduled = false;
    closed = false;
    random;
    serviceTimes = new ServiceTimes();
    /** Per worker record (a dead worker's record is forgotten with it). */
    loads = new WeakMap();
    doneListeners = [];
    constructor(registry, blobs, options, metrics, logger, 
    /** Called once per turn with the units that were leased in it (the store marks their images started). */
    onLeased = () => undefined) {
        this.registry = registry;
        this.blobs = blobs;
        this.options = options;
        this.metrics = metrics;
        this.logger = logger;
        this.onLeased = onLeased;
        this.random = options.random ?? Math.random;
        registry.on('available', () => this.schedulePump());
        registry.on('dead', (worker) => this.workerLost(worker));
        registry.on('heartbeat', (worker, held) => this.renew(worker, held));
    }
    run(unit) {
        return new Promise((resolve, reject) => {
            if (unit.signal?.aborted)
                return reject(unit.signal.reason);
            const pending = { unit, unitClass: ServiceTimes.classOf(unit), attempts: 0, readyAt: 0, resolve, reject, settled: false, onAbort: () => this.cancel(pending) };
            unit.signal?.addEventListener('abort', pending.onAbort, { once: true });
            this.queue.push(pending);
            this.schedulePump();
        });
    }
    /**
     * Whole-image units queued or on workers, as the scaler's backlog lists them (tiles are counted by
     * their image, ImageRunner.tiledWork). Units queued with the same work are one item.
     */
    wholeWork(now = Date.now()) {
        const queued = new Map();
        for (const { unit } of this.queue) {
            if (unit.kind !== 'whole')
                continue;
            const kind = unit.work ?? { pipeline: [] };
            const key = workSignature(kind);
            const item = queued.get(key) ?? { kind, pixels: 0, units: 0, runningMs: 0 };
            item.pixels += unit.pixels;
            item.units += 1;
            queued.set(key, item);
        }
        const running = [];
        // A worker runs its units in the order it received them, `slots` at once: its oldest leases are
        // running (since they were sent, or since the worker last freed a slot), the rest wait in its queue.
        const seen = new Map();
        for (const { pending, leasedAt, worker } of this.leases.values()) {
            const place = seen.get(worker) ?? 0;
            seen.set(worker, place + 1);
            if (pending.unit.kind !== 'whole')
                continue;
            const startedAt = Math.max(leasedAt, this.loads.get(worker)?.freedAt ?? 0);
            const runningMs = place < worker.slots ? Math.max(0, now - startedAt) : 0;
            running.push({ kind: pending.unit.work ?? { pipeline: [] }, pixels: pending.unit.pixels, units: 1, runningMs });
        }
        return [...queued.values(), ...running];
    }
    /**
     * Units the master should hold for the workers (queued here or leased) so no window runs dry: each ready
     * worker's window at the expected cost of the work on workers now, plus its minimum depth again to
     * wait here while the master prepares more. A batch runner claims this many items.
     */
    unitsWanted() {
        const workers = this.registry.list();
        let expectedMs = 0;
        let held = 0;
        for (const worker of workers) {
            expectedMs += this.loads.get(worker)?.expectedMs ?? 0;
            held += worker.inflight;
        }
        const perUnit = held > 0 ? expectedMs / held : unknownExpectedMs;
        let wanted = 0;
        for (const worker of workers) {
            if (worker.state !== 'ready')
                continue;
            const window = Math.max(minTasksPerSlot * worker.slots, Math.floor((windowMsPerSlot * worker.slots) / perUnit));
            wanted += Math.min(maxLeasesPerWorker, window) + minTasksPerSlot * worker.slots;
        }
        return wanted;
    }
    /** Called for every unit a worker completed, with its result (processingMs: the scaler's service time). */
    onUnitDone(listener) {
        this.doneListeners.push(listener);
    }
    backlog() {
        let queuedPixels = 0;
        for (const pending of this.queue)
            queuedPixels += pending.unit.pixels;
        let inflightPixels = 0;
        for (const lease of this.leases.values())
            inflightPixels += lease.pending.unit.pixels;
        return { queuedUnits: this.queue.length, queuedPixels, inflightUnits: this.leases.size, inflightPixels };
    }
    close() {
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
    schedulePump() {
        if (this.pumpScheduled || this.closed)
            return;
        this.pumpScheduled = true;
        setImmediate(() => {
            this.pumpScheduled = false;
            this.pump();
        });
    }
    pump() {
        if (this.closed)
            return;
        const now = Date.now();
        const leased = [];
        const ready = this.registry.list().filter((worker) => worker.state === 'ready');
        // A unit that failed on a worker goes to another one when there is another: a second opinion is what
        // tells a deterministic failure from a worker's trouble.
        const alternatives = ready.length > 1;
        // Hysteresis: a worker whose window is still above its low-water mark gets nothing this turn, so
        // results trickling back do not each cost a request; one drained below it gets its whole gap at once.
        const takers = ready
            .filter((worker) => worker.inflight < minTasksPerSlot * worker.slots || this.loadOf(worker).expectedMs < refillBelowMsPerSlot * worker.slots)
            .sort((a, b) => a.inflight / a.slots - b.inflight / b.slots);
        const batches = new Map(takers.map((worker) => [worker, []]));
        /** Leases the next eligible queued unit to the worker if it fits the worker's room; false if none does. */
        const takeOne = (worker, fits) => {
            const batch = batches.get(worker);
            const index = this.queue.findIndex((pending) => pending.readyAt <= now && !(alternatives && pending.lastFailure?.worker === worker.id));
            if (index < 0)
                return false;
            const pending = this.queue[index];
            const expectedMs = this.expectedMs(pending);
            if (!fits(worker.inflight + batch.length, this.loadOf(worker).expectedMs + expectedMs))
                return false;
            this.queue.splice(index, 1);
            batch.push(this.lease(pending, worker, expectedMs));
            leased.push(pending.unit);
            return true;
        };
        // No worker's window takes more than its slots' share of all the units here and on workers: when the
        // queue runs low (a batch's end) the last units spread instead of deepening one window.
        let units = this.queue.length;
        let slots = 0;
        for (const worker of ready) {
            units += worker.inflight;
            slots += worker.slots;
        }
        // Every worker's free slots first, one unit to each worker in turn: a few units (the strips of one
        // image) spread over the workers instead of waiting in one worker's queue, or sharing one worker's
        // cores, while another worker is idle.
        for (let open = takers; open.length > 0;)
            open = open.filter((worker) => takeOne(worker, (held) => held < worker.slots));
        // Then the windows, one unit to each worker in turn, so workers that drained together share the queue.
        const fillsWindow = (worker) => {
            const share = Math.ceil((units * worker.slots) / slots);
            return (held, expectedMs) => held < maxLeasesPerWorker && (held < minTasksPerSlot * worker.slots || (held < share && expectedMs <= windowMsPerSlot * worker.slots));
        };
        for (let open = takers; open.length > 0;)
            open = open.filter((worker) => takeOne(worker, fillsWindow(worker)));
        for (const [worker, batch] of batches) {
            if (batch.length === 0)
                continue;
            this.registry.reserve(worker, batch.length);
            void this.send(worker, batch);
        }
        let nextWake = Infinity;
        for (const pending of this.queue)
            if (pending.readyAt > now)
                nextWake = Math.min(nextWake, pending.readyAt);
        clearTimeout(this.wakeTimer);
        if (nextWake < Infinity)
            this.wakeTimer = setTimeout(() => this.schedulePump(), nextWake - now);
        if (leased.length > 0)
            this.onLeased(leased);
        this.updateGauges();
    }
    lease(pending, worker, expectedMs) {
        const lease = {
            id: randomUUID(),
            pending,
            worker,
            batch: new AbortController(),
            timer: this.leaseTimer(() => lease),
            closed: false,
            leasedAt: Date.now(),
            expectedMs,
        };
        pending.lease = lease;
        this.leases.set(lease.id, lease);
        this.loadOf(worker).expectedMs += expectedMs;
        return lease;
    }
    /** The slot-milliseconds a unit counts for in a window: learnt for its class, or long while unknown. */
    expectedMs(pending) {
        const learnt = this.serviceTimes.estimate(pending.unitClass, pending.unit.pixels);
        return Math.max(minExpectedMs, learnt ?? unknownExpectedMs);
    }
    loadOf(worker) {
        let load = this.loads.get(worker);
        if (!load)
            this.loads.set(worker, (load = { expectedMs: 0, freedAt: 0 }));
        return load;
    }
    leaseTimer(lease) {
        return setTimeout(() => this.expire(lease(), `lease expired after ${this.options.leaseMs} ms without renewal on worker ${lease().worker.id}`), this.options.leaseMs);
    }
    /** A heartbeat lists the leases its worker holds: each gets a fresh deadline. */
    renew(worker, held) {
        for (const id of held) {
            const lease = this.leases.get(id);
            if (!lease || lease.closed || lease.worker.id !== worker.id)
                continue;
            clearTimeout(lease.timer);
            lease.timer = this.leaseTimer(() => lease);
        }
    }
    async send(worker, batch) {
        const started = performance.now();
        // A unit that cannot be prepared (its input vanished, say) fails its own attempt; the rest still go.
        // A unit cancelled (or failed) while the tasks are prepared has its lease closed: it is not sent.
        const tasks = await Promise.all(batch.map(async (lease) => {
            try {
                return { unit: lease.pending.unit.id, lease: lease.id, ...(await lease.pending.unit.prepare(lease.id, worker)) };
            }
            catch (error) {
                if (!lease.closed)
                    this.attemptFailed(lease, `task could not be prepared: ${error.message}`);
                return undefined;
            }
        }));
        // A window of many-variant tasks can outgrow the worker's body limit: it then goes as several requests.
        let part = [];
        let bytes = 0;
        for (const [index, task] of tasks.entries()) {
            const lease = batch[index];
            if (task === undefined || lease.closed)
                continue;
            const json = JSON.stringify(task);
            const size = Buffer.byteLength(json) + 1;
            if (part.length > 0 && bytes + size > maxTaskBatchBytes - batchFramingBytes) {
                void this.post(worker, part, started);
                part = [];
                bytes = 0;
            }
            part.push({ lease, json });
            bytes += size;
        }
        if (part.length > 0)
            await this.post(worker, part, started);
    }
    /** One request: the tasks (each already JSON) go to the worker, their results stream back one line each. */
    async post(worker, tasks, started) {
        // One controller for the request: aborting it (cancel, close) ends every task in it on the worker.
        const controller = new AbortController();
        const open = tasks.map(({ lease }) => lease);
        for (const lease of open)
            lease.batch = controller;
        this.metrics.tasksPerRequest.observe(tasks.length);
        let response;
        try {
            response = await keepAliveRequest(`${worker.address}/v1/tasks`, {
                method: 'POST',
                // A TaskBatch (services/protocol/tasks.ts), written from the tasks' own JSON.
                body: `{"tasks":[${tasks.map(({ json }) => json).join(',')}]}`,
                headers: { ...authHeaders(this.options.token), 'content-type': 'application/json' },
                signal: controller.signal,
            });
        }
        catch (error) {
            const reason = `worker ${worker.id} unreachable: ${error.message}`;
            for (const lease of open)
                if (!lease.closed)
                    this.attemptFailed(lease, reason);
            // Send this worker nothing more until it heartbeats again, or a crashed worker uses up every
            // attempt of the units sent to it before its heartbeats time out.
            if (!controller.signal.aborted)
                this.registry.markDead(worker.id);
            return;
        }
        const status = response.statusCode ?? 0;
        if (status < 200 || status >= 300) {
            return this.batchRefused(worker, open, await readErrorAnswer(response));
        }
        const answered = new Set();
        try {
            for await (const line of ndjsonLines(response)) {
                const result = taskResult.parse(JSON.parse(line));
                answered.add(result.lease);
                this.resultArrived(worker, result, started);
            }
        }
        catch (error) {
            if (controller.signal.aborted)
                return;
            this.logger.warn({ worker: worker.id, err: error }, 'result stream cut off');
            // The connection broke under the worker's answers: it crashed or is unreachable (as above).
            this.registry.markDead(worker.id);
        }
        for (const lease of open) {
            if (!answered.has(lease.id) && !lease.closed)
                this.attemptFailed(lease, `worker ${worker.id} closed the batch without answering ${lease.pending.unit.id}`);
        }
    }
    /** The worker refused the whole batch. */
    batchRefused(worker, open, error) {
        if (error.status === 503) {
            // The worker is draining: not the units' fault, so no attempt is spent.
            this.registry.markDraining(worker.id);
            for (const lease of open) {
                if (lease.closed)
                    continue;
                this.closeLease(lease);
                this.queue.unshift(lease.pending);
            }
            this.schedulePump();
            return;
        }
        for (const lease of open) {
            if (lease.closed)
                continue;
            if (error.permanent)
                this.fail(lease, new PermanentTaskError(error.message), describeApiError(error));
            else
                this.attemptFailed(lease, `worker ${worker.id} answered ${describeApiError(error)}`);
        }
    }
    resultArrived(worker, result, started) {
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
        if (!result.ok)
            return this.taskFailed(lease, result.error);
        this.closeLease(lease);
        this.succeed(lease.pending, result, started);
    }
    /** Takes a unit waiting in the queue for its retry back out of it; false if it is not waiting there. */
    reclaim(pending) {
        if (pending.settled || pending.lease)
            return false;
        const index = this.queue.indexOf(pending);
        if (index < 0)
            return false;
        this.queue.splice(index, 1);
        return true;
    }
    succeed(pending, result, started) {
        const { unit } = pending;
        this.metrics.unitsCompleted.inc({ kind: unit.kind });
        this.metrics.unitBytes.inc({ kind: unit.kind, direction: 'in' }, result.bytesIn);
        this.metrics.unitBytes.inc({ kind: unit.kind, direction: 'out' }, result.bytesOut);
        this.metrics.unitRoundTrip.observe({ kind: unit.kind }, (performance.now() - started) / 1000);
        this.serviceTimes.observe(pending.unitClass, unit.pixels, result.processingMs);
        const { lease: id, processingMs, bytesIn, bytesOut, image, variants, tile } = result;
        const done = { lease: id, processingMs, bytesIn, bytesOut, ...(image ? { image } : {}), ...(variants ? { variants } : {}), ...(tile ? { tile } : {}) };
        for (const listener of this.doneListeners)
            listener(unit, done);
        this.settle(pending, () => pending.resolve(done));
    }
    /**
     * A worker ran the task and it failed. A permanent failure (the input or pipeline is wrong) is final
     * at once; another is retried, unless a second worker fails it the same way: then it is
     * deterministic, and more attempts would only repeat it.
     */
    taskFailed(lease, failure) {
        const { pending, worker } = lease;
        const reason = `${failure.status} ${failure.code}: ${failure.message}`;
        if (isPermanentStatus(failure.status))
            return this.fail(lease, new PermanentTaskError(failure.message), reason);
        const signature = `${failure.code}: ${failure.message}`;
        const previous = pending.lastFailure;
        // A storage error says how storage was, not what the unit is: an outage on two workers is still an outage.
        if (previous && previous.worker !== worker.id && previous.signature === signature && failure.code !== 'storage_error') {
            return this.fail(lease, new PermanentTaskError(`${failure.message} (the same on two workers)`), reason);
        }
        pending.lastFailure = { worker: worker.id, signature };
        this.attemptFailed(lease, `worker ${worker.id} failed it: ${reason}`);
    }
    fail(lease, error, reason) {
        const { pending } = lease;
        this.closeLease(lease);
        this.logger.warn({ unit: pending.unit.id, job: pending.unit.jobId, worker: lease.worker.id, reason }, 'unit failed for good');
        this.settle(pending, () => pending.reject(error));
    }
    expire(lease, reason) {
        if (lease.closed)
            return;
        const { batch } = lease;
        this.attemptFailed(lease, reason);
        this.expired.set(lease.id, lease);
        // Keep listening a while so a late answer is seen, then give up on the connection unless other
        // leases of the batch are still open on it.
        setTimeout(() => {
            this.expired.delete(lease.id);
            if (![...this.leases.values()].some((other) => other.batch === batch))
                batch.abort();
        }, this.options.lateResultGraceMs).unref();
    }
    attemptFailed(lease, reason) {
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
    closeLease(lease) {
        lease.closed = true;
        clearTimeout(lease.timer);
        this.registry.release(lease.worker);
        const load = this.loadOf(lease.worker);
        // Sums of floating-point figures drift: an idle worker's is exactly zero again.
        load.expectedMs = lease.worker.inflight === 0 ? 0 : Math.max(0, load.expectedMs - lease.expectedMs);
        load.freedAt = Date.now();
        this.blobs.drop(lease.id);
        lease.pending.lease = undefined;
        this.leases.delete(lease.id);
        this.schedulePump();
    }
    workerLost(worker) {
        for (const lease of [...this.leases.values()]) {
            if (lease.worker.id === worker.id && !lease.closed)
                this.expire(lease, `worker ${worker.id} missed its heartbeats`);
        }
    }
    cancel(pending) {
        const index = this.queue.indexOf(pending);
        if (index >= 0)
            this.queue.splice(index, 1);
        const { lease } = pending;
        if (lease) {
            this.closeLease(lease);
            if (![...this.leases.values()].some((other) => other.batch === lease.batch))
                lease.batch.abort();
        }
        this.settle(pending, () => pending.reject(pending.unit.signal?.reason));
    }
    settle(pending, finish) {
        if (pending.settled)
            return;
        pending.settled = true;
        pending.unit.signal?.removeEventListener('abort', pending.onAbort);
        finish();
        this.updateGauges();
    }
    updateGauges() {
        this.metrics.queueDepth.set(this.queue.length);
        this.metrics.inflight.set(this.leases.size);
    }
}
/**
 * The non-blank lines of a response body as they arrive. A body cut off before its end (the worker
 * crashed, the connection broke) throws: that tells a lost worker from one that answered and closed.
 */
async function* ndjsonLines(body) {
    body.setEncoding('utf8');
    let rest = '';
    for await (const chunk of body) {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop();
        for (const line of lines)
            if (line.trim() !== '')
                yield line;
    }
    if (rest.trim() !== '')
        yield rest;
}
/**
 * Exponential backoff with "equal jitter": half the step is fixed, half random, so units that failed
 * together (a worker died under them) do not all come back at the same moment, yet none retries at once.
 */
export function retryDelay(baseMs, attempt, random) {
    const step = Math.min(maxBackoffMs, baseMs * 2 ** (attempt - 1));
    return Math.round(step / 2 + (step / 2) * random);
}
//# sourceMappingURL=dispatcher.js.map