import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Blobs } from '../../services/master/blobs.js';
import { Dispatcher, PermanentTaskError, retryDelay, type WorkUnit } from '../../services/master/dispatcher.js';
import { createMetrics } from '../../services/master/metrics.js';
import { WorkerRegistry } from '../../services/master/worker-registry.js';
import { createLogger } from '../../services/shared/logger.js';
import { taskBatch, type TaskBatch, type TaskResult } from '../../services/protocol/tasks.js';

/* The dispatcher against workers faked at the fetch boundary, on fake timers: batching, lease renewal by
   heartbeats, backoff, and when a failure is final. */

interface Call {
  worker: string;
  batch: TaskBatch;
  /** Answers a task of this batch (one NDJSON line); end() closes the response. */
  answer(result: TaskResult): void;
  end(): void;
}

let calls: Call[];
let registry: WorkerRegistry;
let dispatcher: Dispatcher;
const leaseMs = 1_000;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  calls = [];
  vi.stubGlobal('fetch', async (url: string, init: RequestInit) => {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    calls.push({
      worker: new URL(url).port,
      batch: taskBatch.parse(JSON.parse(String(init.body))),
      answer: (result) => controller.enqueue(new TextEncoder().encode(`${JSON.stringify(result)}\n`)),
      end: () => controller.close(),
    });
    return new Response(body, { status: 200 });
  });
  registry = new WorkerRegistry(60_000, 'master-files');
  dispatcher = new Dispatcher(registry, new Blobs(), { leaseMs, lateResultGraceMs: 1_000, maxAttempts: 5, retryBaseMs: 100, random: () => 0.5 }, createMetrics(), createLogger('test', 'silent'));
});
afterEach(() => {
  dispatcher.close();
  registry.close();
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

const beat = (port: number, leases: string[] = []) => registry.heartbeat(`w${port}`, { address: `http://127.0.0.1:${port}`, slots: 2, leases });
const unit = (id: string): WorkUnit => ({
  id,
  jobId: 'job',
  imageIndex: 0,
  kind: 'whole',
  pixels: 100,
  prepare: async () => ({ input: { via: 'file', path: `/in/${id}` }, output: { via: 'file', path: `/out/${id}` }, spec: { kind: 'whole', name: id, pipeline: [] } }),
});
const done = (lease: string): TaskResult => ({ ok: true, lease, processingMs: 5, bytesIn: 10, bytesOut: 20, image: { width: 1, height: 1, format: 'png' } });
const failed = (lease: string, status: number, message: string): TaskResult => ({ ok: false, lease, processingMs: 5, error: { status, code: 'task_failed', message } });
/** Lets the dispatcher's turn (setImmediate pump, promise chains) run. */
const settle = () => new Promise((resolve) => setImmediate(resolve)).then(() => new Promise((resolve) => setImmediate(resolve)));

describe('dispatcher', () => {
  it('sends the units queued in one turn as one batch, and resolves each from its own result line', async () => {
    beat(1);
    const reported: Array<[string, number]> = [];
    dispatcher.onUnitDone((done, result) => reported.push([done.id, result.processingMs]));
    const results = ['a', 'b', 'c'].map((id) => dispatcher.run(unit(id)));
    await settle();
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call!.batch.tasks.map((task) => task.unit)).toEqual(['a', 'b', 'c']);
    // Answers arrive in completion order, not batch order.
    for (const task of [...call!.batch.tasks].reverse()) call!.answer(done(task.lease));
    call!.end();
    const resolved = await Promise.all(results);
    expect(resolved.map((result) => result.lease)).toEqual(call!.batch.tasks.map((task) => task.lease));
    expect(resolved[0]!.processingMs).toBe(5);
    expect(reported).toEqual([['c', 5], ['b', 5], ['a', 5]]);
    expect(dispatcher.backlog()).toMatchObject({ queuedUnits: 0, inflightUnits: 0 });
  });

  it('keeps a long task leased while heartbeats list it, and re-queues it once they stop', async () => {
    beat(1);
    void dispatcher.run(unit('long'));
    await settle();
    const lease = calls[0]!.batch.tasks[0]!.lease;
    for (let elapsed = 0; elapsed < 5 * leaseMs; elapsed += leaseMs / 2) {
      beat(1, [lease]);
      await vi.advanceTimersByTimeAsync(leaseMs / 2);
    }
    expect(calls).toHaveLength(1);
    expect(dispatcher.backlog().inflightUnits).toBe(1);
    // The worker stops listing it (it lost the task): the lease runs out and the unit goes out again.
    beat(1, []);
    await vi.advanceTimersByTimeAsync(leaseMs + 1);
    await vi.advanceTimersByTimeAsync(retryDelay(100, 1, 0.5));
    await settle();
    expect(calls).toHaveLength(2);
    expect(calls[1]!.batch.tasks[0]!.lease).not.toBe(lease);
  });

  it('takes a late result when the unit is still waiting for its retry, and ignores one when it went out again', async () => {
    beat(1);
    const slow = dispatcher.run(unit('slow'));
    await settle();
    const first = calls[0]!;
    // No heartbeat renews it: the lease runs out, and the unit waits out its backoff.
    await vi.advanceTimersByTimeAsync(leaseMs + 1);
    first.answer(done(first.batch.tasks[0]!.lease));
    await expect(slow).resolves.toMatchObject({ lease: first.batch.tasks[0]!.lease });
    await vi.advanceTimersByTimeAsync(retryDelay(100, 1, 0.5) + 1);
    await settle();
    expect(calls).toHaveLength(1);

    const other = dispatcher.run(unit('other'));
    await settle();
    const second = calls[1]!;
    await vi.advanceTimersByTimeAsync(leaseMs + 1 + retryDelay(100, 1, 0.5) + 1);
    await settle();
    expect(calls).toHaveLength(3);
    second.answer(done(second.batch.tasks[0]!.lease));
    const third = calls[2]!;
    third.answer(done(third.batch.tasks[0]!.lease));
    await expect(other).resolves.toMatchObject({ lease: third.batch.tasks[0]!.lease });
  });

  it('retries a transient failure after a jittered backoff, on another worker', async () => {
    beat(1);
    beat(2);
    const result = dispatcher.run(unit('flaky'));
    await settle();
    const first = calls[0]!;
    first.answer(failed(first.batch.tasks[0]!.lease, 500, 'disk hiccup'));
    first.end();
    await settle();
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(retryDelay(100, 1, 0.5) + 1);
    await settle();
    expect(calls).toHaveLength(2);
    const second = calls[1]!;
    second.answer(done(second.batch.tasks[0]!.lease));
    second.end();
    await expect(result).resolves.toMatchObject({ lease: second.batch.tasks[0]!.lease });
  });

  it('a failure that repeats identically on a second worker is final, not retried to the limit', async () => {
    beat(1);
    beat(2);
    const result = dispatcher.run(unit('bad'));
    const outcome = result.catch((error: unknown) => error);
    let settled = false;
    void outcome.then(() => (settled = true));
    for (let attempt = 0; attempt < 5 && !settled; attempt++) {
      await settle();
      const call = calls[attempt]!;
      call.answer(failed(call.batch.tasks[0]!.lease, 500, 'sharp: kernel too small'));
      call.end();
      await settle();
      await vi.advanceTimersByTimeAsync(retryDelay(100, attempt + 1, 0.5) + 1);
    }
    const error = await outcome;
    expect(error).toBeInstanceOf(PermanentTaskError);
    expect((error as Error).message).toMatch(/kernel too small \(the same on two workers\)/);
    expect(new Set(calls.map((call) => call.worker)).size).toBe(2);
    expect(calls).toHaveLength(2);
  });

  it('a permanent failure (4xx from the worker) is final at once', async () => {
    beat(1);
    const outcome = dispatcher.run(unit('corrupt')).catch((error: unknown) => error);
    await settle();
    calls[0]!.answer(failed(calls[0]!.batch.tasks[0]!.lease, 422, 'not an image'));
    calls[0]!.end();
    expect(await outcome).toBeInstanceOf(PermanentTaskError);
    expect(calls).toHaveLength(1);
  });

  it('backs off exponentially with equal jitter, capped', () => {
    expect(retryDelay(100, 1, 0)).toBe(50);
    expect(retryDelay(100, 1, 0.999)).toBe(100);
    expect(retryDelay(100, 4, 0)).toBe(400);
    expect(retryDelay(100, 30, 1)).toBe(30_000);
  });
});
