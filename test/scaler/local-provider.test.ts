import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { WorkerSnapshot } from '../../services/scaler/capacity-provider.js';
import { LocalCapacityProvider, localWorkerSlots } from '../../services/scaler/local-provider.js';

// Real child processes and signals; a stand-in worker so the test controls which one is busy.
const fakeWorker = path.resolve(import.meta.dirname, 'fixtures/fake-worker.mjs');
const masterUrl = 'http://127.0.0.1:9';

interface JournalEntry {
  event: 'started' | 'stopped';
  id: string;
  args?: string[];
  slots?: string;
  threadPool?: string;
}

let dir: string;
let journal: string;
let provider: LocalCapacityProvider;

async function entries(): Promise<JournalEntry[]> {
  const text = await readFile(journal, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as JournalEntry);
}

/** Process start-up takes seconds on a loaded two-core machine. */
const eventually = (check: () => Promise<void>) => vi.waitFor(check, { timeout: 20_000, interval: 50 });

const ids = async (event: JournalEntry['event']) => (await entries()).filter((entry) => entry.event === event).map((entry) => entry.id);

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'dips-local-provider-'));
  journal = path.join(dir, 'journal.jsonl');
  provider = new LocalCapacityProvider({
    masterUrl,
    logger: pino({ level: 'silent' }),
    cliPath: fakeWorker,
    env: { ...process.env, FAKE_WORKER_JOURNAL: journal },
    registerGraceMs: 0,
    stopGraceMs: 5_000,
    maxWorkers: 4,
  });
});

afterEach(async () => {
  await provider.close();
  await rm(dir, { recursive: true, force: true });
});

describe('LocalCapacityProvider', () => {
  it('starts `dips worker --port 0 --master URL` processes up to the desired count', async () => {
    const report = await provider.apply(2, []);
    expect(report.actual).toBe(2);
    await eventually(async () => expect(await ids('started')).toHaveLength(2));
    for (const entry of await entries()) expect(entry.args).toEqual(['worker', '--port', '0', '--master', masterUrl]);
    // Asking again for the same count starts nothing more.
    await provider.apply(2, []);
    expect(await ids('started')).toHaveLength(2);
  });

  it('shares two task slots per core out among its most workers, unless DIPS_WORKER_SLOTS is set', async () => {
    expect([localWorkerSlots(8, 8), localWorkerSlots(1, 2), localWorkerSlots(2, 2), localWorkerSlots(3, 2), localWorkerSlots(16, 2)]).toEqual([2, 4, 2, 2, 1]);
    const withEnv = (maxWorkers: number, env: NodeJS.ProcessEnv) =>
      new LocalCapacityProvider({ masterUrl, logger: pino({ level: 'silent' }), cliPath: fakeWorker, maxWorkers, env: { PATH: process.env.PATH, FAKE_WORKER_JOURNAL: journal, ...env } });
    const sized = [withEnv(1, {}), withEnv(os.availableParallelism() * 4, {}), withEnv(1, { DIPS_WORKER_SLOTS: '3' })];
    expect(sized.map((each) => each.slots)).toEqual([2 * os.availableParallelism(), 1, 3]);
    try {
      for (const [index, each] of sized.entries()) {
        await each.apply(1, []);
        await eventually(async () => expect(await ids('started')).toHaveLength(index + 1));
      }
      expect((await entries()).map((entry) => entry.slots)).toEqual([String(2 * os.availableParallelism()), '1', '3']);
    } finally {
      await Promise.all(sized.map((each) => each.close()));
    }
  });

  it('gives each worker a libuv thread pool of twice its slots (at least 4) unless UV_THREADPOOL_SIZE is set', async () => {
    const withEnv = (env: NodeJS.ProcessEnv) =>
      new LocalCapacityProvider({ masterUrl, logger: pino({ level: 'silent' }), cliPath: fakeWorker, maxWorkers: 1, env: { PATH: process.env.PATH, FAKE_WORKER_JOURNAL: journal, ...env } });
    const sized = [withEnv({ DIPS_WORKER_SLOTS: '3' }), withEnv({ DIPS_WORKER_SLOTS: '1' }), withEnv({ DIPS_WORKER_SLOTS: '3', UV_THREADPOOL_SIZE: '17' })];
    try {
      for (const [index, each] of sized.entries()) {
        await each.apply(1, []);
        await eventually(async () => expect(await ids('started')).toHaveLength(index + 1));
      }
      expect((await entries()).map((entry) => entry.threadPool)).toEqual(['6', '4', '17']);
    } finally {
      await Promise.all(sized.map((each) => each.close()));
    }
  });

  it('stops only idle workers, with SIGTERM; a worker holding leases is stopped once it is idle', async () => {
    await provider.apply(3, []);
    await eventually(async () => expect(await ids('started')).toHaveLength(3));
    const [busy, idle, lightlyBusy] = await ids('started');
    const registered: WorkerSnapshot[] = [
      { id: busy, address: 'http://127.0.0.1:1', inflight: 2 },
      { id: idle, address: 'http://127.0.0.1:1', inflight: 0 },
      { id: lightlyBusy, address: 'http://127.0.0.1:1', inflight: 1 },
    ];
    // Nothing is silent once the provider has read each worker's id from its announcement line.
    await eventually(async () => expect((await provider.apply(3, registered)).silent).toEqual([]));

    const report = await provider.apply(1, registered);
    expect(report.actual).toBe(2);
    await eventually(async () => expect(await ids('stopped')).toEqual([idle]));

    // The lightly busy worker finishes its unit: the next tick stops it; the busy one keeps running.
    const later = await provider.apply(1, [registered[0]!, { ...registered[2]!, inflight: 0 }]);
    expect(later.actual).toBe(1);
    await eventually(async () => expect((await ids('stopped')).sort()).toEqual([idle, lightlyBusy].sort()));
  });

  it('replaces a worker that died, and reports one that never registers', async () => {
    await provider.apply(1, []);
    await eventually(async () => expect(await ids('started')).toHaveLength(1));
    const [first] = await ids('started');
    process.kill(Number(first.replace('fake-', '')), 'SIGKILL');
    await eventually(async () => {
      const report = await provider.apply(1, []);
      expect(await ids('started')).toHaveLength(2);
      expect(report.actual).toBe(1);
    });
    const report = await provider.apply(1, []);
    expect(report.silent[0]).toMatch(/has not registered with http:\/\/127\.0\.0\.1:9/);
  });

  it('drains every worker on close', async () => {
    await provider.apply(2, []);
    await eventually(async () => expect(await ids('started')).toHaveLength(2));
    await provider.close();
    expect((await ids('stopped')).sort()).toEqual((await ids('started')).sort());
    expect((await provider.apply(2, [])).actual).toBe(0); // closed: starts nothing more
  });
});
