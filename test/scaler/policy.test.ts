import { describe, expect, it } from 'vitest';
import { BootClock } from '../../services/scaler/boot-clock.js';
import { ScalingConfigError, parseScalingPolicy, scalingSettingsFromEnv } from '../../services/scaler/config.js';
import { costAtHalo, defaultMsPerMegapixel, measuredCalibration } from '../../services/scaler/cost-defaults.js';
import { type BacklogEstimate, CostModel, emptyEstimate, estimateBacklog } from '../../services/scaler/cost-model.js';
import { type ScalingPolicy, type Target, decideCapacity, initialPolicyMemory } from '../../services/scaler/policy.js';
import type { WorkKind } from '../../services/scaler/work.js';

const policy: ScalingPolicy = { min: 1, max: 10, scaleInAfterSeconds: 60 };
const target: Target = { secondsPerWorker: 20, source: 'measured boot' };
const t0 = Date.parse('2026-01-01T00:00:00Z');

/** A backlog worth `seconds` of one worker's time over `units` units. */
const backlogOf = (seconds: number, units = 10): BacklogEstimate => ({ ...emptyEstimate, workerSeconds: seconds, defaultWorkerSeconds: seconds, units, pixels: units * 1e6 });
const decide = (backlog: BacklogEstimate, current: number, extra: { busy?: number; now?: number; rules?: ScalingPolicy; memory?: typeof initialPolicyMemory } = {}) =>
  decideCapacity({ backlog, target, current, busy: extra.busy ?? 0, now: extra.now ?? t0 }, extra.rules ?? policy, extra.memory ?? initialPolicyMemory);

const expensive: WorkKind = { pipeline: [{ op: 'blur', sigma: 8 }, { op: 'median', size: 5 }], decode: 'jpeg', encode: 'jpeg' };
const cheap: WorkKind = { pipeline: [{ op: 'grayscale' }], decode: 'jpeg', encode: 'jpeg' };

describe('cold-start costs (calibration)', () => {
  it('adds decode, each step at its parameters, and encode', () => {
    const { decode, encode, operations } = measuredCalibration;
    expect(defaultMsPerMegapixel(cheap)).toBeCloseTo(decode.jpeg! + operations.grayscale![0]!.msPerMegapixel + encode.jpeg!, 5);
    // A tile has no decode or encode.
    expect(defaultMsPerMegapixel({ pipeline: cheap.pipeline })).toBeCloseTo(operations.grayscale![0]!.msPerMegapixel, 5);
  });

  it('prices a neighbourhood filter by how far it reaches, and an expensive pipeline far above a cheap one', () => {
    expect(defaultMsPerMegapixel({ pipeline: [{ op: 'median', size: 25 }] })).toBeGreaterThan(defaultMsPerMegapixel({ pipeline: [{ op: 'median', size: 3 }] }));
    expect(defaultMsPerMegapixel(expensive)).toBeGreaterThan(5 * defaultMsPerMegapixel(cheap));
    const points = [
      { params: {}, halo: 2, msPerMegapixel: 10 },
      { params: {}, halo: 10, msPerMegapixel: 50 },
    ];
    expect(costAtHalo(points, 6)).toBe(30);
    expect(costAtHalo(points, 20)).toBe(100);
    expect(costAtHalo(points, 0)).toBe(10);
  });

  it('gives an operation or format it never timed the median cost, neither free nor alarming', () => {
    const unknown = defaultMsPerMegapixel({ pipeline: [{ op: 'no-such-op' }] });
    const known = Object.values(measuredCalibration.operations).map((points) => points[0]!.msPerMegapixel);
    expect(unknown).toBeGreaterThanOrEqual(Math.min(...known));
    expect(unknown).toBeLessThanOrEqual(Math.max(...known));
  });
});

describe('CostModel', () => {
  const fixedDefault = () => 100;

  it('starts from the default, then learns from what workers measure', () => {
    const model = new CostModel(600_000, fixedDefault);
    expect(model.estimate(expensive, t0)).toEqual({ msPerMegapixel: 100, source: 'default' });
    model.observe(expensive, 2e6, 2 * 400, t0); // 400 ms/MP
    const first = model.estimate(expensive, t0);
    expect(first.source).toBe('learned');
    expect(first.msPerMegapixel).toBeGreaterThan(300);
    for (let unit = 1; unit <= 20; unit++) model.observe(expensive, 2e6, 2 * 400, t0 + unit);
    expect(model.estimate(expensive, t0 + 20).msPerMegapixel).toBeCloseTo(400 * 0.94 + 100 * 0.06, -1);
    // Other pipelines keep their own figure.
    expect(model.estimate(cheap, t0).msPerMegapixel).toBe(100);
  });

  it('follows a change without being fooled by one outlier', () => {
    const model = new CostModel(600_000, fixedDefault);
    for (let unit = 0; unit < 10; unit++) model.observe(cheap, 1e6, 200, t0);
    model.observe(cheap, 1e6, 1_000, t0);
    expect(model.estimate(cheap, t0).msPerMegapixel).toBeLessThan(400);
    for (let unit = 0; unit < 15; unit++) model.observe(cheap, 1e6, 50, t0);
    expect(model.estimate(cheap, t0).msPerMegapixel).toBeLessThan(80);
  });

  it('ages: an unused learned cost decays toward the default with the half-life', () => {
    const halfLife = 600_000;
    const model = new CostModel(halfLife, fixedDefault);
    for (let unit = 0; unit < 10; unit++) model.observe(expensive, 1e6, 500, t0);
    const fresh = model.estimate(expensive, t0).msPerMegapixel;
    const later = model.estimate(expensive, t0 + halfLife).msPerMegapixel;
    const muchLater = model.estimate(expensive, t0 + 10 * halfLife);
    expect(later).toBeLessThan(fresh);
    expect(later).toBeGreaterThan(100);
    expect(muchLater.source).toBe('default');
    expect(muchLater.msPerMegapixel).toBeLessThan(110);
  });

  it('bounds what it believes: tiny units count little, absurd timings are clipped', () => {
    const model = new CostModel(600_000, fixedDefault);
    model.observe(cheap, 100 * 100, 50, t0); // 5,000 ms/MP on a thumbnail: per-task overhead
    expect(model.estimate(cheap, t0).source).toBe('default');
    model.observe(expensive, 1e6, 0, t0);
    expect(model.estimate(expensive, t0).msPerMegapixel).toBeGreaterThanOrEqual(100 / 20);
  });

  it('estimates the backlog in worker-seconds, running units by what is left, and says what rests on learned costs', () => {
    const model = new CostModel(600_000, fixedDefault);
    for (let unit = 0; unit < 10; unit++) model.observe(expensive, 1e6, 1_000, t0);
    const learnedCost = model.estimate(expensive, t0).msPerMegapixel;
    const estimate = estimateBacklog(
      [
        { kind: expensive, pixels: 10e6, units: 2, runningMs: 0 },
        { kind: cheap, pixels: 10e6, units: 2, runningMs: 0 },
        { kind: expensive, pixels: 1e6, units: 1, runningMs: 10 * learnedCost }, // overdue: nothing left
      ],
      model,
      2,
      t0,
    );
    expect(estimate.learnedWorkerSeconds).toBeCloseTo((10 * learnedCost) / 1000 / 2, 5);
    expect(estimate.defaultWorkerSeconds).toBeCloseTo((10 * 100) / 1000 / 2, 5);
    expect(estimate.workerSeconds).toBeCloseTo(estimate.learnedWorkerSeconds + estimate.defaultWorkerSeconds, 5);
    expect(estimate).toMatchObject({ units: 5, pixels: 21e6 });
  });
});

describe('BootClock', () => {
  it('measures from the tick that asked for a worker to its first heartbeat, and ignores workers nobody asked for', () => {
    const clock = new BootClock(75);
    clock.update(1, [{ id: 'already-running' }], t0);
    expect(clock.estimate()).toEqual({ seconds: 75, source: 'configured' });
    clock.update(3, [{ id: 'already-running' }], t0);
    clock.update(3, [{ id: 'already-running' }, { id: 'a', lastHeartbeat: t0 + 4_000 }], t0 + 5_000);
    expect(clock.estimate()).toEqual({ seconds: 4, source: 'measured' });
    clock.update(3, [{ id: 'already-running' }, { id: 'a' }, { id: 'b', lastHeartbeat: t0 + 8_000 }], t0 + 9_000);
    expect(clock.estimate().seconds).toBe(6);
  });

  it('drops a request a scale-in withdrew', () => {
    const clock = new BootClock(75);
    clock.update(2, [{ id: 'a' }], t0);
    clock.update(1, [{ id: 'a' }], t0 + 1_000);
    clock.update(2, [{ id: 'a' }], t0 + 50_000);
    clock.update(2, [{ id: 'a' }, { id: 'b', lastHeartbeat: t0 + 52_000 }], t0 + 53_000);
    expect(clock.estimate().seconds).toBe(2);
  });
});

describe('decideCapacity', () => {
  it('scales out at once, in proportion to the worker-seconds per target, and names the estimate and its source', () => {
    for (const workersOfWork of [2, 3.5, 7]) {
      const decision = decide(backlogOf(workersOfWork * target.secondsPerWorker), 1);
      expect(decision.action).toBe('scale-out');
      expect(decision.desired).toBe(Math.ceil(workersOfWork));
      expect(decision.reason).toContain(`scale out from 1 to ${Math.ceil(workersOfWork)}`);
      expect(decision.reason).toContain('default');
      expect(decision.reason).toContain('measured boot');
    }
  });

  it('does not grow for work one worker finishes before another could start', () => {
    const decision = decide(backlogOf(target.secondsPerWorker * 0.9, 50), 1);
    expect(decision).toMatchObject({ action: 'hold', desired: 1 });
  });

  it('never asks for more workers than there are units', () => {
    expect(decide(backlogOf(100 * target.secondsPerWorker, 2), 1).desired).toBe(2);
  });

  it('never goes above max nor below min, and says so', () => {
    const flood = decide(backlogOf(1000 * target.secondsPerWorker, 1000), 2);
    expect(flood.desired).toBe(policy.max);
    expect(flood.reason).toContain(`max ${policy.max}`);
    const atLeastTwo = { ...policy, min: 2, scaleInAfterSeconds: 0 };
    expect(decide(emptyEstimate, 5, { rules: atLeastTwo })).toMatchObject({ action: 'scale-in', desired: 2 });
    expect(decide(emptyEstimate, 0, { rules: atLeastTwo }).desired).toBe(2);
  });

  it('obeys a lowered max at once, without the scale-in delay', () => {
    expect(decide(backlogOf(1000, 100), 8, { rules: { ...policy, max: 3 } })).toMatchObject({ action: 'scale-in', desired: 3 });
  });

  it('scales in only after the pool has been over-sized for DIPS_SCALE_IN_AFTER seconds, and restarts the count when work returns', () => {
    let memory = initialPolicyMemory;
    let current = 4;
    const step = (seconds: number, backlog = emptyEstimate) => {
      const decision = decide(backlog, current, { now: t0 + seconds * 1000, memory });
      memory = decision.memory;
      current = decision.desired;
      return decision;
    };
    expect(step(0)).toMatchObject({ action: 'hold', desired: 4 });
    expect(step(30).reason).toContain('over-sized for 30 s');
    step(40, backlogOf(4 * target.secondsPerWorker));
    expect(memory.overSizedSince).toBeNull();
    expect(step(61)).toMatchObject({ action: 'hold', desired: 4 });
    const shrink = step(121);
    expect(shrink).toMatchObject({ action: 'scale-in', desired: policy.min });
  });

  it('never scales in below the workers holding leases', () => {
    const rules = { ...policy, scaleInAfterSeconds: 0 };
    expect(decide(emptyEstimate, 4, { busy: 2, rules })).toMatchObject({ action: 'scale-in', desired: 2 });
    const allBusy = decide(emptyEstimate, 3, { busy: 3, rules });
    expect(allBusy).toMatchObject({ action: 'hold', desired: 3 });
    expect(allBusy.reason).toContain('hold leases');
  });

  it('scales to zero when min is 0, and a single small job wakes the pool', () => {
    const sleepy = { ...policy, min: 0, scaleInAfterSeconds: 0 };
    const asleep = decide(emptyEstimate, 1, { rules: sleepy });
    expect(asleep).toMatchObject({ action: 'scale-in', desired: 0 });
    const woken = decide(backlogOf(0.01, 1), 0, { rules: sleepy, memory: asleep.memory });
    expect(woken).toMatchObject({ action: 'scale-out', desired: 1 });
    expect(woken.reason).toContain('wake');
  });
});

describe('scaling configuration', () => {
  it('rejects impossible bounds and settings with a message naming them', () => {
    expect(() => parseScalingPolicy({ ...policy, min: 4, max: 2 })).toThrow(/min must not exceed max/);
    expect(() => parseScalingPolicy({ ...policy, max: 0 })).toThrow(/max must be at least 1/);
    expect(() => parseScalingPolicy({ ...policy, min: 1.5 })).toThrow(ScalingConfigError);
    expect(() => scalingSettingsFromEnv('local', { min: 1, max: 3, scaleInAfterSeconds: 5 }, { DIPS_BOOT_SECONDS: 'soon' })).toThrow(/DIPS_BOOT_SECONDS/);
    expect(() => scalingSettingsFromEnv('aws', { min: 1, max: 3, scaleInAfterSeconds: 5 }, { DIPS_COST_HALF_LIFE: '0' })).toThrow(/DIPS_COST_HALF_LIFE/);
  });

  it('assumes a boot time per provider until one is measured, overridable', () => {
    expect(scalingSettingsFromEnv('aws', { min: 0, max: 4, scaleInAfterSeconds: 7 }, {}).bootSeconds).toBe(75);
    expect(scalingSettingsFromEnv('local', { min: 0, max: 4, scaleInAfterSeconds: 7 }, { DIPS_BOOT_SECONDS: '9', DIPS_COST_HALF_LIFE: '60' })).toEqual({
      policy: { min: 0, max: 4, scaleInAfterSeconds: 7 },
      bootSeconds: 9,
      costHalfLifeSeconds: 60,
    });
  });
});
