import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Response } from 'express';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { heldWritesMs, JobStore } from '../../services/master/job-store.js';
import { ProgressStreams } from '../../services/master/progress-stream.js';

/* An event stream's frames against the job's view read whole, on a real SQLite file. */

let dir: string;
let store: JobStore;
beforeEach(() => {
  vi.useFakeTimers();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dips-streams-'));
  store = new JobStore(dir);
});
afterEach(() => {
  store.close();
  vi.useRealTimers();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A subscriber that reads everything at once: the data of each progress event it was sent. */
function subscriber(): { res: Response; events: string[]; ended: () => boolean } {
  const events: string[] = [];
  let ended = false;
  const res = {
    writeHead: () => res,
    write: (text: string) => {
      const data = /^event: progress\ndata: (.*)\n\n$/s.exec(text);
      if (data) events.push(data[1]!);
      return true;
    },
    on: () => res,
    once: () => res,
    end: () => {
      ended = true;
    },
    get writableEnded() {
      return ended;
    },
  };
  return { res: res as unknown as Response, events, ended: () => ended };
}

it('sends, after each change, the view of the job as GET /v1/jobs/{id} reads it whole, until the job ends', () => {
  const streams = new ProgressStreams(store, { maxStreams: 10, maxStreamsPerJob: 10, streamWriteTimeoutMs: 1000 });
  store.createBatchJob({ id: 'job', pipeline: [], spec: { inputs: { prefix: 'file:///in' } }, specKey: 'job' });
  store.addItems('job', Array.from({ length: 5 }, (_, index) => ({ source: `file:///in/${index}.jpg`, name: `${index}.jpg` })), '4.jpg');
  store.finishListing('job');
  const client = subscriber();
  streams.subscribe('job', client.res);
  const whole = () => JSON.stringify(store.getJob('job'));
  expect(client.events).toEqual([whole()]);
  const claimed = store.claimQueuedItems(5);
  store.markImagesStarted(claimed.slice(0, 3));
  for (const [step, index] of [0, 3, 1, 4, 2].entries()) {
    store.finishLater({ jobId: 'job', index, outcome: index === 3 ? { status: 'failed', error: 'bad', errorKind: 'permanent' } : { status: 'succeeded', width: 4, height: 3, outputFormat: 'jpeg' } }, () => undefined);
    // One commit, then the stream's interval: the event built from it is the whole view of that moment.
    vi.advanceTimersByTime(heldWritesMs);
    vi.advanceTimersByTime(250);
    expect(client.events.at(-1)).toEqual(whole());
    expect(client.events).toHaveLength(step + 2);
  }
  expect(JSON.parse(client.events.at(-1)!)).toMatchObject({ status: 'partial', progress: { done: 4, failed: 1, total: 5 } });
  expect(client.ended()).toBe(true);
});
