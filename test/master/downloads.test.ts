import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../services/master/app.js';
import { Master } from '../../services/master/master.js';
import { loadMasterConfig } from '../../services/shared/config.js';
import { createLogger } from '../../services/shared/logger.js';
import { startWorker, type RunningWorker } from '../../services/worker/server.js';
import { download, submit, unzip, waitForJob, waitUntil } from '../helpers/api.js';

/* A local-disk result larger than the master reads whole (1 MiB): streamed with its Content-Length, and
   a client that goes away mid-download leaves the master no file open. The master and a worker run in
   this process, so /proc/self/fd is the master's. */

process.env.DIPS_LOG_LEVEL = 'warn'; // the in-process worker's own logger
let master: Master;
let server: http.Server;
let worker: RunningWorker;
let url: string;
let jobId: string;
/** The result's bytes: a PNG of noise, which does not compress (~4 MB). */
let result: Buffer;

beforeAll(async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-downloads-'));
  master = await Master.create(loadMasterConfig({ dataDir }, {}), createLogger('test', 'silent'));
  server = createApp(master).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  worker = await startWorker({ port: 0, masterUrl: url, heartbeatMs: 200, slots: 1 });
  const noise = await sharp({ create: { width: 1200, height: 1100, channels: 3, background: 'black', noise: { type: 'gaussian', mean: 128, sigma: 60 } } }).png().toBuffer();
  jobId = await submit(url, [{ name: 'noise.png', data: noise }], { pipeline: JSON.stringify([{ op: 'invert' }]), format: 'png' });
  expect((await waitForJob(url, jobId)).status).toBe('succeeded');
  result = await download(url, jobId, 0);
}, 60_000);
afterAll(async () => {
  await worker.drain();
  server.closeAllConnections();
  server.close();
  master.close();
});

/** The master's open descriptors on files of the job. */
async function openFilesOfJob(): Promise<string[]> {
  const links = await Promise.all((await fs.readdir('/proc/self/fd')).map((fd) => fs.readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return links.filter((link) => link.includes(jobId));
}

describe('downloading a result larger than 1 MiB from local disk', () => {
  it('sends every byte with the Content-Length of the file', async () => {
    expect(result.length).toBeGreaterThan(1 << 20);
    const response = await fetch(`${url}/v1/jobs/${jobId}/images/0`);
    expect(response.headers.get('content-length')).toBe(String(result.length));
    expect(Buffer.from(await response.arrayBuffer()).equals(result)).toBe(true);
    const { data, info } = await sharp(result).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, data.length]).toEqual([1200, 1100, 1200 * 1100 * 3]);
  });

  it('closes the file when the client disconnects mid-download, and keeps serving', async () => {
    // A FileHandle nobody closes is closed by the garbage collector, with this warning: the leak it must not rely on.
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.message);
    process.on('warning', onWarning);
    expect(await openFilesOfJob()).toEqual([]);
    await new Promise<void>((resolve, reject) => {
      const request = http.get(`${url}/v1/jobs/${jobId}/images/0`, (response) => {
        response.once('data', () => {
          request.destroy();
          resolve();
        });
      });
      request.on('error', (error) => (request.destroyed ? undefined : reject(error)));
    });
    await waitUntil(openFilesOfJob, (open) => open.length === 0, 30_000, 'the result file closed');
    process.off('warning', onWarning);
    expect(warnings.filter((warning) => /file descriptor/i.test(warning))).toEqual([]);
    expect((await download(url, jobId, 0)).equals(result)).toBe(true);
  });
});

describe('downloading the job as a zip archive', () => {
  it('closes the result file when the client disconnects mid-archive, and keeps serving', async () => {
    expect(await openFilesOfJob()).toEqual([]);
    await new Promise<void>((resolve, reject) => {
      const request = http.get(`${url}/v1/jobs/${jobId}/archive`, (response) => {
        expect(response.statusCode).toBe(200);
        response.once('data', () => {
          request.destroy();
          resolve();
        });
      });
      request.on('error', (error) => (request.destroyed ? undefined : reject(error)));
    });
    await waitUntil(openFilesOfJob, (open) => open.length === 0, 10_000, 'the result file closed');
    const archive = await fetch(`${url}/v1/jobs/${jobId}/archive`);
    expect(archive.status).toBe(200);
    const entries = await unzip(Buffer.from(await archive.arrayBuffer()));
    expect([...entries.keys()]).toEqual(['noise.png']);
    expect(entries.get('noise.png')!.equals(result)).toBe(true);
  });
});
