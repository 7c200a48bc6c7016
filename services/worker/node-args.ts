/**
 * The Node flags every worker process starts with: local-provider.ts spawns workers with them and an
 * instance's service does too (lib/workers.ts); NODE_OPTIONS refuses this one.
 *
 * --initial-old-space-size=128: V8 starts full collections on the memory of Buffers as well as its heap
 * (a task's input and output: in S3 mode about three copies of the input, as the socket's chunks, the
 * HTTP parser's copies and the joined body), with limits that start from the worker's small JavaScript
 * heap (15 MB). In S3 mode a worker ran a full mark-compact every 15-20 photos by default, every ~45 from
 * 64 MB and every ~120 from 128 MB (256 MB: no fewer), and the workers' CPU per photo fell by 0.45 ms
 * from 64 to 128 (docs/performance.md). Peak RSS per worker rose from 240-280 to 290-300 MiB on small
 * photos, and stayed at 330-390 MiB on 10 MP ones, where pixels dominate and large Buffers start
 * collections by their own size.
 *
 * --expose-gc: the worker's memory gate (memory-gate.ts) collects the buffers of a large whole stage as it
 * ends, before the next one allocates its own.
 */
export const workerNodeArgs = ['--initial-old-space-size=128', '--expose-gc'] as const;
