import type { ClusterFacts, ClusterSummary } from '../shared/cluster-summary.js';
import { processedCount, type JobState } from './submit.js';
import { formatTable } from './table.js';

interface ImageRow {
  index: number;
  name: string;
  status: string;
  width?: number;
  height?: number;
  error?: string;
  qr?: string[];
}

/** `dips status`: a headline (what was really processed, why a queued job waits) and one row per image. */
export function formatJob(job: JobState & { images: ImageRow[] }, waiting?: string): string {
  const failed = job.images.filter((image) => image.status === 'failed').length;
  const headline = `job ${job.id}  ${job.status}  ${processedCount(job)} of ${job.images.length} images processed${failed ? ` (${failed} failed)` : ''}`;
  const table = formatTable(job.images, [
    { heading: '#', cell: (image) => image.index, align: 'right' },
    { heading: 'name', cell: (image) => image.name },
    { heading: 'status', cell: (image) => image.status },
    { heading: 'size', cell: (image) => (image.width && image.height ? `${image.width}x${image.height}` : undefined) },
    { heading: 'detail', cell: (image) => image.error ?? (image.qr?.length ? `qr: ${JSON.stringify(image.qr)}` : '') },
  ]);
  return [headline, ...(waiting ? [`waiting: ${waiting}`] : []), '', table].join('\n');
}

type ClusterAnswer = ClusterFacts &
  ClusterSummary & {
    workers: Array<{ id: string; address: string; state: string; inflight: number; slots?: number; lastHeartbeat: string }>;
  };

/** `dips cluster`: the summary line ("2 workers, nothing queued"), what blocks queued work, and the workers. */
export function formatCluster(cluster: ClusterAnswer, masterUrl: string, now = Date.now()): string {
  const { summary, waiting } = cluster;
  const lines = [`${summary}; queue depth ${cluster.queueDepth}, desired capacity ${cluster.desiredCapacity}`];
  if (waiting) lines.push(`waiting: ${waiting.replace('<master URL>', masterUrl)}`);
  if (cluster.workers.length > 0) {
    lines.push(
      '',
      formatTable(cluster.workers, [
        { heading: 'id', cell: (worker) => worker.id },
        { heading: 'address', cell: (worker) => worker.address },
        { heading: 'state', cell: (worker) => worker.state },
        { heading: 'in flight', cell: (worker) => `${worker.inflight}${worker.slots ? `/${worker.slots}` : ''}`, align: 'right' },
        { heading: 'last heartbeat', cell: (worker) => `${Math.max(0, Math.round((now - Date.parse(worker.lastHeartbeat)) / 1000))} s ago`, align: 'right' },
      ]),
    );
  }
  return lines.join('\n');
}
