import { describe, expect, it } from 'vitest';
import { ScalingConfigError, parseScalingPolicy, scalingPolicyFromEnv } from '../../services/scaler/config.js';
import { type Backlog, type ScalingPolicy, decideCapacity, initialPolicyMemory } from '../../services/scaler/policy.js';

const policy: ScalingPolicy = {
  min: 1,
  max: 10,
  targetSecondsPerWorker: 20,
  workerPixelsPerSecond: 50e6,
  scaleInAfterSeconds: 60,
};

/** A backlog worth `seconds` of one worker's time, split over `units` queued images. */
function backlogOf(seconds: number, units = 10, rules = policy): Backlog {
  return { queuedPixels: seconds * rules.workerPixelsPerSecond, inflightPixels: 0, queuedUnits: units, inflightUnits: 0 };
}

const empty: Backlog = { queuedPixels: 0, inflightPixels: 0, queuedUnits: 0, inflightUnits: 0 };
const t0 = Date.parse('2026-01-01T00:00:00Z');

describe('decideCapacity', () => {
  it('scales out at once, in proportion to the seconds of work per worker', () => {
    for (const workersOfWork of [2, 3.5, 7]) {
      const backlog = backlogOf(workersOfWork * policy.targetSecondsPerWorker);
      const decision = decideCapacity({ backlog, current: 1, now: t0 }, policy, initialPolicyMemory);
      expect(decision.action).toBe('scale-out');
      expect(decision.desired).toBe(Math.ceil(workersOfWork));
      expect(decision.reason).toContain(`scale out from 1 to ${Math.ceil(workersOfWork)}`);
    }
  });

  it('measures work in pixels, not jobs: one huge image outweighs many small ones', () => {
    const oneHuge = decideCapacity({ backlog: backlogOf(5 * policy.targetSecondsPerWorker, 1), current: 1, now: t0 }, policy, initialPolicyMemory);
    const manySmall = decideCapacity({ backlog: backlogOf(policy.targetSecondsPerWorker / 2, 500), current: 1, now: t0 }, policy, initialPolicyMemory);
    expect(oneHuge.desired).toBe(5);
    expect(manySmall.desired).toBe(1);
    expect(manySmall.action).toBe('hold');
  });

  it('counts work already on workers as backlog', () => {
    const backlog: Backlog = {
      queuedPixels: 0,
      inflightPixels: 3 * policy.targetSecondsPerWorker * policy.workerPixelsPerSecond,
      queuedUnits: 0,
      inflightUnits: 3,
    };
    expect(decideCapacity({ backlog, current: 1, now: t0 }, policy, initialPolicyMemory).desired).toBe(3);
  });

  it('never goes above max nor below min, and says so', () => {
    const flood = decideCapacity({ backlog: backlogOf(1000 * policy.targetSecondsPerWorker), current: 2, now: t0 }, policy, initialPolicyMemory);
    expect(flood.desired).toBe(policy.max);
    expect(flood.reason).toContain(`max ${policy.max}`);

    const atLeastTwo = { ...policy, min: 2, scaleInAfterSeconds: 0 };
    const idle = decideCapacity({ backlog: empty, current: 5, now: t0 }, atLeastTwo, initialPolicyMemory);
    expect(idle.desired).toBe(2);
    expect(idle.action).toBe('scale-in');

    const belowMin = decideCapacity({ backlog: empty, current: 0, now: t0 }, atLeastTwo, initialPolicyMemory);
    expect(belowMin.desired).toBe(2);
  });

  it('obeys a lowered max at once, without the scale-in delay', () => {
    const decision = decideCapacity({ backlog: backlogOf(1000), current: 8, now: t0 }, { ...policy, max: 3 }, initialPolicyMemory);
    expect(decision).toMatchObject({ action: 'scale-in', desired: 3 });
  });

  it('scales in only after the pool has been over-sized for DIPS_SCALE_IN_AFTER seconds', () => {
    let memory = initialPolicyMemory;
    let current = 4;
    const step = (secondsAfterStart: number, backlog = empty) => {
      const decision = decideCapacity({ backlog, current, now: t0 + secondsAfterStart * 1000 }, policy, memory);
      memory = decision.memory;
      current = decision.desired;
      return decision;
    };
    expect(step(0)).toMatchObject({ action: 'hold', desired: 4 });
    expect(step(policy.scaleInAfterSeconds / 2).reason).toContain(`over-sized for ${policy.scaleInAfterSeconds / 2} s`);
    expect(step(policy.scaleInAfterSeconds - 1).desired).toBe(4);
    const shrink = step(policy.scaleInAfterSeconds);
    expect(shrink).toMatchObject({ action: 'scale-in', desired: policy.min });
    expect(shrink.reason).toContain(`scale in from 4 to ${policy.min}`);
  });

  it('restarts the scale-in delay when work returns in between', () => {
    let memory = decideCapacity({ backlog: empty, current: 4, now: t0 }, policy, initialPolicyMemory).memory;
    // A burst that needs all four workers: the pool is no longer over-sized.
    memory = decideCapacity({ backlog: backlogOf(4 * policy.targetSecondsPerWorker), current: 4, now: t0 + 30_000 }, policy, memory).memory;
    expect(memory.overSizedSince).toBeNull();
    const later = decideCapacity({ backlog: empty, current: 4, now: t0 + policy.scaleInAfterSeconds * 1000 }, policy, memory);
    expect(later).toMatchObject({ action: 'hold', desired: 4 });
  });

  it('scales to zero when min is 0, and a single small job wakes the pool', () => {
    const sleepy = { ...policy, min: 0, scaleInAfterSeconds: 0 };
    const asleep = decideCapacity({ backlog: empty, current: 1, now: t0 }, sleepy, initialPolicyMemory);
    expect(asleep).toMatchObject({ action: 'scale-in', desired: 0 });

    const tinyJob: Backlog = { queuedPixels: 100 * 100, inflightPixels: 0, queuedUnits: 1, inflightUnits: 0 };
    const woken = decideCapacity({ backlog: tinyJob, current: 0, now: t0 }, sleepy, asleep.memory);
    expect(woken).toMatchObject({ action: 'scale-out', desired: 1 });
    expect(woken.reason).toContain('wake');
  });
});

describe('scaling configuration', () => {
  it('rejects impossible bounds and settings with a message naming them', () => {
    expect(() => parseScalingPolicy({ ...policy, min: 4, max: 2 })).toThrow(/min must not exceed max/);
    expect(() => parseScalingPolicy({ ...policy, max: 0 })).toThrow(/max must be at least 1/);
    expect(() => parseScalingPolicy({ ...policy, min: 1.5 })).toThrow(ScalingConfigError);
    expect(() => scalingPolicyFromEnv({ min: 1, max: 3, scaleInAfterSeconds: 5 }, { DIPS_WORKER_MPPS: 'fast' })).toThrow(/DIPS_WORKER_MPPS/);
    expect(() => scalingPolicyFromEnv({ min: 1, max: 3, scaleInAfterSeconds: 5 }, { DIPS_SCALE_TARGET_SECONDS: '0' })).toThrow(/target/);
  });

  it('reads the target and throughput from the environment', () => {
    const fromEnv = scalingPolicyFromEnv({ min: 0, max: 4, scaleInAfterSeconds: 7 }, { DIPS_SCALE_TARGET_SECONDS: '12', DIPS_WORKER_MPPS: '2.5' });
    expect(fromEnv).toEqual({ min: 0, max: 4, scaleInAfterSeconds: 7, targetSecondsPerWorker: 12, workerPixelsPerSecond: 2.5e6 });
  });
});
