/**
 * The Node flags every worker process starts with: local-provider.ts spawns workers with them and an
 * instance's service does too (lib/workers.ts); NODE_OPTIONS refuses this one.
 *
 * --initial-old-space-size=64: V8 counts a task's Buffers (its input and output, about 1 MB a photo)
 * against the old generation's limit, which starts near the worker's small JavaScript heap (15 MB), so
 * a worker ran a full mark-compact every 10-20 photos; from 64 MB it runs about one per 120
 * (docs/performance.md). The heap itself stays small, so memory grows by at most the 64 MB.
 */
export const workerNodeArgs = ['--initial-old-space-size=64'] as const;
