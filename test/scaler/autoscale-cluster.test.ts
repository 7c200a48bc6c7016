import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { corpus, download, getCluster, metric, submit, waitForJob, waitUntil } from '../helpers/api.js';
import { type DipsProcess, exited, killAll, startDips } from '../helpers/processes.js';
import { scalerStatus } from '../../services/protocol/api.js';
import type { ClusterAnswer } from '../../services/protocol/newcomer.js';

const photos = ['dune.jpg'].map(corpus);

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

/** GET /v1/cluster of an autoscaled cluster: its scaler must be running, so its status is the running loop's. */
async function cluster(url: string) {
  const view = await getCluster(url);
  return { ...view, scaler: scalerStatus.parse(view.scaler) };
}

const ready = (view: ClusterAnswer) => view.workers.filter((worker) => worker.state === 'ready');

describe('dips up --autoscale', () => {
  // The same photographs (one 9 MP, two 1.2 MP) in both bursts: only the pipeline's cost differs.
  const burst = ['twowings-4k.jpg', 'dune.jpg', 'aqua.jpg'].map(corpus);
  const cheap = JSON.stringify([{ op: 'grayscale' }]);
  const expensive = JSON.stringify([{ op: 'blur', sigma: 8 }, { op: 'median', size: 5 }]);

  /** Runs one job, watching the pool the way an operator would (/v1/cluster) until it is done. */
  async function watchJob(url: string, pipeline: string, log: () => string) {
    const seen = { largestPool: 0, largestDesired: 0, reasons: new Set<string>(), summaries: new Set<string>() };
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const view = await cluster(url).catch(() => undefined); // a failing test kills the cluster under us
        if (!view) return;
        seen.largestPool = Math.max(seen.largestPool, ready(view).length);
        seen.largestDesired = Math.max(seen.largestDesired, view.desiredCapacity);
        if (view.scaler.lastDecision) seen.reasons.add(view.scaler.lastDecision.reason);
        seen.summaries.add(view.summary);
        await sleep(100);
      }
    })();
    const id = await submit(url, burst, { pipeline });
    const job = await waitForJob(url, id).catch((error: Error) => {
      throw new Error(`${error.message}\n${log()}`);
    });
    watching = false;
    await watcher;
    return { job, id, ...seen };
  }

  it('grows for an expensive burst but not for a cheap one of the same pixels, shrinks back when idle, and its workers die with it', async () => {
    const min = 1;
    const max = 3;
    // The 9 MP median takes several seconds on a loaded machine: longer than the tests' short lease. And a
    // worker busy with it may miss the tests' 1.5-s heartbeat timeout there: declared dead, it would stay
    // listed (as dead) after the scale-in, and this test is about scaling, not failure detection.
    const { url, log } = await startAutoscaledCluster(min, max, { DIPS_SCALE_IN_AFTER: '2', DIPS_LEASE_MS: '120000', DIPS_HEARTBEAT_TIMEOUT_MS: '10000' });
    await waitUntil(() => cluster(url), (view) => ready(view).length === min, 30_000, `${min} worker to register`);

    // Grey conversion of 10 MP is well under a second of work: sooner done than a second worker could start.
    const light = await watchJob(url, cheap, log);
    expect(light.job.status).toBe('succeeded');
    expect(light.largestDesired, [...light.reasons].join('\n')).toBe(min);
    expect(light.largestPool).toBe(min);
    expect([...light.reasons].some((reason) => /backlog [1-9]\d* unit\(s\), [\d.]+ MP ≈ [\d.]+ worker-s \((learned|default)/.test(reason))).toBe(true);

    // blur σ8 + median 5 on the same pixels is many seconds of work per worker: the pool grows.
    const heavy = await watchJob(url, expensive, log);
    expect(heavy.job.status, JSON.stringify(heavy.job)).toBe('succeeded');
    const afterBurst = await cluster(url);
    expect(heavy.largestDesired, log()).toBeGreaterThanOrEqual(2);
    expect(heavy.largestDesired).toBeLessThanOrEqual(max);
    expect(afterBurst.scaler.lastChange?.action === 'scale-out' || heavy.largestPool >= 2).toBe(true);
    expect([...heavy.reasons].some((reason) => reason.includes('scale out from 1 to'))).toBe(true);
    // The summary an operator reads says how much work waits, in the scaler's own worker-seconds.
    expect([...heavy.summaries].some((summary) => /^\d+ workers?, \d+ s of work queued/.test(summary)), [...heavy.summaries].join('\n')).toBe(true);
    const output = await sharp(await download(url, heavy.id, 0)).metadata();
    expect([output.format, output.width, output.height]).toEqual(['jpeg', 3840, 2400]);

    const idle = await waitUntil(
      () => cluster(url),
      (view) => ready(view).length === min && view.workers.length === min && view.scaler.actualCapacity === min && view.desiredCapacity === min,
      60_000,
      `the pool to shrink back to ${min}`,
    );
    expect(idle.scaler.lastChange?.action).toBe('scale-in');
    expect(idle.scaler.lastChange?.reason).toContain('over-sized');
    expect(idle.scaler.lastError).toBeNull();
    expect(idle.scaler.target.source).toContain('boot');
    expect(await metric(url, 'dips_scaler_desired_capacity')).toBe(min);
    expect(await metric(url, 'dips_scaler_decisions_total{action="scale-out"}')).toBeGreaterThan(0);

    // kill -9 of the master: no chance to stop its workers, yet they must not outlive it.
    const workerAddress = idle.workers[0]!.address;
    expect((await fetch(`${workerAddress}/healthz`)).ok).toBe(true);
    up!.child.kill('SIGKILL');
    await exited(up!.child);
    await waitUntil(
      () => fetch(`${workerAddress}/healthz`).then(() => 'answering', () => 'gone'),
      (state) => state === 'gone',
      20_000,
      'the orphaned worker to exit',
    );
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
