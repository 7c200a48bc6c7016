import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { type ClusterWorker, corpus, download, getCluster, metric, submit, waitForJob, waitUntil } from '../helpers/api.js';
import { type DipsProcess, exited, killAll, startDips } from '../helpers/processes.js';

interface ClusterView {
  workers: ClusterWorker[];
  queueDepth: number;
  desiredCapacity: number;
  scaler: {
    desiredCapacity: number;
    actualCapacity: number;
    lastChange: { action: string; reason: string } | null;
    lastError: unknown;
  };
}

const photos = ['dune.jpg', 'aqua.jpg', 'freshflower.jpg', 'ladybird.jpg'].map(corpus);

let up: DipsProcess | undefined;
let dataDir: string | undefined;

afterEach(async () => {
  // Kills `dips up`'s process group: any worker it started too.
  await killAll();
  up = undefined;
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** Starts `dips up --autoscale` and resolves once it prints the console URL. */
async function startAutoscaledCluster(min: number, max: number, env: NodeJS.ProcessEnv): Promise<DipsProcess> {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'dips-autoscale-'));
  up = await startDips(['up', '--autoscale', '--min', String(min), '--max', String(max), '--port', '0', '--data-dir', dataDir], env);
  return up;
}

const cluster = (url: string) => getCluster<ClusterView>(url);

const ready = (view: ClusterView) => view.workers.filter((worker) => worker.state === 'ready');

describe('dips up --autoscale', () => {
  // A slow worker estimate and a short target make a burst of photos several workers' worth of work.
  const bursts = [
    { name: '8 jobs of 4 whole photos', jobs: 8, images: photos, env: { DIPS_WORKER_MPPS: '0.5' } },
    { name: '2 jobs of 2 images cut into tiles', jobs: 2, images: [corpus('garden-odd.png'), corpus('garden-odd.png')], env: { DIPS_WORKER_MPPS: '0.1', DIPS_TILE_SIZE: '128' } },
  ];

  it.each(bursts)('grows the pool for $name, finishes every job, and shrinks back to min when idle', async (burst) => {
    const min = 1;
    const max = 3;
    const { url, log } = await startAutoscaledCluster(min, max, {
      DIPS_SCALE_IN_AFTER: '2',
      DIPS_SCALE_TARGET_SECONDS: '2',
      DIPS_WORKER_SLOTS: '1',
      ...burst.env,
    });
    await waitUntil(() => cluster(url), (view) => ready(view).length === min, 30_000, `${min} worker to register`);

    // Watch the pool the way an operator would, while the burst runs.
    let largestPool = 0;
    let largestDesired = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const view = await cluster(url).catch(() => undefined); // a failing test kills the cluster under us
        if (!view) return;
        largestPool = Math.max(largestPool, ready(view).length);
        largestDesired = Math.max(largestDesired, view.desiredCapacity);
        await sleep(100);
      }
    })();

    const pipeline = JSON.stringify([{ op: 'blur', sigma: 3 }]);
    const jobs = await Promise.all(Array.from({ length: burst.jobs }, () => submit(url, burst.images, { pipeline, format: 'png' })));
    const finished = await Promise.all(jobs.map((id) => waitForJob(url, id))).catch((error: Error) => {
      throw new Error(`${error.message}\n${log()}`);
    });
    // New workers may register just after the last job: give the watcher a moment to see them.
    await waitUntil(async () => largestPool, (largest) => largest > min, 15_000, 'the pool to grow').catch(() => undefined);
    watching = false;
    await watcher;

    expect(finished.map((job) => job.status)).toEqual(jobs.map(() => 'succeeded'));
    expect(largestPool, log()).toBeGreaterThan(min);
    expect(largestPool).toBeLessThanOrEqual(max);
    expect(largestDesired).toBeLessThanOrEqual(max);
    // The results are real images of the inputs' sizes.
    for (const [index, photo] of burst.images.entries()) {
      const input = await sharp(photo).metadata();
      const output = await sharp(await download(url, jobs[0], index)).metadata();
      expect({ format: output.format, width: output.width, height: output.height }).toEqual({ format: 'png', width: input.width, height: input.height });
    }

    const idle = await waitUntil(
      () => cluster(url),
      (view) => ready(view).length === min && view.workers.length === min && view.scaler.actualCapacity === min && view.desiredCapacity === min,
      60_000,
      `the pool to shrink back to ${min}`,
    );
    expect(idle.scaler.lastChange?.action).toBe('scale-in');
    expect(idle.scaler.lastChange?.reason).toContain('over-sized');
    expect(idle.scaler.lastError).toBeNull();
    expect(await metric(url, 'dips_scaler_desired_capacity')).toBe(min);
    expect(await metric(url, 'dips_scaler_decisions_total{action="scale-out"}')).toBeGreaterThan(0);

    // Ctrl-C: the scaler drains and stops its workers before `dips up` exits.
    const workerAddress = idle.workers[0].address;
    up!.child.kill('SIGTERM');
    await exited(up!.child);
    expect(up!.child.exitCode).toBe(0);
    await expect(fetch(`${workerAddress}/healthz`)).rejects.toThrow();
  });

  it('with --min 0 sleeps with no workers, wakes for a job, and sleeps again', async () => {
    const { url, log } = await startAutoscaledCluster(0, 2, { DIPS_SCALE_IN_AFTER: '1' });
    const asleep = await cluster(url);
    expect(asleep.workers).toEqual([]);
    expect(asleep.desiredCapacity).toBe(0);

    const id = await submit(url, [photos[0]], { pipeline: JSON.stringify([{ op: 'invert' }]), format: 'png' });
    const job = await waitForJob(url, id);
    expect(job.status, log()).toBe('succeeded');
    const input = await sharp(photos[0]).metadata();
    const output = await sharp(await download(url, id, 0)).metadata();
    expect([output.width, output.height]).toEqual([input.width, input.height]);

    const sleeping = await waitUntil(() => cluster(url), (view) => view.workers.length === 0 && view.scaler.actualCapacity === 0, 60_000, 'the pool to sleep again');
    expect(sleeping.scaler.lastChange?.action).toBe('scale-in');
  });
});
