import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';

/** The built CLI: cluster tests run real processes from dist/ (npm run build first). */
export const dipsBin = path.resolve(import.meta.dirname, '../../dist/services/cli/main.js');

const spawned = new Set<ChildProcess>();

export interface DipsProcess {
  child: ChildProcess;
  /** The URL the process printed (master or worker). */
  url: string;
  /** Output it wrote to stderr (logs), for failure messages. */
  log(): string;
}

/** Test defaults: short timeouts so failure handling takes seconds, quiet logs. */
export const fastClusterEnv: NodeJS.ProcessEnv = {
  DIPS_LOG_LEVEL: 'warn',
  DIPS_HEARTBEAT_MS: '250',
  DIPS_HEARTBEAT_TIMEOUT_MS: '1500',
  DIPS_LEASE_MS: '4000',
  DIPS_RETRY_BASE_MS: '100',
  DIPS_WORKER_SLOTS: '2',
};

/**
 * Starts `dips <args>` and resolves with the URL it announces on stdout (a line containing
 * "http://..."). The process is killed by killAll() (call it in afterEach) even if the test fails.
 */
export function startDips(args: string[], env: NodeJS.ProcessEnv = {}): Promise<DipsProcess> {
  const child = spawn(process.execPath, [dipsBin, ...args], {
    env: { ...process.env, ...fastClusterEnv, DIPS_TOKEN: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.add(child);
  child.on('exit', () => spawned.delete(child));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-20_000);
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const url = line.match(/(http:\/\/[0-9.:]+)/)?.[1];
      if (url) resolve({ child, url, log: () => stderr });
    });
    child.on('exit', (code, signal) => reject(new Error(`dips ${args.join(' ')} exited (${code ?? signal}) before announcing its URL:\n${stderr}`)));
  });
}

/** Runs `dips <args>` to completion. */
export function runDips(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [dipsBin, ...args], { env: { ...process.env, DIPS_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      spawned.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Kills every process the tests started (SIGCONT first, in case one was stopped). */
export async function killAll(): Promise<void> {
  const children = [...spawned];
  for (const child of children) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
  await Promise.all(children.map(exited));
}

/** Starts a master and `workers` worker processes on loopback, each on a free port. */
export async function startCluster(options: { workers: number; dataDir: string; env?: NodeJS.ProcessEnv; port?: number }) {
  const master = await startDips(['master', '--port', String(options.port ?? 0), '--data-dir', options.dataDir], options.env);
  const workers = await Promise.all(
    Array.from({ length: options.workers }, () => startDips(['worker', '--port', '0', '--master', master.url], options.env)),
  );
  return { master, workers };
}

/** A live process's resident memory now and at its peak (VmRSS, VmHWM from /proc), in bytes. */
export async function memoryOf(child: ChildProcess): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
  const kib = (field: string) => Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'))?.[1]) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}
