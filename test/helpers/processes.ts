import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { workerNodeArgs } from '../../services/worker/node-args.js';

/** The built CLI: process tests run real processes from dist/ (npm run build first). */
export const dipsBin = path.resolve(import.meta.dirname, '../../dist/services/cli/main.js');

/** Process groups started here, signalled as groups so the workers `dips up` spawns die too. */
const spawned = new Set<ChildProcess>();
const STOP_GRACE_MS = 5_000;
const LOG_TAIL_CHARS = 20_000;

export interface DipsProcess {
  /** The group leader: the `dips` process itself. */
  child: ChildProcess;
  /** The URL the process announced, without a trailing slash. */
  url: string;
  /** The storage service's URL, when it started one (`dips up` and `dips master` on local storage). */
  storageUrl: string | undefined;
  /** The tail of what it wrote (logs), for failure messages. */
  log(): string;
  /** SIGTERM to the whole group (a clean shutdown), SIGKILL if it outlasts the grace. */
  stop(): Promise<void>;
}

/** How each command announces its URL: "DIPS console: http://…/  (2 workers…)", "DIPS worker <id>: http://…". */
const announcements: Record<string, RegExp> = {
  up: /^DIPS console: (http:\/\/[^\s/]+)/,
  master: /^DIPS master: (http:\/\/[^\s/]+)/,
  worker: /^DIPS worker \S+: (http:\/\/[^\s/]+)/,
  storage: /^DIPS storage: (http:\/\/[^\s/]+)/,
};

/** Test defaults: short timeouts so failure handling takes seconds, quiet logs. */
export const fastClusterEnv: NodeJS.ProcessEnv = {
  DIPS_LOG_LEVEL: 'warn',
  DIPS_HEARTBEAT_MS: '250',
  DIPS_HEARTBEAT_TIMEOUT_MS: '1500',
  DIPS_LEASE_MS: '4000',
  DIPS_RETRY_BASE_MS: '100',
  DIPS_WORKER_SLOTS: '2',
};

/** How to run `dips`: by default this repository's dist/ on this Node, in this folder. */
export interface Launch {
  /** The whole environment (nothing is inherited beyond it). */
  env: NodeJS.ProcessEnv;
  node?: string;
  /** Flags for Node before the CLI. */
  nodeArgs?: readonly string[];
  cli?: string;
  cwd?: string;
}

/**
 * Starts `dips up|master|worker ...` in its own process group and resolves once it announces its URL.
 * killAll() (call it in afterEach/afterAll) ends the group even if the test failed half-way.
 */
export function launchDips(args: string[], launch: Launch): Promise<DipsProcess> {
  const announcement = announcements[args[0]!];
  if (!announcement) throw new Error(`dips ${args[0]} announces no URL`);
  const child = spawn(launch.node ?? process.execPath, [...(launch.nodeArgs ?? []), launch.cli ?? dipsBin, ...args], {
    env: launch.env,
    cwd: launch.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  spawned.add(child);
  let output = '';
  let storageUrl: string | undefined;
  const log = () => output;
  const record = (text: string) => (output = (output + text).slice(-LOG_TAIL_CHARS));
  child.stderr!.on('data', (chunk: Buffer) => record(chunk.toString()));
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      record(`${line}\n`);
      storageUrl ??= announcements.storage!.exec(line)?.[1];
      const url = announcement.exec(line)?.[1];
      if (url) resolve({ child, url, storageUrl, log, stop: () => stopGroup(child) });
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`dips ${args.join(' ')} exited (${code ?? signal}) before announcing its URL:\n${output}`)));
  });
}

/**
 * `dips <args>` from dist/ with the fast test timings (and no token unless `env` sets one); a worker with
 * the Node flags instances and `dips up` give it.
 */
export function startDips(args: string[], env: NodeJS.ProcessEnv = {}): Promise<DipsProcess> {
  return launchDips(args, { env: { ...process.env, ...fastClusterEnv, DIPS_TOKEN: '', ...env }, ...(args[0] === 'worker' ? { nodeArgs: workerNodeArgs } : {}) });
}

/** Runs `dips <args>` to completion. */
export function runDips(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [dipsBin, ...args], { env: { ...process.env, DIPS_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  spawned.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) =>
    child.on('close', (code) => {
      spawned.delete(child);
      resolve({ code, stdout, stderr });
    }),
  );
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // The group is already gone.
  }
}

async function stopGroup(child: ChildProcess): Promise<void> {
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), STOP_GRACE_MS);
  signalGroup(child, 'SIGTERM');
  await exited(child);
  clearTimeout(timer);
  // The workers of `dips up` may outlive their parent by a moment; make sure none is left.
  signalGroup(child, 'SIGKILL');
}

/** Kills every process group the tests started (SIGCONT first, in case one was stopped). */
export async function killAll(): Promise<void> {
  const children = [...spawned];
  spawned.clear();
  for (const child of children) {
    signalGroup(child, 'SIGCONT');
    signalGroup(child, 'SIGKILL');
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
