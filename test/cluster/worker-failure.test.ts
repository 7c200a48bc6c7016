import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { corpus, download, getCluster, getJob, metric, pixelsOf, submit, waitForJob, waitForWorker, waitUntil } from '../helpers/api.js';
import { killAll, runDips, startCluster } from '../helpers/processes.js';

const image = corpus('twowings-4k.jpg');
const pipeline = JSON.stringify([{ op: 'blur', sigma: 2 }, { op: 'sharpen' }, { op: 'gamma', value: 1.4 }]);
const env = { DIPS_TILE_SIZE: '256' };

let tmp: string;
let reference: Awaited<ReturnType<typeof pixelsOf>>;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-failure-'));
  const run = await runDips(['process', image, '--pipeline', pipeline, '--out', tmp, '--format', 'png']);
  expect(run.code, run.stderr).toBe(0);
  reference = await pixelsOf(path.join(tmp, 'twowings-4k.png'));
});
afterEach(killAll);

async function expectReferencePixels(masterUrl: string, id: string): Promise<void> {
  const job = await waitForJob(masterUrl, id);
  expect(job.status, JSON.stringify(job)).toBe('succeeded');
  const actual = await pixelsOf(await download(masterUrl, id, 0));
  expect(actual.width).toBe(reference.width);
  expect(actual.height).toBe(reference.height);
  expect(actual.data.equals(reference.data), 'cluster result differs from dips process').toBe(true);
}

describe('worker failures mid-job', () => {
  it('kill -9 of a worker: its tiles are re-queued and the job yields identical pixels', async () => {
    const { master, workers } = await startCluster({ workers: 3, dataDir: path.join(tmp, 'kill'), env });
    const id = await submit(master.url, [image], { pipeline, format: 'png' });
    // Busy: it holds leases of the running job, so the failure really hits it mid-job.
    await waitForWorker(master.url, workers[0]!.url, 'busy', 60_000);
    workers[0]!.child.kill('SIGKILL');
    expect((await getJob(master.url, id)).status).toBe('running');

    await expectReferencePixels(master.url, id);
    expect(await metric(master.url, 'dips_retries_total')).toBeGreaterThan(0);
    const cluster = await getCluster(master.url);
    expect(cluster.workers.find((w) => w.address === workers[0]!.url)?.state).toBe('dead');
  });

  it('SIGSTOP of a worker: its leases expire, the job succeeds elsewhere, its late results are ignored', async () => {
    const { master, workers } = await startCluster({ workers: 3, dataDir: path.join(tmp, 'stop'), env });
    const stopped = workers[1]!;
    const id = await submit(master.url, [image], { pipeline, format: 'png' });
    // Stopped while the master counts leases on it (a tile it was seen busy with may be done by the time
    // the signal lands, and the job may be in a one-task stage elsewhere): otherwise resume and try again.
    for (;;) {
      await waitForWorker(master.url, stopped.url, 'busy', 60_000);
      stopped.child.kill('SIGSTOP');
      const { workers: seen } = await getCluster(master.url);
      if (seen.some((worker) => worker.address === stopped.url && worker.state === 'ready' && worker.inflight > 0)) break;
      stopped.child.kill('SIGCONT');
    }
    await waitForWorker(master.url, stopped.url, 'dead');
    await expectReferencePixels(master.url, id);

    // Resumed only now, it finishes what it held and answers for units done elsewhere: the master drops
    // those answers. (Resumed earlier, its answer for a unit still queued for its retry is taken instead.)
    stopped.child.kill('SIGCONT');
    await waitUntil(() => metric(master.url, 'dips_late_results_total'), (late) => late > 0, 30_000, 'a late result');
    await expectReferencePixels(master.url, id);
    // Back to heartbeating, it is a ready worker again.
    await waitForWorker(master.url, stopped.url, 'ready', 10_000);
  });
});
