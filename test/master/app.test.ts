import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadsAnswer, jobWithImages, parseResponse } from '../../services/protocol/api.js';
import { loadMasterConfig, type MasterOptions } from '../../services/shared/config.js';
import { createLogger } from '../../services/shared/logger.js';
import { createApp } from '../../services/master/app.js';
import { Master, type Scaler } from '../../services/master/master.js';
import { startWorker, type RunningWorker } from '../../services/worker/server.js';
import { filesId } from '../../services/shared/files-id.js';
import { corpus, download, getJob, postJob, submit, unzip, waitForJob, waitUntil } from '../helpers/api.js';
import { errorBody } from '../../services/protocol/errors.js';
import { clusterAnswer } from '../../services/protocol/newcomer.js';

const pipeline = JSON.stringify([{ op: 'blur', sigma: 1 }, { op: 'invert' }]);
const logger = createLogger('test', 'silent');
process.env.DIPS_LOG_LEVEL = 'warn'; // the in-process worker's own logger
const toClose: Array<() => Promise<void> | void> = [];

/** A master (its express app on a free port) with a data dir of its own. */
async function startMaster(options: MasterOptions = {}, scaler?: Scaler) {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-master-'));
  const config = loadMasterConfig({ dataDir, heartbeatTimeoutMs: 2000, ...options }, {});
  const master = await Master.create(config, logger, scaler ? { scaler } : {});
  const server: Server = createApp(master).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    master.close();
    server.closeAllConnections();
    server.close();
  };
  toClose.push(close);
  return { master, url, dataDir, close };
}

let busy: Awaited<ReturnType<typeof startMaster>>;
let worker: RunningWorker;
beforeAll(async () => {
  busy = await startMaster();
  worker = await startWorker({ port: 0, masterUrl: busy.url, heartbeatMs: 200, slots: 2 });
  toClose.unshift(() => worker.drain());
});
afterAll(async () => {
  for (const close of toClose) await close();
});

describe('job progress and results', () => {
  it('streams progress as Server-Sent Events until the job finishes', async () => {
    const id = await submit(busy.url, [corpus('aqua.jpg'), corpus('storm.jpg')], { pipeline });
    const response = await fetch(`${busy.url}/v1/jobs/${id}/events`);
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    const text = await response.text(); // the stream ends when the job does
    const events = text
      .split('\n\n')
      .filter((block) => block.startsWith('event: progress'))
      .map((block) => jobWithImages.parse(JSON.parse(block.split('\ndata: ')[1]!)));
    expect(events.at(-1)).toMatchObject({ id, status: 'succeeded', progress: { done: 2, total: 2 } });
    const done = events.map((event) => event.progress.done);
    expect(done).toEqual([...done].sort());
  });

  it('serves each result with its content type, and all of them as a zip', async () => {
    const id = await submit(busy.url, [corpus('aqua.jpg'), corpus('garden-odd.png')], { pipeline });
    const job = await waitForJob(busy.url, id);
    expect(job.images.map((image) => [image.status, image.width, image.height])).toEqual([
      ['succeeded', 1400, 875],
      ['succeeded', 1001, 667],
    ]);
    const png = await fetch(`${busy.url}/v1/jobs/${id}/images/1`);
    expect(png.headers.get('content-type')).toBe('image/png');
    const zip = Buffer.from(await (await fetch(`${busy.url}/v1/jobs/${id}/archive`)).arrayBuffer());
    const entries = await unzip(zip);
    expect([...entries.keys()].sort()).toEqual(['aqua.jpg', 'garden-odd.png']);
    expect(entries.get('aqua.jpg')!.equals(await download(busy.url, id, 0))).toBe(true);
    expect(entries.get('garden-odd.png')!.equals(await download(busy.url, id, 1))).toBe(true);
  });

  it('answers 404 for unknown jobs and images', async () => {
    expect((await fetch(`${busy.url}/v1/jobs/nope`)).status).toBe(404);
    const id = await submit(busy.url, [corpus('aqua.jpg')], { pipeline });
    await waitForJob(busy.url, id);
    const missing = await fetch(`${busy.url}/v1/jobs/${id}/images/7`);
    expect(missing.status).toBe(404);
    expect((await parseResponse(errorBody, missing)).error.message).toMatch(/no image 7/);
  });

  it("answers many results' download URLs in one request, and names what is wrong in a bad one", async () => {
    const id = await submit(busy.url, [corpus('aqua.jpg'), corpus('garden-odd.png')], { pipeline });
    await waitForJob(busy.url, id);
    const ask = (jobId: string, body: unknown) => fetch(`${busy.url}/v1/jobs/${jobId}/downloads`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const answer = await ask(id, { indexes: [1, 0] });
    expect(answer.status).toBe(200);
    // Local disk: the master serves the bytes itself, at the route every client already uses.
    expect(downloadsAnswer.parse(await answer.json()).downloads).toEqual([
      { index: 1, name: 'garden-odd.png', contentType: 'image/png', url: `/v1/jobs/${id}/images/1` },
      { index: 0, name: 'aqua.jpg', contentType: 'image/jpeg', url: `/v1/jobs/${id}/images/0` },
    ]);
    const errorOf = async (response: Response) => [response.status, (await parseResponse(errorBody, response)).error] as const;
    const [emptyStatus, empty] = await errorOf(await ask(id, { indexes: [] }));
    expect([emptyStatus, empty.code]).toEqual([400, 'bad_downloads']);
    expect(empty.message).toMatch(/indexes/);
    expect((await errorOf(await ask(id, { indexes: [0, 2.5] })))[0]).toBe(400);
    const [missingStatus, missing] = await errorOf(await ask(id, { indexes: [0, 7] }));
    expect([missingStatus, missing.code, missing.message]).toEqual([404, 'image_not_found', `job ${id} has no image 7`]);
    expect((await errorOf(await ask('nope', { indexes: [0] })))[1].code).toBe('job_not_found');
  });

  it('shows the worker in /v1/cluster and counts work in /metrics', async () => {
    const cluster = await parseResponse(clusterAnswer, await fetch(`${busy.url}/v1/cluster`));
    expect(cluster.workers).toEqual([expect.objectContaining({ id: worker.id, address: worker.url, state: 'ready', inflight: 0 })]);
    expect(cluster.desiredCapacity).toBe(1);
    const metrics = await (await fetch(`${busy.url}/metrics`)).text();
    expect(metrics).toMatch(/dips_units_completed_total\{kind="whole"\} [1-9]/);
    expect(metrics).toMatch(/dips_job_duration_seconds_count [1-9]/);
  });
});

describe('the web console', () => {
  it('is served at / from web/', async () => {
    const response = await fetch(`${busy.url}/`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe(await fs.readFile(path.resolve(import.meta.dirname, '../../web/index.html'), 'utf8'));
  });
});

const pixelsOfWork = (work: ReadonlyArray<{ pixels: number }>) => work.reduce((sum, item) => sum + item.pixels, 0);

describe('a master without workers', () => {
  it('keeps jobs queued, cancels them on DELETE, and reports the backlog to a scaler', async () => {
    const seen: number[] = [];
    const scaler: Scaler = {
      desiredCapacity: (backlog) => {
        seen.push(pixelsOfWork(backlog.work));
        return 7;
      },
    };
    const { master, url } = await startMaster({}, scaler);
    const id = await submit(url, [corpus('aqua.jpg'), corpus('storm.jpg')], { pipeline });
    expect((await getJob(url, id)).status).toBe('queued');
    const backlog = master.backlog();
    expect(pixelsOfWork(backlog.work)).toBe(1400 * 875 + 1400 * 933);
    expect(backlog.inflightUnits).toBe(0);
    const cluster = await parseResponse(clusterAnswer, await fetch(`${url}/v1/cluster`));
    expect(cluster).toMatchObject({ queueDepth: 2, desiredCapacity: 7 });
    expect(seen).toEqual([1400 * 875 + 1400 * 933]);

    const canceled = await fetch(`${url}/v1/jobs/${id}`, { method: 'DELETE' });
    expect(canceled.status).toBe(200);
    const job = await getJob(url, id);
    expect(job.status).toBe('canceled');
    expect(job.images.map((image) => image.status)).toEqual(['canceled', 'canceled']);
    expect((await fetch(`${url}/v1/jobs/${id}/images/0`)).status).toBe(409);
    const notReady = await fetch(`${url}/v1/jobs/${id}/downloads`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ indexes: [1] }) });
    expect(notReady.status).toBe(409);
    expect((await parseResponse(errorBody, notReady)).error.message).toBe(`image 1 of job ${id} is canceled`);
    expect(master.backlog()).toMatchObject({ queuedUnits: 0, waitingImages: 0 });
  });

  it('refuses a bad query of /v1/jobs, /items and DELETE naming what is wrong, touching nothing, and pages a good one', async () => {
    const { url } = await startMaster();
    const id = await submit(url, [corpus('aqua.jpg'), corpus('storm.jpg')], { pipeline });
    for (const route of ['/v1/jobs', `/v1/jobs/${id}/items`]) {
      const refusals: Array<[string, string, RegExp]> = [
        ['statsu=queued', 'bad_query', /^✖ Unrecognized key: "statsu" \(did you mean "status"\?\)$/],
        ['limit=0', 'bad_query', /limit/],
        ['limit=many', 'bad_query', /limit/],
        ['cursor=zzz', 'bad_cursor', /^cursor "zzz" is not one this master gave out$/],
      ];
      for (const [query, code, message] of refusals) {
        const response = await fetch(`${url}${route}?${query}`);
        expect(response.status, `${route}?${query}`).toBe(400);
        const { error } = await parseResponse(errorBody, response);
        expect(error.code, `${route}?${query}`).toBe(code);
        expect(error.message, `${route}?${query}`).toMatch(message);
      }
    }
    // DELETE reads its query first: a misspelt or unreadable purge is refused, and the job is left as it was.
    for (const [query, message] of [['prge=true', /Unrecognized key: "prge" \(did you mean "purge"\?\)/], ['purge=yes', /purge is "true" or "false"/]] as const) {
      const response = await fetch(`${url}/v1/jobs/${id}?${query}`, { method: 'DELETE' });
      expect(response.status, query).toBe(400);
      expect((await parseResponse(errorBody, response)).error.message, query).toMatch(message);
    }
    expect((await getJob(url, id)).status).toBe('queued');
    // The contract's own template, every parameter empty: the first page of everything.
    const listed = (await (await fetch(`${url}/v1/jobs?status=&limit=&cursor=`)).json()) as { jobs: Array<{ id: string }> };
    expect(listed.jobs.map((job) => job.id)).toEqual([id]);
    const firstPage = (await (await fetch(`${url}/v1/jobs/${id}/items?status=queued&limit=1`)).json()) as { items: unknown[]; next?: string };
    expect(firstPage.items).toHaveLength(1);
    const secondPage = (await (await fetch(`${url}/v1/jobs/${id}/items?status=queued&limit=1&cursor=${encodeURIComponent(firstPage.next!)}`)).json()) as { items: unknown[] };
    expect(secondPage.items).toHaveLength(1);
  });

  it('answers 429 with Retry-After once the queue is full', async () => {
    const { url } = await startMaster({ maxQueuedImages: 2 });
    expect((await postJob(url, [corpus('aqua.jpg'), corpus('storm.jpg')], { pipeline })).status).toBe(202);
    const refused = await postJob(url, [corpus('aqua.jpg')], { pipeline });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await parseResponse(errorBody, refused)).error.code).toBe('saturated');
  });

  it('rejects uploads over the size and count limits with 413', async () => {
    const { url } = await startMaster({ maxUploadBytes: 100_000, maxFiles: 2 });
    const big = await postJob(url, [corpus('dune.jpg')], { pipeline });
    expect(big.status).toBe(413);
    expect((await parseResponse(errorBody, big)).error.message).toMatch(/dune\.jpg.*100000 bytes/);
    const many = await postJob(url, [corpus('aqua.jpg'), corpus('aqua.jpg'), corpus('aqua.jpg')], { pipeline });
    expect(many.status).toBe(413);
    const tooLong = await postJob(url, [corpus('aqua.jpg')], { pipeline: JSON.stringify(Array.from({ length: 40 }, () => ({ op: 'invert' }))) });
    expect(tooLong.status).toBe(413);
  });
});

describe('failures and retention', () => {
  it('fails an image with the reason after the attempt limit when its worker keeps erroring', async () => {
    const { url } = await startMaster({ maxAttempts: 3, retryBaseMs: 10 });
    let calls = 0;
    const broken = express().post('/v1/tasks', (_req, res) => {
      calls += 1;
      res.status(500).json({ error: { code: 'internal', message: 'disk on fire' } });
    });
    const brokenServer = broken.listen(0, '127.0.0.1');
    await new Promise((resolve) => brokenServer.once('listening', resolve));
    toClose.push(() => void brokenServer.close());
    const address = `http://127.0.0.1:${(brokenServer.address() as AddressInfo).port}`;
    const beat = () => fetch(`${url}/v1/workers/broken`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ address, slots: 1 }) });
    expect((await beat()).status).toBe(200);
    const heartbeats = setInterval(() => void beat(), 300);
    try {
      const id = await submit(url, [corpus('aqua.jpg')], { pipeline });
      const job = await waitForJob(url, id);
      expect(job.status).toBe('failed');
      expect(job.images[0]!.error).toMatch(/failed after 3 attempts.*disk on fire/);
      expect(calls).toBe(3);
    } finally {
      clearInterval(heartbeats);
    }
  });

  it('deletes finished jobs and their files after the retention period', async () => {
    const { master, url, dataDir } = await startMaster({ retentionSeconds: 1 });
    // The worker heartbeats to another master; registered here by hand, as on this machine (it reads and writes the files directly).
    master.registry.heartbeat(worker.id, { address: worker.url, slots: 2, filesId: filesId() });
    const id = await submit(url, [corpus('aqua.jpg')], { pipeline });
    expect((await waitForJob(url, id)).status).toBe('succeeded');
    const jobDir = path.join(dataDir, 'files', 'jobs', id);
    await expect(fs.readdir(jobDir)).resolves.toEqual(expect.arrayContaining(['in', 'out']));
    await waitUntil(async () => (await master.deleteExpiredJobs(), (await fetch(`${url}/v1/jobs/${id}`)).status), (status) => status === 404, 10_000, 'the job to expire');
    await expect(fs.access(jobDir)).rejects.toThrow();
  });

  it('after a crash between storing a job\'s inputs and committing it, a restarted master deletes those files on its second sweep, and only those', async () => {
    const first = await startMaster();
    first.master.registry.heartbeat(worker.id, { address: worker.url, slots: 2, filesId: filesId() });
    const id = await submit(first.url, [corpus('aqua.jpg')], { pipeline });
    expect((await waitForJob(first.url, id)).status).toBe('succeeded');
    const result = await download(first.url, id, 0);
    first.close();
    // What the crash left: an upload stored under a job id no row was committed for.
    const orphan = path.join(first.dataDir, 'files', 'jobs', randomUUID());
    await fs.mkdir(path.join(orphan, 'in'), { recursive: true });
    await fs.copyFile(corpus('aqua.jpg'), path.join(orphan, 'in', '0'));

    const restarted = await startMaster({ dataDir: first.dataDir });
    const sweeper = restarted.master.orphanedFiles;
    expect(sweeper, 'a master on local disk sweeps its data directory').toBeDefined();
    await sweeper!.sweep();
    await sweeper!.sweep();
    await expect(fs.access(orphan)).rejects.toThrow();
    expect(await download(restarted.url, id, 0)).toEqual(result);
  });
});
