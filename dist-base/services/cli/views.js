import { formatTable } from './table.js';
/**
 * `dips status`: a headline (what was really processed, why a queued job waits) and one row per image;
 * a job too large for its view to list them gets the headline from its counts.
 */
export function formatJob(job, waiting) {
    const { done, failed, total } = job.progress;
    const headline = `job ${job.id}  ${job.status}  ${done + failed} of ${total} images processed${failed ? ` (${failed} failed)` : ''}`;
    if (!job.images)
        return [headline, ...(waiting ? [`waiting: ${waiting}`] : []), '', `its items are listed page by page: GET /v1/jobs/${job.id}/items`].join('\n');
    const table = formatTable(job.images, [
        { heading: '#', cell: (image) => image.index, align: 'right' },
        { heading: 'name', cell: (image) => image.name },
        { heading: 'status', cell: (image) => image.status },
        { heading: 'size', cell: (image) => (image.width && image.height ? `${image.width}x${image.height}` : undefined) },
        { heading: 'detail', cell: (image) => image.error ?? (image.qr?.length ? `qr: ${JSON.stringify(image.qr)}` : '') },
    ]);
    return [headline, ...(waiting ? [`waiting: ${waiting}`] : []), '', table].join('\n');
}
/** `dips cluster`: the summary line ("2 workers, nothing queued"), what blocks queued work, and the workers. */
export function formatCluster(cluster, masterUrl, now = Date.now()) {
    const { summary, waiting } = cluster;
    const lines = [`${summary}; queue depth ${cluster.queueDepth}, desired capacity ${cluster.desiredCapacity}`];
    if (waiting)
        lines.push(`waiting: ${waiting.replace('<master URL>', masterUrl)}`);
    if (cluster.workers.length > 0) {
        lines.push('', formatTable(cluster.workers, [
            { heading: 'id', cell: (worker) => worker.id },
            { heading: 'address', cell: (worker) => worker.address },
            { heading: 'state', cell: (worker) => worker.state },
            { heading: 'in flight', cell: (worker) => `${worker.inflight}${worker.slots ? `/${worker.slots}` : ''}`, align: 'right' },
            { heading: 'last heartbeat', cell: (worker) => `${Math.max(0, Math.round((now - Date.parse(worker.lastHeartbeat)) / 1000))} s ago`, align: 'right' },
        ]));
    }
    return lines.join('\n');
}
//# sourceMappingURL=views.js.map