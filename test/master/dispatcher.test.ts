import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Blobs } from '../../services/master/blobs.js';
import { Dispatcher, PermanentTaskError, retryDelay, type WorkUnit } from '../../services/master/dispatcher.js';
import { createMetrics } from '../../services/master/metrics.js';
import { WorkerRegistry } from '../../services/master/worker-registry.js';
import { createLogger } from '../../services/shared/logger.js';
import { taskBatch, type TaskBatch, type TaskResult } from '../../services/protocol/tasks.js';

/* The dispatcher against fake workers that are real HTTP servers on loopback (the dispatcher's own
   client, sockets and NDJSON parsing are exercised), on fake timers: batching, lease renewal by
   heartbeats, backoff, when a failure is final, and what a refused or broken connection means. */

interface Call {
  worker: string;
  batch: TaskBatch;
  /** Answers a task of this batch (one NDJSON line); end() closes the response, cut() breaks the connection. */
  answer(result: TaskResult): void;
  /** Writes these bytes of the response as they are (parts of lines, several lines, anything). */
  raw(text: string): void;
  end(): void;
  cut(): void;
}

let calls: Call[];
/** Status a fake worker answers a batch with instead of 200 (and its error body), by port. */
const refusals = new Map<number, { status: number; body: unknown }>();
let servers: Server[];
let registry: WorkerRegistry;
let dispatcher: Dispatcher;
const leaseMs = 1_000;

function fakeWorker(): Promise<Server> {
  const server = http.createServer(async (req, res) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    const port = (server.address() as AddressInfo).port;
    const refusal = refusals.get(port);
    if (refusal) return void res.writeHead(refusal.status, { 'content-type': 'application/json' }).end(JSON.stringify(refusal.body));
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.flushHeaders();
    calls.push({
      worker: String(port),
      batch: taskBatch.parse(JSON.parse(text)),
      answer: (result) => void res.write(`${JSON.stringify(result)}\n`),
      raw: (text) => void res.write(text),
      end: () => void res.end(),
      cut: () => void req.socket.destroy(),
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

beforeAll(async () => {
  servers = [await fakeWorker(), await fakeWorker()];
});
afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  calls = [];
  refusals.clear();
  registry = new WorkerRegistry(60_000, 'master-files');
  dispatcher = new Dispatcher(registry, new Blobs(), { leaseMs, lateResultGraceMs: 1_000, maxAttempts: 5, retryBaseMs: 100, random: () => 0.5 }, createMetrics(), createLogger('test', 'silent'));
});
afterEach(() => {
  dispatcher.close();
  registry.close();
  vi.useRealTimers();
});

const portOf = (worker: 1 | 2) => (servers[worker - 1]!.address() as AddressInfo).port;
const beat = (worker: 1 | 2, leases: string[] = []) => registry.heartbeat(`w${worker}`, { address: `http://127.0.0.1:${portOf(worker)}`, slots: 2, leases });
const unit = (id: string): WorkUnit => ({
  id,
  jobId: 'job',
  imageIndex: 0,
  kind: 'whole',
  pixels: 100,
  prepare: async () => ({ input: { via: 'file', path: `/in/${id}` }, output: { via: 'file', path: `/out/${id}` }, spec: { kind: 'whole', name: id, pipeline: [] } }),
});
const done = (lease: string, processingMs = 5): TaskResult => ({ ok: true, lease, processingMs, bytesIn: 10, bytesOut: 20, image: { width: 1, height: 1, format: 'png' } });
const failed = (lease: string, status: number, message: string): TaskResult => ({ ok: false, lease, processingMs: 5, error: { status, code: 'task_failed', message } });
/** Waits (on real I/O turns, not the fake clock) until the condition holds; fails after 5 s. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = performance.now() + 5_000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`condition not met within 5 s: ${condition.toString()}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
/** Answers every task of the call, taking `processingMs` each, and closes it. */
const answerAll = (call: Call, processingMs = 5) => {
  for (const task of call.batch.tasks) call.answer(done(task.lease, processingMs));
  call.end();
};
/** Runs two units on worker 1 that take `processingMs` each, so the dispatcher has measured units like them. */
async function learn(processingMs: number, make = unit): Promise<void> {
  const before = calls.length;
  const results = ['learn-a', 'learn-b'].map((id) => dispatcher.run(make(id)));
  await until(() => calls.length > before);
  answerAll(calls[before]!, processingMs);
  await Promise.all(results);
}
/** Answers every request as it comes until all the results are in. */
async function answerUntilDone(results: Array<Promise<unknown>>, from: number): Promise<void> {
  let settled = 0;
  for (const result of results) void result.then(() => (settled += 1));
  for (let next = from; settled < results.length; ) {
    await until(() => calls.length > next || settled === results.length);
    if (calls.length > next) answerAll(calls[next++]!);
  }
  await Promise.all(results);
}
/** Lets the dispatcher's scheduled turn run (it pumps on setImmediate). */
const nextTurns = async () => {
  for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
};
/** The unit is back in the queue, waiting for its retry (the worker's answer was taken). */
const waitingForRetry = () => until(() => dispatcher.backlog().queuedUnits === 1 && dispatcher.backlog().inflightUnits === 0);

describe('dispatcher', () => {
  it('sends the units queued in one turn as one batch, and resolves each from its own result line', async () => {
    beat(1);
    const reported: Array<[string, number]> = [];
    dispatcher.onUnitDone((done, result) => reported.push([done.id, result.processingMs]));
    const results = ['a', 'b', 'c'].map((id) => dispatcher.run(unit(id)));
    await until(() => calls.length > 0);
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

  it('spreads a few units over the free slots of all workers before it queues any behind a busy slot', async () => {
    beat(1);
    beat(2);
    const results = ['s1', 's2', 's3', 's4'].map((id) => dispatcher.run(unit(id)));
    await until(() => calls.length === 2);
    expect(calls.map((call) => call.batch.tasks.length)).toEqual([2, 2]);
    expect(new Set(calls.map((call) => call.worker))).toEqual(new Set([String(portOf(1)), String(portOf(2))]));
    for (const call of calls) {
      for (const task of call.batch.tasks) call.answer(done(task.lease));
      call.end();
    }
    await Promise.all(results);
  });

  it('puts two units on two idle workers, one each, not both on the first one\'s free slots', async () => {
    beat(1);
    beat(2);
    const results = ['strip-0', 'strip-1'].map((id) => dispatcher.run(unit(id)));
    await until(() => calls.length === 2);
    expect(calls.map((call) => call.batch.tasks.length)).toEqual([1, 1]);
    expect(new Set(calls.map((call) => call.worker))).toEqual(new Set([String(portOf(1)), String(portOf(2))]));
    for (const call of calls) answerAll(call);
    await Promise.all(results);
  });

  it('a unit that cannot be prepared fails its own attempt; the rest of its batch is sent', async () => {
    beat(1);
    let preparations = 0;
    const broken: WorkUnit = {
      ...unit('broken'),
      prepare: async () => {
        preparations += 1;
        throw new Error('input vanished');
      },
    };
    const brokenResult = dispatcher.run(broken);
    const results = ['ok-1', 'ok-2'].map((id) => dispatcher.run(unit(id)));
    await until(() => calls.length === 1);
    expect(calls[0]!.batch.tasks.map((task) => task.unit)).toEqual(['ok-1', 'ok-2']);
    answerAll(calls[0]!);
    expect((await Promise.all(results)).map((result) => result.bytesOut)).toEqual([20, 20]);
    // Its own attempts go on with backoff, up to the limit, and it fails with the reason.
    const failure = brokenResult.catch((error: Error) => error);
    for (let attempt = 0; attempt < 5; attempt++) {
      await vi.advanceTimersByTimeAsync(30_000);
      await nextTurns();
    }
    expect(((await failure) as Error).message).toMatch(/input vanished/);
    expect(preparations).toBe(5);
  });

  it('keeps a long task leased while heartbeats list it, and re-queues it once they stop', async () => {
    beat(1);
    void dispatcher.run(unit('long'));
    await until(() => calls.length > 0);
    const lease = calls[0]!.batch.tasks[0]!.lease;
    for (let elapsed = 0; elapsed < 5 * leaseMs; elapsed += leaseMs / 2) {
      beat(1, [lease]);
      await vi.advanceTimersByTimeAsync(leaseMs / 2);
    }
    expect(calls).toHaveLength(1);
    expect(dispatcher.backlog()).toMatchObject({ queuedUnits: 0, inflightUnits: 1 });
    // The worker stops listing it (it lost the task): the lease runs out and the unit goes out again.
    beat(1, []);
    await vi.advanceTimersByTimeAsync(leaseMs + 1);
    await vi.advanceTimersByTimeAsync(retryDelay(100, 1, 0.5));
    await until(() => calls.length > 1);
    expect(calls[1]!.batch.tasks[0]!.lease).not.toBe(lease);
  });

  it('takes a late result when the unit is still waiting for its retry, and ignores one when it went out again', async () => {
    beat(1);
    const slow = dispatcher.run(unit('slow'));
    await until(() => calls.length > 0);
    const first = calls[0]!;
    // No heartbeat renews it: the lease runs out, and the unit waits out its backoff.
    await vi.advanceTimersByTimeAsync(leaseMs + 1);
    first.answer(done(first.batch.tasks[0]!.lease));
    await expect(slow).resolves.toMatchObject({ lease: first.batch.tasks[0]!.lease });
    await vi.advanceTimersByTimeAsync(retryDelay(100, 1, 0.5) + 1);
    // Taken out of the queue: nothing waits for a retry, nothing went out again.
    expect(dispatcher.backlog()).toMatchObject({ queuedUnits: 0, inflightUnits: 0 });
    expect(calls).toHaveLength(1);

    const other = dispatcher.run(unit('other'));
    await until(() => calls.length > 1);
    const second = calls[1]!;
    await vi.advanceTimersByTimeAsync(leaseMs + 1 + retryDelay(100, 1, 0.5) + 1);
    await until(() => calls.length > 2);
    second.answer(done(second.batch.tasks[0]!.lease));
    const third = calls[2]!;
    third.answer(done(third.batch.tasks[0]!.lease));
    await expect(other).resolves.toMatchObject({ lease: third.batch.tasks[0]!.lease });
  });

  it('retries a transient failure after a jittered backoff, on another worker', async () => {
    beat(1);
    beat(2);
    const result = dispatcher.run(unit('flaky'));
    await until(() => calls.length > 0);
    const first = calls[0]!;
    first.answer(failed(first.batch.tasks[0]!.lease, 500, 'disk hiccup'));
    first.end();
    await waitingForRetry();
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(retryDelay(100, 1, 0.5) + 1);
    await until(() => calls.length > 1);
    const second = calls[1]!;
    expect(second.worker).not.toBe(first.worker);
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
      await until(() => calls.length > attempt);
      const call = calls[attempt]!;
      call.answer(failed(call.batch.tasks[0]!.lease, 500, 'sharp: kernel too small'));
      call.end();
      await until(() => settled || dispatcher.backlog().queuedUnits === 1);
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
    await until(() => calls.length > 0);
    calls[0]!.answer(failed(calls[0]!.batch.tasks[0]!.lease, 422, 'not an image'));
    calls[0]!.end();
    expect(await outcome).toBeInstanceOf(PermanentTaskError);
    expect(calls).toHaveLength(1);
  });

  it('a draining worker (503) gets nothing more, and its batch goes to another worker without spending an attempt', async () => {
    beat(1);
    refusals.set(portOf(1), { status: 503, body: { error: { code: 'draining', message: 'worker is shutting down' } } });
    const result = dispatcher.run(unit('moved'));
    await until(() => registry.get('w1')?.state === 'draining');
    expect(dispatcher.backlog()).toMatchObject({ queuedUnits: 1, inflightUnits: 0 });
    // Another worker comes: the unit goes to it at once (no backoff, the clock stands still).
    beat(2);
    await until(() => calls.length > 0);
    expect(calls[0]!.worker).toBe(String(portOf(2)));
    calls[0]!.answer(done(calls[0]!.batch.tasks[0]!.lease));
    calls[0]!.end();
    await expect(result).resolves.toMatchObject({ lease: calls[0]!.batch.tasks[0]!.lease });
  });

  it('a connection cut under the answers marks the worker dead and retries only the unanswered units', async () => {
    beat(1);
    const answeredFirst = dispatcher.run(unit('kept'));
    const cutOff = dispatcher.run(unit('lost'));
    await until(() => calls.length > 0);
    const first = calls[0]!;
    const [kept, lost] = first.batch.tasks;
    first.answer(done(kept!.lease));
    await expect(answeredFirst).resolves.toMatchObject({ lease: kept!.lease });
    first.cut();
    await until(() => registry.list().some((worker) => worker.state === 'dead'));
    expect(registry.list().find((worker) => worker.state === 'dead')!.address).toContain(`:${first.worker}`);
    beat(2);
    await waitingForRetry();
    await vi.advanceTimersByTimeAsync(retryDelay(100, 1, 0.5) + 1);
    await until(() => calls.length > 1);
    const second = calls[1]!;
    expect(second.worker).not.toBe(first.worker);
    expect(second.batch.tasks.map((task) => task.unit)).toEqual([lost!.unit]);
    second.answer(done(second.batch.tasks[0]!.lease));
    second.end();
    await expect(cutOff).resolves.toMatchObject({ lease: second.batch.tasks[0]!.lease });
  });

  it('takes result lines however the bytes arrive; a line that is no result marks the worker dead and retries the rest', async () => {
    beat(1);
    const results = ['split', 'second', 'third', 'garbled'].map((id) => dispatcher.run(unit(id)));
    await until(() => calls.length > 0);
    const first = calls[0]!;
    const [split, second, third, garbled] = first.batch.tasks;
    const line = (lease: string) => `${JSON.stringify(done(lease))}\n`;
    // One line cut in two writes, then two lines and a blank one in one write.
    first.raw(line(split!.lease).slice(0, 20));
    await nextTurns();
    first.raw(line(split!.lease).slice(20));
    await expect(results[0]).resolves.toMatchObject({ lease: split!.lease });
    first.raw(`${line(second!.lease)}\n${line(third!.lease)}`);
    await expect(results[1]).resolves.toMatchObject({ lease: second!.lease });
    await expect(results[2]).resolves.toMatchObject({ lease: third!.lease });
    first.raw('{"ok":true}\n');
    await until(() => registry.list().some((worker) => worker.state === 'dead'));
    beat(2);
    await waitingForRetry();
    await vi.advanceTimersByTimeAsync(retryDelay(100, 1, 0.5) + 1);
    await until(() => calls.length > 1);
    expect(calls[1]!.batch.tasks.map((task) => task.unit)).toEqual([garbled!.unit]);
    answerAll(calls[1]!);
    await expect(results[3]).resolves.toMatchObject({ lease: calls[1]!.batch.tasks[0]!.lease });
  });

  it('fills a worker with many short units in one request, and refills it only once its window has drained below the low-water mark', async () => {
    beat(1);
    // Unmeasured units count as long: a worker gets two per slot, and the master asks for about as many items.
    expect(dispatcher.unitsWanted()).toBe(8);
    await learn(5);
    const results = Array.from({ length: 100 }, (_, index) => dispatcher.run(unit(`short-${index}`)));
    await until(() => calls.length === 2);
    // 5 ms units count as the window's floor (1000 ms / 16 per slot): 16 per slot, one request.
    const window = calls[1]!;
    expect(window.batch.tasks).toHaveLength(32);
    expect(dispatcher.backlog()).toMatchObject({ queuedUnits: 68, inflightUnits: 32 });
    expect(dispatcher.unitsWanted()).toBe(32 + 4);
    // Heartbeats renew the leases of the tasks waiting in the worker's queue too.
    const leases = window.batch.tasks.map((task) => task.lease);
    for (let elapsed = 0; elapsed < 3 * leaseMs; elapsed += leaseMs / 2) {
      beat(1, leases);
      await vi.advanceTimersByTimeAsync(leaseMs / 2);
    }
    expect(dispatcher.backlog()).toMatchObject({ queuedUnits: 68, inflightUnits: 32 });
    // Results coming back one by one send nothing while the window holds 400 ms (7 units) or more...
    for (const task of window.batch.tasks.slice(0, 25)) window.answer(done(task.lease));
    await Promise.all(results.slice(0, 25));
    await nextTurns();
    expect(dispatcher.backlog()).toMatchObject({ queuedUnits: 68, inflightUnits: 7 });
    expect(calls).toHaveLength(2);
    // ...and the one that drains it below refills the whole gap in one request.
    window.answer(done(window.batch.tasks[25]!.lease));
    await until(() => calls.length === 3);
    expect(calls[2]!.batch.tasks).toHaveLength(26);
    for (const task of window.batch.tasks.slice(26)) window.answer(done(task.lease));
    window.end();
    await answerUntilDone(results, 2);
  });

  it("splits a window whose tasks outgrow the worker's body limit into several requests", async () => {
    beat(1);
    await learn(5);
    // A name of 1 MiB stands for a variants task with many long presigned URLs.
    const big = (id: string): WorkUnit => {
      const small = unit(id);
      return { ...small, prepare: async (lease, worker) => ({ ...(await small.prepare(lease, worker)), spec: { kind: 'whole', name: `${id}-${'x'.repeat(1024 * 1024)}`, pipeline: [] } }) };
    };
    const results = Array.from({ length: 6 }, (_, index) => dispatcher.run(big(`big-${index}`)));
    await until(() => calls.length === 3);
    expect(dispatcher.backlog()).toMatchObject({ queuedUnits: 0, inflightUnits: 6 });
    expect(calls.slice(1).map((call) => call.batch.tasks.length)).toEqual([3, 3]);
    for (const call of calls.slice(1)) answerAll(call);
    await Promise.all(results);
  });

  it('keeps long units at two per slot, one more sent as each slot frees', async () => {
    beat(1);
    await learn(800);
    const results = Array.from({ length: 6 }, (_, index) => dispatcher.run(unit(`long-${index}`)));
    await until(() => calls.length === 2);
    expect(calls[1]!.batch.tasks).toHaveLength(4);
    calls[1]!.answer(done(calls[1]!.batch.tasks[0]!.lease, 800));
    await until(() => calls.length === 3);
    expect(calls[2]!.batch.tasks).toHaveLength(1);
    for (const call of calls.slice(1)) answerAll(call, 800);
    await until(() => calls.length === 4);
    answerAll(calls[3]!, 800);
    await Promise.all(results);
  });

  it('a worker that registers gets queued work at its first heartbeat while the others hold full windows', async () => {
    beat(1);
    await learn(5);
    const results = Array.from({ length: 100 }, (_, index) => dispatcher.run(unit(`spread-${index}`)));
    await until(() => calls.length === 2);
    expect(calls[1]!.batch.tasks).toHaveLength(32);
    beat(2);
    await until(() => calls.length === 3);
    expect(calls[2]!.worker).toBe(String(portOf(2)));
    expect(calls[2]!.batch.tasks).toHaveLength(32);
    expect(dispatcher.backlog()).toMatchObject({ queuedUnits: 36, inflightUnits: 64 });
    await answerUntilDone(results, 1);
  });

  it("tells the scaler only a slot's worth of a window is running, the rest waits in the worker's queue", async () => {
    beat(1);
    const whole = (id: string): WorkUnit => ({ ...unit(id), work: { pipeline: [] } });
    await learn(5, whole);
    const results = Array.from({ length: 10 }, (_, index) => dispatcher.run(whole(`w-${index}`)));
    await until(() => calls.length === 2);
    await vi.advanceTimersByTimeAsync(100);
    const running = dispatcher.wholeWork().filter((item) => item.runningMs > 0);
    expect(running.map((item) => item.runningMs)).toEqual([100, 100]);
    expect(dispatcher.wholeWork().reduce((sum, item) => sum + item.units, 0)).toBe(10);
    await answerUntilDone(results, 1);
  });

  it('backs off exponentially with equal jitter, capped', () => {
    expect(retryDelay(100, 1, 0)).toBe(50);
    expect(retryDelay(100, 1, 0.999)).toBe(100);
    expect(retryDelay(100, 4, 0)).toBe(400);
    expect(retryDelay(100, 30, 1)).toBe(30_000);
  });
});
