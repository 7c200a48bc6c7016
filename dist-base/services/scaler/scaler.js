import { Counter, Gauge } from 'prom-client';
import { emptyEstimate, estimateBacklog } from './cost-model.js';
import { decideCapacity, initialPolicyMemory } from './policy.js';
/**
 * The target never drops below two ticks: a worker asked for at this tick is seen at the next at the
 * earliest, so less work per worker than that is gone before the pool could have grown.
 */
const MIN_TARGET_TICKS = 2;
/**
 * The scaling loop: on every tick it reads the backlog, asks the policy, and hands the decision to the
 * capacity provider. It is the one owner of desired capacity. Provider failures (throttling that
 * outlasted the retries, a dead child process) are recorded and retried next tick, never thrown.
 */
export class Scaler {
    options;
    desired;
    actual = 0;
    memory = initialPolicyMemory;
    lastBacklog = emptyEstimate;
    lastTarget;
    lastDecision = null;
    lastChange = null;
    lastError = null;
    silent = [];
    timer;
    ticking;
    wakeRequested = false;
    stopped = false;
    now;
    decisionsTotal;
    errorsTotal;
    constructor(options) {
        this.options = options;
        this.desired = options.initialDesired ?? options.policy.min;
        this.now = options.now ?? Date.now;
        this.lastTarget = this.target();
        const registers = [options.registry];
        this.decisionsTotal = new Counter({ name: 'dips_scaler_decisions_total', help: 'Scaling decisions by action', labelNames: ['action'], registers });
        this.errorsTotal = new Counter({ name: 'dips_scaler_errors_total', help: 'Capacity provider calls that failed after their retries', registers });
        this.registerGauges(options.registry);
    }
    start() {
        this.schedule(0);
    }
    /** New work arrived: decide now rather than at the next interval (wakes a pool scaled to zero). */
    wake() {
        if (this.stopped)
            return;
        if (this.ticking) {
            this.wakeRequested = true;
        }
        else {
            clearTimeout(this.timer);
            this.schedule(0);
        }
    }
    /** Ends the loop and stops what the provider started. */
    async stop() {
        this.stopped = true;
        clearTimeout(this.timer);
        await this.ticking;
        await this.options.provider.close();
    }
    /** One decision and one provider call. Never throws. */
    async tick() {
        const { policy, provider, logger } = this.options;
        try {
            const now = this.now();
            const workers = this.options.workers();
            this.lastBacklog = estimateBacklog(this.options.backlog(), this.options.costs, this.slotsPerWorker(workers), now);
            this.lastTarget = this.target();
            const busy = workers.filter((worker) => worker.inflight > 0).length;
            const decision = decideCapacity({ backlog: this.lastBacklog, target: this.lastTarget, current: this.desired, busy, now }, policy, this.memory);
            this.memory = decision.memory;
            this.desired = decision.desired;
            this.options.boot.update(this.desired, workers, now);
            const record = {
                at: new Date(this.now()).toISOString(),
                action: decision.action,
                desired: decision.desired,
                needed: decision.needed,
                reason: decision.reason,
            };
            this.lastDecision = record;
            this.decisionsTotal.inc({ action: decision.action });
            if (decision.action !== 'hold') {
                this.lastChange = record;
                logger.info({ action: decision.action, desired: decision.desired, needed: decision.needed }, decision.reason);
            }
            const report = await provider.apply(this.desired, workers);
            this.actual = report.actual;
            this.silent = report.silent;
            this.lastError = null;
        }
        catch (error) {
            this.errorsTotal.inc();
            const message = error.message;
            this.lastError = { at: new Date(this.now()).toISOString(), message };
            logger.error({ err: error, desired: this.desired }, `scaler: ${provider.kind} capacity provider failed: ${message}`);
        }
    }
    /** The capacity the loop last decided; what /v1/cluster reports as desiredCapacity. */
    desiredCapacity() {
        return this.desired;
    }
    status() {
        const { policy, provider } = this.options;
        return {
            provider: provider.kind,
            min: policy.min,
            max: policy.max,
            desiredCapacity: this.desired,
            actualCapacity: this.actual,
            backlog: this.lastBacklog,
            target: this.lastTarget,
            lastDecision: this.lastDecision,
            lastChange: this.lastChange,
            lastError: this.lastError,
            silentWorkers: this.silent,
        };
    }
    target() {
        const boot = this.options.boot.estimate();
        const floor = (MIN_TARGET_TICKS * this.options.intervalMs) / 1000;
        if (boot.seconds < floor)
            return { secondsPerWorker: floor, source: `${MIN_TARGET_TICKS} scaler ticks; ${boot.source} boot ${boot.seconds.toFixed(1)} s` };
        return { secondsPerWorker: boot.seconds, source: `${boot.source} boot` };
    }
    /** Slots per worker: the registered workers' average, or the default before any registers. */
    slotsPerWorker(workers) {
        const known = workers.filter((worker) => worker.slots !== undefined && worker.slots > 0);
        if (known.length === 0)
            return this.options.defaultSlots;
        return known.reduce((sum, worker) => sum + worker.slots, 0) / known.length;
    }
    registerGauges(registry) {
        const scaler = this;
        const registers = [registry];
        const gauge = (name, help, value) => new Gauge({ name, help, registers, collect() { this.set(value()); } });
        gauge('dips_scaler_desired_capacity', 'Workers the scaler wants', () => scaler.desired);
        gauge('dips_scaler_actual_capacity', 'Workers running (processes or instances)', () => scaler.actual);
        gauge('dips_scaler_target_seconds', 'Seconds of backlog one worker may hold before the pool grows (follows the boot time)', () => scaler.lastTarget.secondsPerWorker);
        gauge('dips_scaler_silent_workers', 'Running workers (past their start-up grace) that do not heartbeat', () => scaler.silent.length);
        new Gauge({
            name: 'dips_scaler_backlog_seconds',
            help: 'Queued and running work in seconds of one worker, by where its cost came from (learned or default)',
            labelNames: ['source'],
            registers,
            collect() {
                this.set({ source: 'learned' }, scaler.lastBacklog.learnedWorkerSeconds);
                this.set({ source: 'default' }, scaler.lastBacklog.defaultWorkerSeconds);
            },
        });
        gauge('dips_scaler_backlog_pixels', 'Work the scaler sees, in pixels', () => scaler.lastBacklog.pixels);
        gauge('dips_scaler_backlog_units', 'Work the scaler sees, in images or tiles', () => scaler.lastBacklog.units);
        new Gauge({
            name: 'dips_scaler_last_decision_info',
            help: 'The latest scaling decision: value is the desired capacity, the reason is in a label',
            labelNames: ['action', 'reason'],
            registers,
            collect() {
                this.reset();
                const last = scaler.lastDecision;
                if (last)
                    this.set({ action: last.action, reason: last.reason }, last.desired);
            },
        });
    }
    schedule(delayMs) {
        this.timer = setTimeout(() => void this.runScheduledTick(), delayMs);
    }
    async runScheduledTick() {
        this.ticking = this.tick();
        await this.ticking;
        this.ticking = undefined;
        if (this.stopped)
            return;
        const now = this.wakeRequested;
        this.wakeRequested = false;
        this.schedule(now ? 0 : this.options.intervalMs);
    }
}
//# sourceMappingURL=scaler.js.map