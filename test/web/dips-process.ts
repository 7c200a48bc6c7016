import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const cli = path.resolve(import.meta.dirname, '../../dist/services/cli/main.js');
const STOP_GRACE_MS = 5_000;

export interface DipsProcess {
  /** The URL the process printed, without a trailing slash. */
  url: string;
  stop(): Promise<void>;
}

/** How each command announces its URL: "DIPS console: http://…/  (2 workers…)", "DIPS worker <id>: http://…". */
const announcement: Record<string, RegExp> = {
  up: /^DIPS console: (http:\/\/[^\s/]+)/m,
  master: /^DIPS master: (http:\/\/[^\s/]+)/m,
  worker: /^DIPS worker \S+: (http:\/\/[^\s/]+)/m,
};

/**
 * Starts `dips <command> <args>` from dist/ and waits for the line announcing its URL. The process leads its own process group so stop() also
 * ends the worker processes `dips up` spawned, even when the test failed half-way.
 */
export async function startDips(command: 'up' | 'master' | 'worker', args: string[], env: NodeJS.ProcessEnv = {}): Promise<DipsProcess> {
  const child = spawn(process.execPath, [cli, command, ...args], {
    env: { ...process.env, DIPS_TOKEN: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = announcement[command]!.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`dips ${command} ${args.join(' ')} exited with ${code} before announcing its URL:\n${output}`)));
    child.once('error', reject);
  }).catch(async (error: unknown) => {
    await stopGroup(child);
    throw error;
  });
  // Keep draining the pipes so a chatty process never blocks on a full pipe.
  child.stdout!.resume();
  child.stderr!.resume();
  return { url, stop: () => stopGroup(child) };
}

async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // The group is already gone.
    }
  };
  signalGroup('SIGTERM');
  const timer = setTimeout(() => signalGroup('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
  // Workers of `dips up` may outlive their parent by a moment; make sure none is left.
  signalGroup('SIGKILL');
}

/** `dips process`: the reference result, computed in one process without the cluster. */
export async function dipsProcess(files: string[], pipeline: unknown, outDir: string, format: string): Promise<void> {
  await promisify(execFile)(process.execPath, [cli, 'process', ...files, '--pipeline', JSON.stringify(pipeline), '--out', outDir, '--format', format]);
}
