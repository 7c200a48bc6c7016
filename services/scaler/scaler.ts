import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { CapacityProvider, WorkerSnapshot } from './capacity-provider.js';
import {
  type Backlog,
  type PolicyMemory,
  type ScalingAction,
  type ScalingPolicy,
  backlogPixels,
  decideCapacity,
  initialPolicyMemory,
} from './policy.js';

export interface ScalerOptions {
  policy: ScalingPolicy;
  provider: CapacityProvider;
  /** Queued and in-flight work, from the dispatcher. */
  backlog: () => Backlog;
  /** Registered (heartbeating) workers, from the master's registry. */
  workers: () => readonly WorkerSnapshot[];
  logger: Logger;
  /** The master's /metrics registry; gauges are read at scrape time. */
  registry: Registry;
  /** Pause between ticks; a submitted job can cut it short with wake(). */
  intervalMs: number;
  /** The pool's size when the loop starts (the AWS group's current desired capacity); default min. */
  initialDesired?: number;
  now?: () => number;
}

export interface ScalerDecisionRecord {
  at: string;
  action: ScalingAction;
  desired: number;
  needed: number;
  reason: string;
}

/** What /v1/cluster shows under "scaler". */
export interface ScalerStatus {
  provider: CapacityProvider['kind'];
  min: number;
  max: number;
  desiredCapacity: number;
  actualCapacity: number;
  backlog: Backlog & { seconds: number };
  /** The latest decision, often "hold". */
  lastDecision: ScalerDecisionRecord | null;
  /** The latest decision that changed capacity. */
  lastChange: ScalerDecisionRecord | null;
  /** The provider's last failure, cleared by the next success. */
  lastError: { at: string; message: string } | null;
  /** Workers running but never heartbeating (AWS instances past their boot grace). */
  silentWorkers: string[];
}

const emptyBacklog: Backlog = { queuedPixels: 0, inflightPixels: 0, queuedUnits: 0, inflightUnits: 0 };

/**
 * The scaling loop: on every tick it reads the backlog, asks the policy, and hands the decision to the
 * capacity provider. It is the one owner of desired capacity. Provider failures (throttling that
 * outlasted the retries, a dead child process) are recorded and retried next tick, never thrown.
 */
export class Scaler {
  private desired: number;
  private actual = 0;
  private memory: PolicyMemory = initialPolicyMemory;
  private lastBacklog: Backlog = emptyBacklog;
  private lastDecision: ScalerDecisionRecord | null = null;
  private lastChange: ScalerDecisionRecord | null = null;
  private lastError: ScalerStatus['lastError'] = null;
  private silent: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private wakeRequested = false;
  private stopped = false;
  private readonly now: () => number;
  private readonly decisionsTotal: Counter<'action'>;
  private readonly errorsTotal: Counter;

  constructor(private readonly options: ScalerOptions) {
    this.desired = options.initialDesired ?? options.policy.min;
    this.now = options.now ?? Date.now;
    const registers = [options.registry];
    this.decisionsTotal = new Counter({ name: 'dips_scaler_decisions_total', help: 'Scaling decisions by action', labelNames: ['action'], registers });
    this.errorsTotal = new Counter({ name: 'dips_scaler_errors_total', help: 'Capacity provider calls that failed after their retries', registers });
    this.registerGauges(options.registry);
  }

  start(): void {
    this.schedule(0);
  }

  /** New work arrived: decide now rather than at the next interval (wakes a pool scaled to zero). */
  wake(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.wakeRequested = true;
    } else {
      clearTimeout(this.timer);
      this.schedule(0);
    }
  }

  /** Ends the loop and stops what the provider started. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    await this.options.provider.close();
  }

  /** One decision and one provider call. Never throws. */
  async tick(): Promise<void> {
    const { policy, provider, logger } = this.options;
    try {
      this.lastBacklog = this.options.backlog();
      const decision = decideCapacity({ backlog: this.lastBacklog, current: this.desired, now: this.now() }, policy, this.memory);
      this.memory = decision.memory;
      this.desired = decision.desired;
      const record: ScalerDecisionRecord = {
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
      const report = await provider.apply(this.desired, this.options.workers());
      this.actual = report.actual;
      this.silent = report.silent;
      this.lastError = null;
    } catch (error) {
      this.errorsTotal.inc();
      const message = (error as Error).message;
      this.lastError = { at: new Date(this.now()).toISOString(), message };
      logger.error({ err: error, desired: this.desired }, `scaler: ${provider.kind} capacity provider failed: ${message}`);
    }
  }

  /** The capacity the loop last decided; what /v1/cluster reports as desiredCapacity. */
  desiredCapacity(): number {
    return this.desired;
  }

  status(): ScalerStatus {
    const { policy, provider } = this.options;
    return {
      provider: provider.kind,
      min: policy.min,
      max: policy.max,
      desiredCapacity: this.desired,
      actualCapacity: this.actual,
      backlog: { ...this.lastBacklog, seconds: backlogPixels(this.lastBacklog) / policy.workerPixelsPerSecond },
      lastDecision: this.lastDecision,
      lastChange: this.lastChange,
      lastError: this.lastError,
      silentWorkers: this.silent,
    };
  }

  private registerGauges(registry: Registry): void {
    const scaler = this;
    const registers = [registry];
    const gauge = (name: string, help: string, value: () => number) =>
      new Gauge({ name, help, registers, collect() { this.set(value()); } });
    gauge('dips_scaler_desired_capacity', 'Workers the scaler wants', () => scaler.desired);
    gauge('dips_scaler_actual_capacity', 'Workers running (processes or instances)', () => scaler.actual);
    gauge('dips_scaler_backlog_seconds', 'Queued and in-flight work in seconds of one worker', () => scaler.status().backlog.seconds);
    gauge('dips_scaler_silent_workers', 'Running workers (past their start-up grace) that do not heartbeat', () => scaler.silent.length);
    const byState = (name: string, help: string, queued: () => number, inflight: () => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['state'],
        registers,
        collect() {
          this.set({ state: 'queued' }, queued());
          this.set({ state: 'inflight' }, inflight());
        },
      });
    byState('dips_scaler_backlog_pixels', 'Work the scaler sees, in pixels', () => scaler.lastBacklog.queuedPixels, () => scaler.lastBacklog.inflightPixels);
    byState('dips_scaler_backlog_units', 'Work the scaler sees, in images or tiles', () => scaler.lastBacklog.queuedUnits, () => scaler.lastBacklog.inflightUnits);
    new Gauge({
      name: 'dips_scaler_last_decision_info',
      help: 'The latest scaling decision: value is the desired capacity, the reason is in a label',
      labelNames: ['action', 'reason'],
      registers,
      collect() {
        this.reset();
        const last = scaler.lastDecision;
        if (last) this.set({ action: last.action, reason: last.reason }, last.desired);
      },
    });
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => void this.runScheduledTick(), delayMs);
  }

  private async runScheduledTick(): Promise<void> {
    this.ticking = this.tick();
    await this.ticking;
    this.ticking = undefined;
    if (this.stopped) return;
    const now = this.wakeRequested;
    this.wakeRequested = false;
    this.schedule(now ? 0 : this.options.intervalMs);
  }
}
