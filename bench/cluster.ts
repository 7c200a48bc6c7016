import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { clusterView, parseResponse } from '../services/protocol/api.js';
import { cliPath, exitWithMasterImport } from '../services/shared/child-processes.js';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface ClusterPids {
  master: number;
  workers: number[];
  /** Local storage only (S3 mode has none). */
  storage: number | undefined;
}

export interface LocalCluster {
  url: string;
  process: ChildProcess;
  /** pids of the master (the `dips up` process itself runs the master), of its worker children and of its storage service child. */
  pids(): Promise<ClusterPids>;
  stop(): Promise<void>;
}

/** Starts `dips up` as a child process and waits until `workers` workers have registered. */
export async function startLocalCluster(options: {
  workers: number;
  dataDir: string;
  env?: Record<string, string>;
  /** Node flags for the master's process only (e.g. --cpu-prof); the workers it spawns do not inherit them. */
  nodeArgs?: string[];
}): Promise<LocalCluster> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    // Stopped with this process however it goes (a bench killed or interrupted), as `dips up` stops its own workers.
    [...(options.nodeArgs ?? []), '--import', exitWithMasterImport, cliPath, 'up', '--workers', String(options.workers), '--port', String(port)],
    {
      env: { ...process.env, ...workerProfiling(), DIPS_DATA_DIR: options.dataDir, ...options.env },
      // Logs go to the data dir, so the benchmark's own output stays readable.
      stdio: ['ignore', 'ignore', openSync(path.join(options.dataDir, 'cluster.log'), 'a'), 'ipc'],
    },
  );
  child.channel?.unref();
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`dips up exited with code ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error('cluster did not become ready within 60 s');
    const ready = await fetch(`${url}/v1/cluster`)
      .then(async (response) => response.ok && (await parseResponse(clusterView, response)).workers.length >= options.workers)
      .catch(() => false);
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    url,
    process: child,
    pids: async () => {
      const [workers, [storage]] = await Promise.all([childrenRunning(child.pid!, 'worker'), childrenRunning(child.pid!, 'storage')]);
      return { master: child.pid!, workers, storage };
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * DIPS_BENCH_WORKER_CPU_PROF=DIR profiles the workers too (any bench that starts a cluster): workers
 * inherit the master's environment, so NODE_OPTIONS reaches them, and the master as well; each profile
 * is named by its process id, and the master's log (cluster.log) names the workers' pids.
 */
function workerProfiling(): Record<string, string> {
  const dir = process.env.DIPS_BENCH_WORKER_CPU_PROF;
  return dir ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${path.resolve(dir)}`.trim() } : {};
}

/** The child processes of pid that run `dips <command>` (from /proc: their command lines). */
export async function childrenRunning(pid: number, command: 'worker' | 'storage'): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  const children = text.split(/\s+/).filter(Boolean).map(Number);
  const commands = await Promise.all(children.map((child) => readFile(`/proc/${child}/cmdline`, 'utf8').catch(() => '')));
  return children.filter((_child, at) => commands[at]!.split('\0').includes(command));
}

