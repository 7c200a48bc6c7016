import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { corpus, getCluster, metric, submit, waitForJob, waitUntil } from '../helpers/api.js';
import { workerNodeArgs } from '../../services/worker/node-args.js';
import { dipsBin, exited, fastClusterEnv, killAll, startCluster } from '../helpers/processes.js';

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

  it('drains on a SIGTERM that arrives while it registers, before it has announced itself', async () => {
    // A master that signals the worker while the worker waits for the answer to its first heartbeat:
    // the master counts it from that heartbeat on, so from then on a signal must drain it.
    const requests: string[] = [];
    let worker: ReturnType<typeof spawn> | undefined;
    const master = http.createServer((req, res) => {
      requests.push(`${req.method} ${req.url?.replace(/[^/]+$/, ':id')}`);
      req.resume();
      if (req.method === 'PUT' && requests.length === 1) {
        worker!.kill('SIGTERM');
        setTimeout(() => res.end('{}'), 200);
      } else res.end('{}');
    });
    master.listen(0, '127.0.0.1');
    await new Promise((resolve) => master.once('listening', resolve));
    try {
      const masterUrl = `http://127.0.0.1:${(master.address() as AddressInfo).port}`;
      worker = spawn(process.execPath, [...workerNodeArgs, dipsBin, 'worker', '--port', '0', '--master', masterUrl], { env: { ...process.env, ...fastClusterEnv, DIPS_TOKEN: '' }, stdio: 'ignore' });
      await exited(worker);
      expect({ code: worker.exitCode, signal: worker.signalCode }).toEqual({ code: 0, signal: null });
      expect(requests).toContain('DELETE /v1/workers/:id');
    } finally {
      worker?.kill('SIGKILL');
      master.close();
    }
  });
});
