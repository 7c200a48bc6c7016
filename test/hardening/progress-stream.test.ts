import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { startWorker } from '../../services/worker/server.js';
import { corpus, submit } from '../helpers/api.js';
import { jobWithImages, type JobWithImages, parseResponse } from '../../services/protocol/api.js';
import { closeMasters, hardenedMaster } from './master.js';
import { errorBody } from '../../services/protocol/errors.js';

const pipeline = JSON.stringify([{ op: 'blur', sigma: 1 }]);
afterAll(closeMasters);

/** Reads a whole event stream (it ends with the job) into its progress events. */
async function progressEvents(url: string, id: string): Promise<JobWithImages[]> {
  const text = await (await fetch(`${url}/v1/jobs/${id}/events`)).text();
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('event: progress'))
    .map((block) => jobWithImages.parse(JSON.parse(block.split('\ndata: ')[1]!)));
}

describe('progress streams', () => {
  it('builds each view once for all subscribers, throttled, and every subscriber sees the end', async () => {
    const { url, master } = await hardenedMaster();
    const worker = await startWorker({ port: 0, masterUrl: url, heartbeatMs: 200, slots: 2 });
    try {
      const images = Array.from({ length: 6 }, (_, i) => corpus(['aqua.jpg', 'storm.jpg'][i % 2]!));
      const id = await submit(url, images, { pipeline });
      const getJob = vi.spyOn(master.store, 'getJob');
      const started = Date.now();
      const subscribers = 40;
      const streams = await Promise.all(Array.from({ length: subscribers }, () => progressEvents(url, id)));
      const elapsed = Date.now() - started;
      for (const events of streams) {
        expect(events.at(-1)).toMatchObject({ id, status: 'succeeded', progress: { done: 6, total: 6 } });
        // At most one event per 250 ms, plus the first and the last.
        expect(events.length).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 2);
      }
      // One read per subscription, then one per published change: not one per subscriber and change.
      const builds = getJob.mock.calls.filter(([jobId]) => jobId === id).length;
      expect(builds).toBeLessThanOrEqual(subscribers + Math.ceil(elapsed / 250) + 2);
    } finally {
      await worker.drain();
    }
  });

  it('caps streams per job with 503 and Retry-After', async () => {
    const { url } = await hardenedMaster({ maxStreamsPerJob: 2 });
    const id = await submit(url, [corpus('aqua.jpg')], { pipeline }); // no worker: it stays queued
    const open = [new AbortController(), new AbortController()];
    const first = await Promise.all(open.map((controller) => fetch(`${url}/v1/jobs/${id}/events`, { signal: controller.signal })));
    expect(first.map((response) => response.status)).toEqual([200, 200]);
    const refused = await fetch(`${url}/v1/jobs/${id}/events`);
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await parseResponse(errorBody, refused)).error.code).toBe('too_many_streams');
    open[0]!.abort();
    await expect.poll(async () => {
      const again = await fetch(`${url}/v1/jobs/${id}/events`, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined);
      return again?.status;
    }).toBe(200);
    open[1]!.abort();
  });

  it('drops a subscriber that does not read after the write timeout, and keeps serving the others', async () => {
    const { url, master } = await hardenedMaster({ streamWriteTimeoutMs: 500, maxFiles: 12 });
    const id = await submit(url, Array.from({ length: 12 }, () => corpus('aqua.jpg')), { pipeline });
    // A client that sends its request and never reads the answer.
    const { port } = new URL(url);
    const stalled = net.connect(Number(port), '127.0.0.1');
    stalled.on('error', () => undefined);
    stalled.write(`GET /v1/jobs/${id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    stalled.pause();
    const reader = progressEvents(url, id);
    // Each finished image adds 400 KB to the view: after a few, the stalled socket's buffers are full.
    // (The outcomes are recorded as the image runner records them; no worker is needed for that.)
    for (let index = 0; index < 12; index++) {
      master.store.finishImage(id, index, { status: 'failed', error: `x${'e'.repeat(400_000)}` });
      await sleep(260);
    }
    expect((await reader).at(-1)).toMatchObject({ status: 'failed', progress: { done: 0, failed: 12, total: 12 } });
    await sleep(1_000); // twice the write timeout
    // Reading now, the stalled client finds the stream cut: it ends without the job's final state.
    const received: Buffer[] = [];
    const ended = new Promise<void>((resolve) => stalled.once('close', () => resolve()));
    stalled.on('data', (chunk: Buffer) => received.push(chunk));
    const resumedAt = Date.now();
    stalled.resume();
    await ended;
    expect(Date.now() - resumedAt).toBeLessThan(5_000);
    const text = Buffer.concat(received).toString();
    expect(text).toMatch(/^HTTP\/1.1 200/);
    expect(text).not.toContain('"failed":12');
  });
});
