import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobStore, type JobView } from '../../services/master/job-store.js';

/* The store's batched writes and patched views against its own full reads, on a real SQLite file. */

let dir: string;
let store: JobStore;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dips-store-'));
  store = new JobStore(dir);
});
afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function batchJob(id: string, items: number): void {
  store.createBatchJob({ id, pipeline: [], spec: { inputs: { prefix: 'file:///in' } }, specKey: id });
  store.addItems(id, Array.from({ length: items }, (_, index) => ({ source: `file:///in/${index}.jpg`, name: `${index}.jpg` })), 'last');
  store.finishListing(id);
}

describe('job store', () => {
  it('writes a turn of outcomes in one go: each its own row, the job finished once, one event per job with the rows changed', () => {
    batchJob('a', 3);
    batchJob('b', 1);
    const claimed = store.claimQueuedItems(10);
    expect(claimed).toHaveLength(4);
    const events: Array<[string, readonly number[] | undefined]> = [];
    store.on('job', (jobId, images) => events.push([jobId, images]));
    const results = store.finishImages([
      { jobId: 'a', index: 0, outcome: { status: 'succeeded', width: 4, height: 3, outputFormat: 'jpeg' } },
      { jobId: 'b', index: 0, outcome: { status: 'failed', error: 'not an image', errorKind: 'permanent' } },
      { jobId: 'a', index: 2, outcome: { status: 'succeeded', width: 5, height: 6, outputFormat: 'png' } },
      { jobId: 'a', index: 1, outcome: { status: 'failed', error: 'truncated', errorKind: 'permanent' } },
    ]);
    expect(results.map(({ status, finished }) => [status, finished])).toEqual([
      ['partial', false],
      ['failed', true],
      ['partial', false],
      ['partial', true],
    ]);
    expect(events).toEqual([
      ['a', [0, 2, 1]],
      ['b', [0]],
    ]);
    expect(store.getJob('a')!.images!.map(({ status, width }) => [status, width])).toEqual([
      ['succeeded', 4],
      ['failed', undefined],
      ['succeeded', 5],
    ]);
    expect(store.getJob('b')!.status).toBe('failed');
  });

  it('a view patched from the rows named by events equals the view read whole', () => {
    batchJob('job', 5);
    let view = store.getJob('job')!;
    let changed = new Set<number>();
    store.on('job', (_jobId, images) => {
      expect(images).toBeDefined();
      for (const index of images!) changed.add(index);
    });
    const step = (change: () => void): JobView => {
      change();
      const patched = store.getJob('job', { view, changed })!;
      expect(patched).toEqual(store.getJob('job'));
      changed = new Set();
      return (view = patched);
    };
    const claimed = step(() => store.claimQueuedItems(3)).images!;
    expect(claimed.map((image) => image.status)).toEqual(['queued', 'queued', 'queued', 'queued', 'queued']);
    expect(step(() => store.markImagesStarted([{ jobId: 'job', index: 1 }])).images![1]!.status).toBe('running');
    step(() => store.finishImages([{ jobId: 'job', index: 1, outcome: { status: 'succeeded', width: 2, height: 2, outputFormat: 'webp' } }]));
    const last = step(() => store.finishImages([{ jobId: 'job', index: 0, outcome: { status: 'failed', error: 'bad', errorKind: 'permanent' } }]));
    expect(last.images!.map((image) => image.status)).toEqual(['failed', 'succeeded', 'queued', 'queued', 'queued']);
    expect(last.status).toBe('running');
  });
});
