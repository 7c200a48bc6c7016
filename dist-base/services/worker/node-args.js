/**
 * The Node flags every worker process starts with: local-provider.ts spawns workers with them and an
 * instance's service does too (lib/workers.ts); NODE_OPTIONS refuses this one.
 *
 * --initial-old-space-size=64: V8 starts full collections on the memory of Buffers as well as its heap
 * (a task's input and output: about 1 MB a photo), with limits that start from the worker's small
 * JavaScript heap (15 MB), so a worker in S3 mode ran a full mark-compact every 15-20 photos; from 64 MB, one every 40-120, and
 * 3-7 % less CPU per photo (docs/performance.md). Peak RSS stayed at 240-255 MiB per worker.
 */
export const workerNodeArgs = ['--initial-old-space-size=64'];
//# sourceMappingURL=node-args.js.map