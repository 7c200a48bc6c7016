import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import type { CapacityProvider, CapacityReport, WorkerSnapshot } from '../../services/scaler/capacity-provider.js';
import { BootClock } from '../../services/scaler/boot-clock.js';
import { CostModel } from '../../services/scaler/cost-model.js';
import type { ScalingPolicy } from '../../services/scaler/policy.js';
import { Scaler } from '../../services/scaler/scaler.js';
import type { WorkItem } from '../../services/scaler/work.js';

const policy: ScalingPolicy = { min: 1, max: 5, scaleInAfterSeconds: 30 };
/** Boot time of the test pool, and a cost of 1,000 slot-ms per MP at one slot per worker: 1 MP is 1 worker-second. */
const bootSeconds = 10;
type Backlog = WorkItem[];

/** A provider that does what it is told, or fails while `failure` is set. */
class RecordingProvider implements CapacityProvider {
  readonly kind = 'local';
  readonly applied: number[] = [];
  failure: Error | undefined;
  closed = false;

  async apply(desired: number, _workers: readonly WorkerSnapshot[]): Promise<CapacityReport> {
    if (this.failure) throw this.failure;
    this.applied.push(desired);
    return { actual: desired, silent: [] };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

function setUp(backlog: Backlog, intervalMs = 1_000, initialDesired?: number) {
  const provider = new RecordingProvider();
  const registry = new Registry();
  let current = backlog;
  const scaler = new Scaler({
    policy,
    provider,
    backlog: () => current,
    workers: () => [],
    costs: new CostModel(600_000, () => 1_000),
    boot: new BootClock(bootSeconds),
    defaultSlots: 1,
    logger: pino({ level: 'silent' }),
    registry,
    intervalMs,
    ...(initialDesired === undefined ? {} : { initialDesired }),
  });
  return { scaler, provider, registry, setBacklog: (next: Backlog) => (current = next) };
}

const kind = { pipeline: [{ op: 'grayscale' }], decode: 'jpeg', encode: 'jpeg' };
const threeWorkersOfWork: Backlog = [
  { kind, pixels: 2.5 * bootSeconds * 1e6, units: 25, runningMs: 0 },
  { kind, pixels: 0.5 * bootSeconds * 1e6, units: 5, runningMs: 0 },
];

describe('Scaler', () => {
  it('hands the policy decision to the provider and shows backlog, capacities and the reason', async () => {
    const { scaler, provider } = setUp(threeWorkersOfWork);
    await scaler.tick();
    expect(provider.applied).toEqual([3]);
    const status = scaler.status();
    expect(status).toMatchObject({ provider: 'local', min: 1, max: 5, desiredCapacity: 3, actualCapacity: 3, lastError: null });
    expect(status.backlog).toMatchObject({ units: 30, workerSeconds: 3 * bootSeconds, defaultWorkerSeconds: 3 * bootSeconds, learnedWorkerSeconds: 0 });
    expect(status.target).toEqual({ secondsPerWorker: bootSeconds, source: 'configured boot' });
    expect(status.lastDecision?.reason).toContain('scale out from 1 to 3');
    expect(status.lastChange?.action).toBe('scale-out');
  });

  it('exposes the same figures on /metrics', async () => {
    const { scaler, registry } = setUp(threeWorkersOfWork);
    await scaler.tick();
    const text = await registry.metrics();
    expect(text).toMatch(/^dips_scaler_desired_capacity 3$/m);
    expect(text).toMatch(/^dips_scaler_actual_capacity 3$/m);
    expect(text).toMatch(new RegExp(`^dips_scaler_backlog_pixels ${3 * bootSeconds * 1e6}$`, 'm'));
    expect(text).toMatch(/^dips_scaler_backlog_units 30$/m);
    expect(text).toMatch(new RegExp(`^dips_scaler_backlog_seconds\\{source="default"\\} ${3 * bootSeconds}$`, 'm'));
    expect(text).toMatch(new RegExp(`^dips_scaler_target_seconds ${bootSeconds}$`, 'm'));
    expect(text).toMatch(/^dips_scaler_last_decision_info\{action="scale-out",reason="[^"]*scale out from 1 to 3"\} 3$/m);
    expect(text).toMatch(/^dips_scaler_decisions_total\{action="scale-out"\} 1$/m);
  });

  it('survives a failing provider: the error is recorded and counted, and the next tick tries again', async () => {
    const { scaler, provider, registry } = setUp(threeWorkersOfWork);
    provider.failure = new Error('SetDesiredCapacity(dips, 3) failed: Throttling: Rate exceeded');
    await expect(scaler.tick()).resolves.toBeUndefined();
    expect(scaler.status().lastError?.message).toContain('Throttling');
    expect(await registry.metrics()).toMatch(/^dips_scaler_errors_total 1$/m);

    provider.failure = undefined;
    await scaler.tick();
    expect(provider.applied).toEqual([3]);
    expect(scaler.status().lastError).toBeNull();
  });

  it('picks up a running pool where it is (a restarted master) instead of dropping it to min', async () => {
    const empty: Backlog = [];
    const { scaler, provider } = setUp(empty, 60_000, 4);
    await scaler.tick();
    expect(provider.applied).toEqual([4]);
    expect(scaler.status().lastDecision?.reason).toContain(`before scaling in to ${policy.min}`);
  });

  it('runs on its own, wakes early for new work, and closes the provider on stop', async () => {
    const empty: Backlog = [];
    const { scaler, provider, setBacklog } = setUp(empty, 4_000);
    scaler.start();
    await vi.waitFor(() => expect(provider.applied).toEqual([policy.min]));
    setBacklog(threeWorkersOfWork);
    scaler.wake(); // the 4 s interval would otherwise keep the pool at min past the wait below
    await vi.waitFor(() => expect(provider.applied).toEqual([policy.min, 3]));
    await scaler.stop();
    expect(provider.closed).toBe(true);
  });
});
