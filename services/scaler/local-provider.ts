import { type ChildProcess, spawn } from 'node:child_process';
import os from 'node:os';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { cliPath, exitWithMasterImport } from '../shared/child-processes.js';
import { loadWorkerConfig } from '../shared/config.js';
import { workerEnvironment, workerNodeArgs } from '../worker/node-args.js';
import type { CapacityProvider, CapacityReport, WorkerSnapshot } from './capacity-provider.js';

export interface LocalProviderOptions {
  /** The master the workers register with. */
  masterUrl: string;
  logger: Logger;
  /** The built `dips` entry point; by default the one beside this file in dist/. */
  cliPath?: string;
  env?: NodeJS.ProcessEnv;
  /** A draining worker that has not exited after this long is killed (its leases then expire and are re-queued). */
  stopGraceMs?: number;
  /** A process that has not registered after this long is reported as silent. */
  registerGraceMs?: number;
  /** The most workers this provider is asked for: their task slots share the cores out (localWorkerSlots). */
  maxWorkers: number;
}

/**
 * Task slots of each of up to `maxWorkers` local workers: two images in flight per core, shared out
 * among them (sharp-facts: one in flight per core already uses every core, two get 1.1-1.3x more). A
 * worker's own default, one slot per core, is for a worker alone on its machine: `dips up` runs up to
 * one worker per core, which would make cores² tasks at once (64 on 8 cores).
 */
export const localWorkerSlots = (maxWorkers: number, cores = os.availableParallelism()): number => Math.max(1, Math.ceil((2 * cores) / maxWorkers));

interface LocalWorker {
  process: ChildProcess;
  startedAt: number;
  /** The id the worker registers under, read from its start-up line. */
  workerId: string | undefined;
  stopping: boolean;
  exited: Promise<void>;
}

const workerAnnouncement = /^DIPS worker (\S+): /;
const DEFAULT_STOP_GRACE_MS = 120_000;
const DEFAULT_REGISTER_GRACE_MS = 30_000;

/**
 * Local worker processes (`dips worker --port 0 --master URL`). Scale-in sends SIGTERM to idle
 * workers only: a worker drains (finishes what it holds, leaves the master) before exiting; one that
 * holds leases is left until it is idle (a later tick). A worker that dies is forgotten and replaced on
 * the next tick; a worker whose master dies stops too (exit-with-master.ts).
 */
export class LocalCapacityProvider implements CapacityProvider {
  readonly kind = 'local';
  private readonly workers = new Set<LocalWorker>();
  private readonly cliPath: string;
  /** The environment each worker starts with: DIPS_WORKER_SLOTS as given, else localWorkerSlots. */
  private readonly workerEnv: NodeJS.ProcessEnv;
  /** The task slots each worker runs. */
  readonly slots: number;
  private closed = false;

  constructor(private readonly options: LocalProviderOptions) {
    this.cliPath = options.cliPath ?? cliPath;
    const given = options.env ?? process.env;
    const env = given.DIPS_WORKER_SLOTS ? given : { ...given, DIPS_WORKER_SLOTS: String(localWorkerSlots(options.maxWorkers)) };
    this.slots = loadWorkerConfig({ port: 0, masterUrl: options.masterUrl }, env).slots;
    this.workerEnv = workerEnvironment(env, this.slots);
  }

  /** Idle workers to stop for `excess` too many: a worker holding leases is never stopped (its work would be retried elsewhere). */
  private idleToStop(running: readonly LocalWorker[], registered: readonly WorkerSnapshot[], excess: number): LocalWorker[] {
    const inflight = new Map(registered.map((worker) => [worker.id, worker.inflight]));
    // A process still starting holds nothing, and is the cheapest to give up.
    return running.filter((worker) => !worker.workerId || !inflight.get(worker.workerId)).sort((a, b) => Number(!!a.workerId) - Number(!!b.workerId)).slice(0, excess);
  }

  async apply(desired: number, registered: readonly WorkerSnapshot[]): Promise<CapacityReport> {
    const running = [...this.workers].filter((worker) => !worker.stopping);
    for (let count = running.length; count < desired && !this.closed; count++) running.push(this.startWorker());
    if (running.length > desired) {
      for (const worker of this.idleToStop(running, registered, running.length - desired)) this.stopWorker(worker);
    }
    const ids = new Set(registered.map((worker) => worker.id));
    const registerGraceMs = this.options.registerGraceMs ?? DEFAULT_REGISTER_GRACE_MS;
    const silent = [...this.workers]
      .filter((worker) => !worker.stopping && Date.now() - worker.startedAt > registerGraceMs)
      .filter((worker) => !worker.workerId || !ids.has(worker.workerId))
      .map((worker) => `local worker process ${worker.process.pid} has not registered with ${this.options.masterUrl}`);
    return { actual: [...this.workers].filter((worker) => !worker.stopping).length, silent };
  }

  /** Drains and stops every worker this provider started. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.workers];
    for (const worker of all) this.stopWorker(worker);
    await Promise.all(all.map((worker) => worker.exited));
  }

  private startWorker(): LocalWorker {
    const child = spawn(process.execPath, [...workerNodeArgs, '--import', exitWithMasterImport, this.cliPath, 'worker', '--port', '0', '--master', this.options.masterUrl], {
      env: this.workerEnv,
      // The IPC channel is how the worker notices this process is gone (exit-with-master.ts).
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    // Nothing is sent over it: it must not keep the master alive either.
    child.channel?.unref();
    const worker: LocalWorker = { process: child, startedAt: Date.now(), workerId: undefined, stopping: false, exited: Promise.resolve() };
    worker.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.workers.delete(worker);
        const fields = { pid: child.pid, workerId: worker.workerId, code, signal };
        if (worker.stopping) this.options.logger.info(fields, 'local worker stopped');
        else this.options.logger.warn(fields, 'local worker exited unexpectedly; the next tick replaces it');
        resolve();
      });
    });
    child.on('error', (error) => this.options.logger.error({ err: error }, 'local worker process failed'));
    // `dips worker` announces itself on stdout as "DIPS worker <id>: <url>": pass it on, learn the id.
    createInterface({ input: child.stdout! }).on('line', (line) => {
      process.stdout.write(`${line}\n`);
      worker.workerId ??= workerAnnouncement.exec(line)?.[1];
    });
    this.workers.add(worker);
    this.options.logger.info({ pid: child.pid }, 'local worker started');
    return worker;
  }

  private stopWorker(worker: LocalWorker): void {
    if (worker.stopping) return;
    worker.stopping = true;
    worker.process.kill('SIGTERM');
    const killer = setTimeout(() => worker.process.kill('SIGKILL'), this.options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
    killer.unref();
    void worker.exited.then(() => clearTimeout(killer));
  }
}
