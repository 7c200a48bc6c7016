import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';

/**
 * Worker child processes on this machine (for `dips up`): each is `dips worker --port 0` (a free
 * port; it advertises the one it got). They inherit this process's environment (DIPS_TOKEN...).
 */
export class LocalWorkerPool {
  private readonly children = new Set<ChildProcess>();

  constructor(private readonly masterUrl: string) {}

  add(): ChildProcess {
    const slots = Number(process.env.DIPS_WORKER_SLOTS ?? os.availableParallelism());
    const child = spawn(process.execPath, [process.argv[1]!, 'worker', '--port', '0', '--master', this.masterUrl], {
      env: {
        ...process.env,
        // libuv's pool must hold every task in flight or sharp serialises them (sharp-facts.md); it is
        // sized when the process starts, so it has to be set here.
        UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? String(Math.max(4, slots * 2)),
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
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
