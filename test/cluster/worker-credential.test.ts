import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMaster, type RunningMaster } from '../../services/master/server.js';
import { startWorker, type RunningWorker } from '../../services/worker/server.js';
import { errorBody } from '../../services/protocol/errors.js';
import { clusterView, parseResponse } from '../../services/protocol/api.js';
import { corpus, download, pixelsOf, submit, waitForJob, waitUntil } from '../helpers/api.js';

/* Issue #17, item 5: a client token holder tried to register a rogue worker, receive others' images and
   forge their results, delete real workers, and point the master at any address. Each step must fail. */

const clientToken = 'client-secret-3c1d';
const workerToken = 'worker-secret-9e4b';
const pipeline = JSON.stringify([{ op: 'invert' }]);
process.env.DIPS_LOG_LEVEL = 'silent';

let running: RunningMaster;
let worker: RunningWorker;
let dataDir: string;
beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-credential-'));
  running = await startMaster({ port: 0, dataDir, token: clientToken, workerToken, heartbeatTimeoutMs: 2000 });
  worker = await startWorker({ port: 0, masterUrl: running.url, workerToken, heartbeatMs: 200, slots: 1 });
});
afterAll(async () => {
  await worker.drain();
  await running.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
const register = (id: string, token: string, body: object) =>
  fetch(`${running.url}/v1/workers/${id}`, { method: 'PUT', headers: bearer(token), body: JSON.stringify(body) });
const workers = async () => (await parseResponse(clusterView, await fetch(`${running.url}/v1/cluster`, { headers: bearer(clientToken) }))).workers;

describe('workers have their own credential', () => {
  it('a client token cannot register a worker, delete one, or fetch task bytes', async () => {
    const rogue = await register('rogue', clientToken, { address: 'http://127.0.0.1:9', slots: 4 });
    expect(rogue.status).toBe(401);
    expect(errorBody.parse(await rogue.json()).error.message).toMatch(/DIPS_WORKER_TOKEN/);
    expect((await fetch(`${running.url}/v1/workers/${worker.id}`, { method: 'DELETE', headers: bearer(clientToken) })).status).toBe(401);
    expect((await fetch(`${running.url}/v1/blobs/some-lease/in`, { headers: bearer(clientToken) })).status).toBe(401);
    expect((await workers()).map((w) => w.id)).toEqual([worker.id]);
    // The worker, too, takes tasks only with the worker credential.
    expect((await fetch(`${worker.url}/v1/tasks`, { method: 'POST', headers: bearer(clientToken), body: '{}' })).status).toBe(401);
  });

  it('the worker token cannot register an address other than its connection, nor an unbounded slot count', async () => {
    const elsewhere = await register('elsewhere', workerToken, { address: 'http://192.0.2.10:12345', slots: 2 });
    expect(elsewhere.status).toBe(403);
    expect(errorBody.parse(await elsewhere.json()).error.code).toBe('worker_address_refused');
    const greedy = await register('greedy', workerToken, { address: 'http://127.0.0.1:9', slots: 1024 });
    expect(greedy.status).toBe(400);
    expect((await workers()).map((w) => w.id)).toEqual([worker.id]);
  });

  it("client jobs still run on the real worker, and its result is the client's image inverted", async () => {
    const id = await submit(running.url, [corpus('aqua.jpg')], { pipeline }, clientToken);
    expect((await waitForJob(running.url, id, clientToken)).status).toBe('succeeded');
    const [result, source] = await Promise.all([pixelsOf(await download(running.url, id, 0, clientToken)), pixelsOf(corpus('aqua.jpg'))]);
    expect(result.width).toBe(source.width);
    // JPEG re-encoding moves samples a little; an inverted image is far from the source, near its negative.
    let nearNegative = 0;
    for (let i = 0; i < result.data.length; i++) if (Math.abs(result.data[i]! - (255 - source.data[i]!)) < 24) nearNegative += 1;
    expect(nearNegative / result.data.length).toBeGreaterThan(0.95);
    await waitUntil(workers, (list) => list.some((w) => w.id === worker.id && w.state === 'ready'), 5_000, 'the worker to stay ready');
  });
});
