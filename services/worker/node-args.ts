import { spawn } from 'node:child_process';
import { exitWithMasterImport } from '../shared/child-processes.js';

/**
 * The Node flags every worker process starts with: local-provider.ts spawns workers with them, an
 * instance's service does too (lib/workers.ts), and `dips worker` started without them starts itself
 * again with them (relaunchAsWorker); NODE_OPTIONS refuses this one.
 *
 * --initial-old-space-size=128: V8 starts full collections on the memory of Buffers as well as its heap
 * (a task's input and output; in S3 mode the socket's chunks of each input as well), with limits that
 * start from the worker's small JavaScript heap (15 MB). Measured when node:http still copied each input
 * three times (the socket's chunks, its parser's copies, the joined body): in S3 mode a worker ran a full
 * mark-compact every 15-20 photos by default, every ~45 from 64 MB and every ~120 from 128 MB (256 MB: no
 * fewer), and the workers' CPU per photo fell by 0.45 ms from 64 to 128 (docs/performance.md). Peak RSS per worker rose from 240-280 to 290-300 MiB on small
 * photos, and stayed at 330-390 MiB on 10 MP ones, where pixels dominate and large Buffers start
 * collections by their own size.
 *
 * --expose-gc: the worker's memory gate (memory-gate.ts) collects the buffers of a large whole stage as it
 * ends, before the next one allocates its own.
 */
export const workerNodeArgs = ['--initial-old-space-size=128', '--expose-gc'] as const;

/**
 * The environment of a worker process of `slots` task slots: UV_THREADPOOL_SIZE as given (not empty), else two
 * libuv threads per slot (sharp's work and the reads and writes of its files), at least libuv's default 4.
 * libuv sizes its pool before any JavaScript runs, so only the process that starts a worker can set it.
 */
export function workerEnvironment(env: NodeJS.ProcessEnv, slots: number): NodeJS.ProcessEnv {
  return { ...env, UV_THREADPOOL_SIZE: env.UV_THREADPOOL_SIZE || String(Math.max(4, slots * 2)) };
}

/** Whether this process was started with workerNodeArgs. */
export const hasWorkerNodeArgs = (): boolean => workerNodeArgs.every((flag) => process.execArgv.includes(flag));

/**
 * Runs this command again in a child started as a worker process should be (workerNodeArgs, the libuv
 * pool of workerEnvironment), for a `dips worker` started by hand without them. The child is the worker:
 * this process passes SIGINT and SIGTERM on (the child takes one arriving twice at once as one) and
 * exits as it exits. The child stops itself, draining, if this process dies (exit-with-master.ts).
 */
export function relaunchAsWorker(slots: number): void {
  const child = spawn(process.execPath, [...workerNodeArgs, '--import', exitWithMasterImport, ...process.execArgv, ...process.argv.slice(1)], {
    env: workerEnvironment(process.env, slots),
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  });
  child.channel?.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  child.once('error', (error) => {
    process.stderr.write(`dips: the worker process could not start: ${error.message}\n`);
    process.exit(1);
  });
  child.once('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : 1)));
}
