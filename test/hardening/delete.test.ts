import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startWorker } from '../../services/worker/server.js';
import { corpus, getJob, submit, waitForJob } from '../helpers/api.js';
import { closeMasters, hardenedMaster } from './master.js';
import { jobView, parseResponse } from '../../services/protocol/api.js';

const pipeline = JSON.stringify([{ op: 'invert' }]);
afterAll(closeMasters);

const exists = (file: string) => fs.access(file).then(() => true, () => false);

describe('DELETE /v1/jobs/{id}', () => {
  it('cancels and removes the inputs; ?purge=true then removes the job and every file', async () => {
    const { url, dataDir, master } = await hardenedMaster(); // no worker: the job stays queued
    const id = await submit(url, [corpus('aqua.jpg'), corpus('storm.jpg')], { pipeline });
    const jobDir = path.join(dataDir, 'files', 'jobs', id);
    expect(await fs.readdir(path.join(jobDir, 'in'))).toEqual(['0', '1']);

    const canceled = await fetch(`${url}/v1/jobs/${id}`, { method: 'DELETE' });
    expect(canceled.status).toBe(200);
    expect((await parseResponse(jobView, canceled)).status).toBe('canceled');
    expect(await exists(path.join(jobDir, 'in'))).toBe(false);
    expect((await getJob(url, id)).status).toBe('canceled');

    const purged = await fetch(`${url}/v1/jobs/${id}?purge=true`, { method: 'DELETE' });
    expect(purged.status).toBe(204);
    expect((await fetch(`${url}/v1/jobs/${id}`)).status).toBe(404);
    expect(await exists(jobDir)).toBe(false);
    expect(master.store.imagesOf(id)).toEqual([]);
    expect((await fetch(`${url}/v1/jobs/${id}?purge=true`, { method: 'DELETE' })).status).toBe(404);
  });

  it('purges a finished job: its results are gone', async () => {
    const { url, dataDir } = await hardenedMaster();
    const worker = await startWorker({ port: 0, masterUrl: url, heartbeatMs: 200, slots: 1 });
    try {
      const id = await submit(url, [corpus('aqua.jpg')], { pipeline });
      expect((await waitForJob(url, id)).status).toBe('succeeded');
      expect((await fetch(`${url}/v1/jobs/${id}/images/0`)).status).toBe(200);
      expect((await fetch(`${url}/v1/jobs/${id}?purge=true`, { method: 'DELETE' })).status).toBe(204);
      expect((await fetch(`${url}/v1/jobs/${id}/images/0`)).status).toBe(404);
      expect(await exists(path.join(dataDir, 'files', 'jobs', id))).toBe(false);
    } finally {
      await worker.drain();
    }
  });
});
