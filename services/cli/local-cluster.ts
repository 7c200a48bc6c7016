import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';

export interface LocalWorkerPoolOptions {
  masterUrl: string;
  /** Environment for every worker (DIPS_TOKEN and friends pass through). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Worker child processes on this machine (for `dips up`): each is `dips worker --port 0` (a free
 * port; it advertises the one it got). add()/remove() let a scaler grow and shrink the pool.
 */
export class LocalWorkerPool {
  private readonly children = new Set<ChildProcess>();

  constructor(private readonly options: LocalWorkerPoolOptions) {}

  get size(): number {
    return this.children.size;
  }

  add(): ChildProcess {
    const slots = Number(this.options.env?.DIPS_WORKER_SLOTS ?? os.availableParallelism());
    const child = spawn(process.execPath, [process.argv[1]!, 'worker', '--port', '0', '--master', this.options.masterUrl], {
      env: {
        ...process.env,
        ...this.options.env,
        // libuv's pool must hold every task in flight or sharp serialises them (sharp-facts.md).
        UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? String(Math.max(4, slots * 2)),
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Asks one worker to drain and stop (SIGTERM); resolves when it has exited. */
  async remove(): Promise<void> {
    const [child] = this.children;
    if (child) await stopChild(child);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.children].map(stopChild));
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
