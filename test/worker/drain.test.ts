import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { corpus, getCluster, metric, submit, waitForJob, waitUntil } from '../helpers/api.js';
import { exited, killAll, startCluster } from '../helpers/processes.js';

afterEach(killAll);

describe('worker shutdown', () => {
  it('on SIGTERM finishes the task it holds, leaves the master and exits 0', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-drain-'));
    // A lease long enough for the slow median: this test is about draining, not expiry.
    const { master, workers } = await startCluster({ workers: 1, dataDir, env: { DIPS_LEASE_MS: '60000' } });
    const [worker] = workers;
    const health = (await (await fetch(`${worker!.url}/healthz`)).json()) as { status: string; slots: number };
    expect(health).toMatchObject({ status: 'ok', slots: 2 });

    const id = await submit(master.url, [corpus('twowings-4k.jpg')], { pipeline: '[{"op":"median","size":5}]', format: 'png' });
    const healthOf = async () => (await (await fetch(`${worker!.url}/healthz`)).json()) as { running: number };
    await waitUntil(healthOf, (state) => state.running === 1, 30_000, 'the worker to be processing the image');
    worker!.child.kill('SIGTERM');
    await exited(worker!.child);
    expect(worker!.child.exitCode).toBe(0);

    const job = await waitForJob(master.url, id, undefined, 5_000);
    expect(job.status).toBe('succeeded');
    expect(await metric(master.url, 'dips_retries_total')).toBe(0);
    expect((await getCluster(master.url)).workers).toEqual([]);
  });
});
