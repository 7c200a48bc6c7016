import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/api.js';
import { exited, killAll, startCluster, startDips } from '../helpers/processes.js';
import { allItems, getBatchJob, submitBatch, tempDir, waitForBatch, writeImages } from './support.js';

afterAll(killAll);

describe('kill -9 of the master mid-batch', () => {
  it('the restarted master finishes the job without redoing any item that had finished', async () => {
    const tmp = await tempDir('batch-restart');
    const sources = path.join(tmp, 'in');
    const destinations = path.join(tmp, 'out');
    await writeImages(sources, 600);
    const env = { DIPS_SOURCES: `file://${sources}`, DIPS_DESTINATIONS: `file://${destinations}` };
    const dataDir = path.join(tmp, 'data');
    const { master } = await startCluster({ workers: 1, dataDir, env });
    const { id } = await submitBatch(master.url, {
      pipeline: [{ op: 'blur', sigma: 3 }, { op: 'median', size: 5 }],
      inputs: { prefix: `file://${sources}` },
      output: { prefix: `file://${destinations}`, format: 'png' },
    });
    await waitUntil(() => getBatchJob(master.url, id), (job) => job.progress.done >= 60, 60_000, '60 items done');
    const finishedBefore = (await allItems(master.url, id, '&status=succeeded')).items;
    const identities = new Map<string, number>();
    for (const item of finishedBefore) identities.set(item.name, (await fs.stat(path.join(destinations, item.name))).mtimeMs);
    master.child.kill('SIGKILL');
    await exited(master.child);
    expect((await getBatchJob(master.url, id).catch(() => undefined)) ?? 'gone').toBe('gone');

    // Same port: the worker keeps heartbeating to it and registers with the new master.
    const restarted = await startDips(['master', '--port', new URL(master.url).port, '--data-dir', dataDir], env);
    const job = await waitForBatch(restarted.url, id);
    expect(job).toMatchObject({ status: 'succeeded', progress: { done: 600, failed: 0, total: 600 } });
    expect(finishedBefore.length).toBeGreaterThanOrEqual(60);
    expect(finishedBefore.length).toBeLessThan(600);
    for (const [name, mtimeMs] of identities) {
      expect((await fs.stat(path.join(destinations, name))).mtimeMs, `${name} was written again`).toBe(mtimeMs);
    }
    expect((await fs.readdir(destinations, { recursive: true })).filter((name) => name.endsWith('.png'))).toHaveLength(600);
  });
});
