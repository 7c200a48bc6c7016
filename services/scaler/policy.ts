/**
 * The scaling policy: a pure function from (backlog, current capacity, time, memory) to a decision.
 * The same function drives local worker processes, the AWS worker group and the simulator.
 */

/** Work queued for, or held by, workers, as the dispatcher reports it. */
export interface Backlog {
  /** Pixels of images or tiles waiting for a worker. */
  queuedPixels: number;
  /** Pixels of work handed to workers and not yet finished. */
  inflightPixels: number;
  queuedUnits: number;
  inflightUnits: number;
}

export interface ScalingPolicy {
  /** Fewest workers; 0 lets the pool sleep until a job arrives. */
  min: number;
  max: number;
  /** Seconds of backlog one worker may hold before the pool grows. */
  targetSecondsPerWorker: number;
  /** Estimated pixels per second one worker processes; turns pixels into seconds of work. */
  workerPixelsPerSecond: number;
  /** Seconds the pool must stay over-sized before it shrinks (DIPS_SCALE_IN_AFTER). */
  scaleInAfterSeconds: number;
}

/** What the policy remembers between calls; the caller keeps it and passes it back. */
export interface PolicyMemory {
  /** When (ms since epoch) the pool was first seen larger than needed; null while it is not. */
  overSizedSince: number | null;
}

export type ScalingAction = 'scale-out' | 'scale-in' | 'hold';

export interface ScalingDecision {
  action: ScalingAction;
  desired: number;
  /** Workers the backlog alone calls for, before min/max and the scale-in delay. */
  needed: number;
  /** The backlog as seconds of work for one worker. */
  backlogSeconds: number;
  /** One human-readable sentence: what was measured and why this capacity. */
  reason: string;
  memory: PolicyMemory;
}

export const initialPolicyMemory: PolicyMemory = { overSizedSince: null };

function backlogUnits(backlog: Backlog): number {
  return backlog.queuedUnits + backlog.inflightUnits;
}

export function backlogPixels(backlog: Backlog): number {
  return backlog.queuedPixels + backlog.inflightPixels;
}

/**
 * Decides the pool size. Out: at once, in proportion to the backlog (seconds of work divided by the
 * target per worker). In: only once the pool has been larger than needed for scaleInAfterSeconds,
 * so a short lull between bursts does not throw away warm workers. Always within [min, max]; any
 * work at all needs at least one worker, which is how a job wakes a pool scaled to zero.
 */
export function decideCapacity(
  input: { backlog: Backlog; current: number; now: number },
  policy: ScalingPolicy,
  memory: PolicyMemory,
): ScalingDecision {
  const { backlog, current, now } = input;
  const backlogSeconds = backlogPixels(backlog) / policy.workerPixelsPerSecond;
  const units = backlogUnits(backlog);
  const needed = Math.max(Math.ceil(backlogSeconds / policy.targetSecondsPerWorker), units > 0 ? 1 : 0);
  const target = Math.min(policy.max, Math.max(policy.min, needed));
  const measured =
    `backlog ${units} unit(s), ${(backlogPixels(backlog) / 1e6).toFixed(1)} MP ≈ ${backlogSeconds.toFixed(1)} s of work ` +
    `(target ${policy.targetSecondsPerWorker} s per worker) needs ${needed} worker(s)`;
  const bounds = needed !== target ? `, kept within min ${policy.min} / max ${policy.max}` : '';
  const decide = (action: ScalingAction, desired: number, why: string, overSizedSince: number | null): ScalingDecision => ({
    action,
    desired,
    needed,
    backlogSeconds,
    reason: `${measured}${bounds}; ${why}`,
    memory: { overSizedSince },
  });

  // Bounds changed under a running pool: obey them at once, no delay applies.
  if (current > policy.max) return decide('scale-in', target, `${current} is above max ${policy.max}: scale in to ${target}`, null);
  if (target > current) {
    const why = current === 0 ? `pool is asleep: wake it with ${target}` : `scale out from ${current} to ${target}`;
    return decide('scale-out', target, why, null);
  }
  if (target === current) return decide('hold', current, `${current} is right`, null);

  const since = memory.overSizedSince ?? now;
  const overSizedFor = (now - since) / 1000;
  if (overSizedFor >= policy.scaleInAfterSeconds) {
    return decide('scale-in', target, `over-sized for ${overSizedFor.toFixed(0)} s: scale in from ${current} to ${target}`, null);
  }
  return decide(
    'hold',
    current,
    `over-sized for ${overSizedFor.toFixed(0)} s of ${policy.scaleInAfterSeconds} s before scaling in to ${target}`,
    since,
  );
}
