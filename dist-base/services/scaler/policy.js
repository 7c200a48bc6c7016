export const initialPolicyMemory = { overSizedSince: null };
/** "≈ 24.3 worker-s (learned 20.1 s, default 4.2 s)": the estimate and what it rests on. */
export function describeBacklog(backlog) {
    const parts = [
        backlog.learnedWorkerSeconds > 0 ? `learned ${backlog.learnedWorkerSeconds.toFixed(1)} s` : '',
        backlog.defaultWorkerSeconds > 0 ? `default ${backlog.defaultWorkerSeconds.toFixed(1)} s` : '',
    ].filter(Boolean);
    return (`backlog ${backlog.units} unit(s), ${(backlog.pixels / 1e6).toFixed(1)} MP ≈ ${backlog.workerSeconds.toFixed(1)} worker-s` +
        (parts.length ? ` (${parts.join(', ')})` : ''));
}
/**
 * Decides the pool size. Out: at once, in proportion to the backlog (worker-seconds divided by the
 * target per worker, which follows how long a new worker takes to start), and never more workers than
 * units (a unit runs on one worker). In: only once the pool has been larger than needed for
 * scaleInAfterSeconds, so a short lull between bursts does not throw away warm workers, and never
 * below the workers holding leases. Always within [min, max]; any work at all needs at least one
 * worker, which is how a job wakes a pool scaled to zero.
 */
export function decideCapacity(input, policy, memory) {
    const { backlog, target: perWorker, current, busy, now } = input;
    const byWork = Math.ceil(backlog.workerSeconds / perWorker.secondsPerWorker);
    const needed = backlog.units > 0 ? Math.max(1, Math.min(byWork, backlog.units)) : 0;
    const target = Math.min(policy.max, Math.max(policy.min, needed));
    const measured = `${describeBacklog(backlog)}; target ${perWorker.secondsPerWorker.toFixed(1)} s per worker (${perWorker.source}) ` +
        `needs ${needed} worker(s)`;
    const bounds = needed !== target ? `, kept within min ${policy.min} / max ${policy.max}` : '';
    const decide = (action, desired, why, overSizedSince) => ({
        action,
        desired,
        needed,
        reason: `${measured}${bounds}; ${why}`,
        memory: { overSizedSince },
    });
    // Bounds changed under a running pool: obey them at once, no delay applies.
    if (current > policy.max)
        return decide('scale-in', target, `${current} is above max ${policy.max}: scale in to ${target}`, null);
    if (target > current) {
        const why = current === 0 ? `pool is asleep: wake it with ${target}` : `scale out from ${current} to ${target}`;
        return decide('scale-out', target, why, null);
    }
    if (target === current)
        return decide('hold', current, `${current} is right`, null);
    const since = memory.overSizedSince ?? now;
    const overSizedFor = (now - since) / 1000;
    if (overSizedFor < policy.scaleInAfterSeconds) {
        return decide('hold', current, `over-sized for ${overSizedFor.toFixed(0)} s of ${policy.scaleInAfterSeconds} s before scaling in to ${target}`, since);
    }
    const keep = Math.max(target, Math.min(current, busy));
    if (keep >= current)
        return decide('hold', current, `over-sized, but all ${current} hold leases: none is stopped`, since);
    const leases = keep > target ? ` (${keep} hold leases)` : '';
    return decide('scale-in', keep, `over-sized for ${overSizedFor.toFixed(0)} s: scale in from ${current} to ${keep}${leases}`, keep > target ? since : null);
}
//# sourceMappingURL=policy.js.map