/**
 * What the cluster's numbers mean to someone waiting for a job. Live workers are the ready ones
 * (draining workers take no new work); with a scaler, the difference to its desired capacity is what it
 * is adding or removing.
 */
export function summarizeCluster(cluster) {
    const ready = cluster.workers.filter((worker) => worker.state === 'ready').length;
    // A scaler still starting has no backlog figure yet.
    const seconds = cluster.scaler && 'backlog' in cluster.scaler ? cluster.scaler.backlog.workerSeconds : undefined;
    const backlog = seconds !== undefined && seconds > 0 ? `${Math.round(seconds)} s of work queued` : cluster.queueDepth > 0 ? `${cluster.queueDepth} units queued` : 'nothing queued';
    // Without a scaler the desired capacity is only the live count: nothing is being added or removed.
    const change = cluster.scaler ? cluster.desiredCapacity - ready : 0;
    const parts = [`${ready} worker${ready === 1 ? '' : 's'}`, backlog, ...(change > 0 ? [`adding ${change}`] : change < 0 ? [`removing ${-change}`] : [])];
    const summary = parts.join(', ');
    if (ready > 0)
        return { summary };
    if (change > 0)
        return { summary, waiting: `starting workers (0 of ${cluster.desiredCapacity} ready)` };
    return { summary, waiting: 'no worker is registered with the master: start one with `dips worker --master <master URL>`, or run `dips up`' };
}
/** GET /v1/cluster's answer: the master's numbers and what they mean. */
export function withSummary(cluster) {
    return { ...cluster, ...summarizeCluster(cluster) };
}
//# sourceMappingURL=cluster-summary.js.map