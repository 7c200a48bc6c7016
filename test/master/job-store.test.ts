import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { heldWritesMs, JobStore, type FinishedImage, type JobView } from '../../services/master/job-store.js';

/* The store's batched writes and patched views against its own full reads, on a real SQLite file. */

let dir: string;
let store: JobStore;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dips-store-'));
  store = new JobStore(dir);
});
afterEach(() => {
  vi.useRealTimers();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function batchJob(id: string, items: number): void {
  store.createBatchJob({ id, pipeline: [], spec: { inputs: { prefix: 'file:///in' } }, specKey: id });
  store.addItems(id, Array.from({ length: items }, (_, index) => ({ source: `file:///in/${index}.jpg`, name: `${index}.jpg` })), 'last');
  store.finishListing(id);
}

describe('job store', () => {
  it('keeps what the planner reads from an upload\'s header: progressive, turned, plain (also after a reopen)', () => {
    store.createJob({
      id: 'u',
      pipeline: [],
      images: [
        { name: 'camera.jpg', width: 10, height: 10, channels: 3, format: 'jpeg', progressive: true, turned: false, plain: false },
        { name: 'mosaic.jpg', width: 10, height: 10, channels: 3, format: 'jpeg', progressive: false, turned: false, plain: true },
        { name: 'phone.jpg', width: 10, height: 10, channels: 3, format: 'jpeg', progressive: false, turned: true, plain: false },
      ],
    });
    store.close();
    store = new JobStore(dir);
    const claimed = store.claimQueuedImages(3);
    expect(claimed.map(({ name, inputProgressive, inputTurned, inputPlain }) => ({ name, inputProgressive, inputTurned, inputPlain }))).toEqual([
      { name: 'camera.jpg', inputProgressive: true, inputTurned: false, inputPlain: false },
      { name: 'mosaic.jpg', inputProgressive: false, inputTurned: false, inputPlain: true },
      { name: 'phone.jpg', inputProgressive: false, inputTurned: true, inputPlain: false },
    ]);
  });

  it('writes a turn of outcomes in one go: each its own row, the job finished once, one event per job with the rows changed', () => {
    batchJob('a', 3);
    batchJob('b', 1);
    const claimed = store.claimQueuedItems(10);
    expect(claimed).toHaveLength(4);
    store.commitHeld();
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
      store.commitHeld();
      // Patched from the changed rows alone: the job's whole list of images is not read again.
      const wholeRead = vi.spyOn(store, 'imagesOf');
      const patched = store.getJob('job', { view, changed })!;
      expect(wholeRead).not.toHaveBeenCalled();
      wholeRead.mockRestore();
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

  it('claims from the jobs it holds in memory: fewest running first, then oldest; cancel, stop, retry and a restart keep that set true', () => {
    batchJob('big', 6);
    batchJob('small', 2);
    const claim = (limit: number) => store.claimQueuedItems(limit).map(({ jobId, index }) => `${jobId}/${index}`);
    expect(claim(2)).toEqual(['big/0', 'big/1']);
    expect(claim(2)).toEqual(['small/0', 'small/1']);
    // Both have two running: the older goes first, and takes the rest of the limit from the next one.
    expect(claim(1)).toEqual(['big/2']);
    // Claims are held (skipped by the claims above, not yet in the table) until the next commit.
    expect(store.jobSummary('big')!.status).toBe('queued');
    store.commitHeld();
    expect(store.jobSummary('big')!.status).toBe('running');
    store.finishImages([
      { jobId: 'small', index: 0, outcome: { status: 'failed', error: 'bad', errorKind: 'permanent' } },
      { jobId: 'small', index: 1, outcome: { status: 'succeeded' } },
    ]);
    expect(store.jobSummary('small')!.status).toBe('partial');
    store.stopJob('big', 'stopped: too many failures');
    expect(claim(10)).toEqual([]);
    expect(store.retryFailed('small')).toBe(1);
    expect(claim(10)).toEqual(['small/0']);
    batchJob('late', 2);
    expect(store.cancelJob('late')).toBe(true);
    expect(claim(10)).toEqual([]);
    // A master that dies with items running: the next one (a new store on the same file) re-queues and claims them.
    batchJob('after', 3);
    expect(claim(1)).toEqual(['after/0']);
    store.close();
    store = new JobStore(dir);
    expect(store.requeueInterruptedImages()).toBe(5); // big/0-2 (stopped jobs finish their running items), small/0, after/0
    // Nothing runs after a restart: oldest job first.
    expect(claim(10)).toEqual(['big/0', 'big/1', 'big/2', 'small/0', 'after/0', 'after/1', 'after/2']);
  });

  it('claims each queued item once, lowest index first: pages listed meanwhile, failed items retried among the rest', () => {
    store.createBatchJob({ id: 'job', pipeline: [], spec: { inputs: { prefix: 'file:///in' } }, specKey: 'job' });
    const page = (from: number, to: number) => Array.from({ length: to - from }, (_, offset) => ({ source: `file:///in/${from + offset}.jpg`, name: `${from + offset}.jpg` }));
    const claim = (limit: number) => store.claimQueuedItems(limit).map(({ index, name }) => `${index}:${name}`);
    store.addItems('job', page(0, 4), '3.jpg');
    expect(claim(3)).toEqual(['0:0.jpg', '1:1.jpg', '2:2.jpg']);
    store.addItems('job', page(4, 7), '6.jpg');
    store.finishListing('job');
    expect(claim(2)).toEqual(['3:3.jpg', '4:4.jpg']);
    const failed = { status: 'failed', error: 'bad', errorKind: 'transient' } as const;
    store.finishImages([0, 2, 3].map((index) => ({ jobId: 'job', index, outcome: failed })));
    expect(store.retryFailed('job')).toBe(3);
    // 5 and 6 were never claimed; 0, 2 and 3 are queued again, before them.
    expect(claim(10)).toEqual(['0:0.jpg', '2:2.jpg', '3:3.jpg', '5:5.jpg', '6:6.jpg']);
    expect(claim(10)).toEqual([]);
    store.commitHeld();
    expect(store.imagesOf('job').map((row) => row.status)).toEqual(['running', 'running', 'running', 'running', 'running', 'running', 'running']);
  });

  it("keeps a listed input's version with its item until the item is retried, and writes output records (and drops an upload's checkpoint) with the outcomes", () => {
    store.createBatchJob({ id: 'job', pipeline: [{ op: 'blur', sigma: 2 }], format: 'webp', spec: { inputs: { prefix: 's3://in/' } }, specKey: 'job' });
    store.addItems('job', [
      { source: 's3://in/a.jpg', name: 'a.jpg', version: { fingerprint: '"etag-a"', size: 1234 } },
      { source: 's3://in/b.jpg', name: 'b.jpg' },
    ], 'b.jpg');
    store.finishListing('job');
    expect(store.batchJobSpec('job')).toMatchObject({ pipeline: [{ op: 'blur', sigma: 2 }], format: 'webp', spec: { inputs: { prefix: 's3://in/' } } });
    expect(store.claimQueuedItems(2)).toEqual([
      { jobId: 'job', index: 0, name: 'a.jpg', source: 's3://in/a.jpg', version: { fingerprint: '"etag-a"', size: 1234 } },
      { jobId: 'job', index: 1, name: 'b.jpg', source: 's3://in/b.jpg' },
    ]);
    store.finishImages([
      { jobId: 'job', index: 0, outcome: { status: 'failed', error: 'changed', errorKind: 'permanent' } },
      {
        jobId: 'job',
        index: 1,
        outcome: { status: 'succeeded', outputs: ['s3://out/b.webp'], recorded: [{ uri: 's3://out/b.webp', contentKey: 'key-b', fingerprint: '"etag-out"' }], qr: ['hello'] },
      },
    ]);
    expect(store.outputRecord('s3://out/b.webp')).toEqual({ uri: 's3://out/b.webp', contentKey: 'key-b', fingerprint: '"etag-out"' });
    expect(store.itemsPage('job', { limit: 10 }).items[1]).toMatchObject({ status: 'succeeded', output: 's3://out/b.webp', qr: ['hello'] });
    store.retryFailed('job');
    expect(store.claimQueuedItems(2)).toEqual([{ jobId: 'job', index: 0, name: 'a.jpg', source: 's3://in/a.jpg' }]);
    store.deleteJob('job');
    expect(store.batchJobSpec('job')).toBeUndefined();
    // An uploaded image's tiling checkpoint goes with its outcome.
    store.createJob({ id: 'upload', pipeline: [], images: [{ name: 'big.png', width: 9000, height: 9000, channels: 3, format: 'png' }] });
    expect(store.claimQueuedImages(1)).toHaveLength(1);
    store.saveCheckpoint('upload', 0, '{"strips":[]}');
    store.finishImages([{ jobId: 'upload', index: 0, outcome: { status: 'succeeded', width: 9000, height: 9000, outputFormat: 'png' } }]);
    expect(store.loadCheckpoint('upload', 0)).toBeUndefined();
    expect(store.jobSummary('upload')!.status).toBe('succeeded');
  });

  it('holds claims, started marks and outcomes for one commit at most heldWritesMs later; a cancel, a failed transaction and a full window commit sooner', () => {
    vi.useFakeTimers();
    batchJob('job', 3);
    const events: Array<[string, readonly number[] | undefined]> = [];
    store.on('job', (jobId, images) => events.push([jobId, images]));
    const recorded: FinishedImage[] = [];
    expect(store.claimQueuedItems(2).map((item) => item.index)).toEqual([0, 1]);
    store.markImagesStarted([{ jobId: 'job', index: 0 }]);
    store.finishLater({ jobId: 'job', index: 0, outcome: { status: 'succeeded', width: 4, height: 3, outputFormat: 'jpeg' } }, (result) => recorded.push(result));
    const rows = () => store.imagesOf('job').map((row) => row.status);
    vi.advanceTimersByTime(heldWritesMs - 1);
    expect([rows(), events, recorded]).toEqual([['queued', 'queued', 'queued'], [], []]);
    vi.advanceTimersByTime(1);
    expect(rows()).toEqual(['succeeded', 'running', 'queued']);
    // Item 0 was claimed, started and finished within the window: one row write keeps its start time too.
    expect([store.image('job', 0)!.started_at, store.image('job', 1)!.started_at]).toEqual([expect.any(Number), null]);
    expect(events).toEqual([['job', [0, 1]]]);
    expect(recorded).toEqual([{ status: 'running', finished: false, ageMs: expect.any(Number) }]);
    expect(store.getJob('job')!.images!.map((image) => image.status)).toEqual(['succeeded', 'queued', 'queued']);

    // A transaction that fails writes none of what it held: the next commit does.
    store.markImagesStarted([{ jobId: 'job', index: 1 }]);
    expect(() => store.addItems('no such job', [{ source: 'file:///in/x.jpg', name: 'x.jpg' }], 'x.jpg')).toThrow();
    expect(store.image('job', 1)!.started_at).toBeNull();
    // A cancel first commits what is held: an item that finished before it stays succeeded.
    store.finishLater({ jobId: 'job', index: 1, outcome: { status: 'succeeded', width: 1, height: 1, outputFormat: 'png' } }, (result) => recorded.push(result));
    expect(store.cancelJob('job')).toBe(true);
    expect(rows()).toEqual(['succeeded', 'succeeded', 'canceled']);
    expect(store.image('job', 1)!.started_at).not.toBeNull();
    expect(recorded.at(-1)!.status).toBe('running'); // recorded before the cancel, in the same commit

    // Claims of a full window are committed at once, without waiting for the timer.
    batchJob('large', 300);
    expect(store.claimQueuedItems(300)).toHaveLength(300);
    expect(store.imagesOf('large').filter((row) => row.status === 'running')).toHaveLength(300);
  });
});
