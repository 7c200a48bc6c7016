import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { openInput } from '../../services/image-core/decode.js';
import { parsePipeline } from '../../services/image-core/pipeline.js';
import { planImage, wholeStageBytes } from '../../services/image-core/planner.js';
import { workerHealth } from '../../services/protocol/tasks.js';
import { MemoryGate } from '../../services/worker/memory-gate.js';
import { runTask } from '../../services/worker/run-task.js';
import type { Task } from '../../services/protocol/tasks.js';
import { corpus, submit, waitForJob, waitUntil } from '../helpers/api.js';
import { progressiveJpegDeclaring, webpDeclaring } from '../helpers/hostile-corpus.js';
import { killAll, memoryOf, startCluster } from '../helpers/processes.js';

afterEach(killAll);

/** A task the test finishes by hand, and whether it has started. */
function manualTask() {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const task = { started: false, finish, work: async () => { task.started = true; await done; } };
  return task;
}

/** Tasks asking `gate` for these bytes, in this order: which have started, and finishing them by their index. */
function holding(gate: MemoryGate, bytes: readonly number[]) {
  const tasks = bytes.map(() => manualTask());
  const running = Promise.all(tasks.map((task, at) => gate.hold(bytes[at]!, task.work)));
  return {
    started: async () => {
      await settle();
      return tasks.map((task) => task.started);
    },
    finish: (...indexes: number[]) => indexes.forEach((index) => tasks[index]!.finish()),
    running,
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('memory gate', () => {
  it('runs tasks whose bytes fit together at once, and holds back one that would pass the capacity until memory is given back', async () => {
    const gate = new MemoryGate(100);
    const tasks = holding(gate, [40, 50, 30]);
    expect(await tasks.started()).toEqual([true, true, false]);
    expect({ held: gate.heldBytes, queued: gate.queued }).toEqual({ held: 90, queued: 1 });
    tasks.finish(0);
    expect(await tasks.started()).toEqual([true, true, true]);
    expect(gate.heldBytes).toBe(80);
    tasks.finish(1, 2);
    await tasks.running;
    expect({ held: gate.heldBytes, queued: gate.queued }).toEqual({ held: 0, queued: 0 });
  });

  it('keeps arrival order: a small task does not pass a large one that waits', async () => {
    const gate = new MemoryGate(100);
    const tasks = holding(gate, [60, 90, 10]);
    expect(await tasks.started()).toEqual([true, false, false]);
    tasks.finish(0);
    expect(await tasks.started()).toEqual([true, true, true]);
    tasks.finish(1, 2);
    await tasks.running;
  });

  it('runs work that holds nothing at once, and a stage larger than the capacity alone', async () => {
    const gate = new MemoryGate(100);
    const tasks = holding(gate, [250, 0, 1]);
    expect(await tasks.started()).toEqual([true, true, false]);
    expect(gate.heldBytes).toBe(100);
    tasks.finish(0, 1);
    expect(await tasks.started()).toEqual([true, true, true]);
    tasks.finish(2);
    await tasks.running;
  });

  it('stops waiting when the task is aborted, and lets the tasks behind it go', async () => {
    const gate = new MemoryGate(100);
    const [running, aborted, behind] = [manualTask(), manualTask(), manualTask()];
    const controller = new AbortController();
    const first = gate.hold(70, running.work);
    const cancelled = gate.hold(80, aborted.work, controller.signal);
    const last = gate.hold(20, behind.work);
    await settle();
    expect(behind.started).toBe(false);
    controller.abort(new Error('lease lost'));
    await expect(cancelled).rejects.toThrow('lease lost');
    await settle();
    expect([aborted.started, behind.started]).toEqual([false, true]);
    expect(gate.heldBytes).toBe(90);
    running.finish();
    behind.finish();
    await Promise.all([first, last]);
    expect(gate.heldBytes).toBe(0);
  });

  it('counts what the planner counts: a whole stage by its input and output, a tileable pipeline nothing', () => {
    const photo = { width: 8390, height: 5244, channels: 3 };
    const samples = photo.width * photo.height * photo.channels;
    // Contours are traced on the whole image; the plan runs it whole on one worker.
    const contours = parsePipeline([{ op: 'contours' }]);
    expect(planImage(photo, contours, { workerMemoryBytes: 512 * 2 ** 20 }).mode).toBe('whole');
    expect(wholeStageBytes(photo, contours)).toBeGreaterThanOrEqual(samples);
    expect(wholeStageBytes(photo, contours)).toBeLessThanOrEqual(0.75 * 512 * 2 ** 20);
    expect(wholeStageBytes(photo, parsePipeline([{ op: 'blur', sigma: 2 }]))).toBe(0);
  });
});

/**
 * The peak of one pipeline on a file over a process's start, in a process of its own (the built modules,
 * as a worker runs them). The peak is VmHWM: getrusage's maxRSS would start at the test process's size.
 */
async function peakOf(file: string, pipeline: unknown[]): Promise<number> {
  const built = path.resolve(import.meta.dirname, '../../dist');
  const script = `
    const { peakRss } = await import(${JSON.stringify(`${built}/bench/proc.js`)});
    const { processImage } = await import(${JSON.stringify(`${built}/services/image-core/process-image.js`)});
    const { parsePipeline } = await import(${JSON.stringify(`${built}/services/image-core/pipeline.js`)});
    const start = process.memoryUsage().rss;
    await processImage(${JSON.stringify(file)}, parsePipeline(${JSON.stringify(pipeline)}), { format: 'jpeg' }, { maxPixels: 1e9, name: 'photo' });
    process.stdout.write(String((await peakRss('self')) - start));`;
  return Number((await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script])).stdout);
}

describe('what a decode holds', () => {
  it('is told from the header, covers what decoding a 25 MP WebP takes, and is nothing for a sequential JPEG', { timeout: 60_000 }, async () => {
    const webp = await webpDeclaring(6000, 4166);
    const opened = await openInput(webp, { maxPixels: 1e9, name: 'flat.webp' });
    expect((await openInput(corpus('aqua.jpg'), { maxPixels: 1e9, name: 'aqua.jpg' })).frameBytes).toBe(0);
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'dips-decode-hold-')), 'flat.webp');
    await fs.writeFile(file, webp);
    const peak = await peakOf(file, [{ op: 'invert' }]);
    // 249 MiB measured against 262 MiB estimated.
    expect(peak).toBeLessThanOrEqual(opened.frameBytes);
    expect(peak).toBeGreaterThan(0.75 * opened.frameBytes);
  });

  it('of a progressive JPEG or an interlaced PNG covers what its decoder keeps beyond the same photo saved sequential', { timeout: 120_000 }, async () => {
    // 12 MP of a real photo, encoded both ways; a blur streams the sequential file row by row.
    const photo = sharp(corpus('twowings-4k.jpg')).resize(4000, 3000, { fit: 'fill' });
    const blur = [{ op: 'blur', sigma: 2 }];
    const encodings = {
      '4:2:0 JPEG': (progressive: boolean) => photo.clone().jpeg({ quality: 85, progressive }),
      '4:4:4 JPEG': (progressive: boolean) => photo.clone().jpeg({ quality: 85, progressive, chromaSubsampling: '4:4:4' }),
      '8-bit PNG': (progressive: boolean) => photo.clone().png({ progressive, compressionLevel: 1 }),
      '16-bit PNG': (progressive: boolean) => photo.clone().toColourspace('rgb16').png({ progressive, compressionLevel: 1 }),
    };
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-decode-hold-'));
    const found: Record<string, { counted: number; extra: number }> = {};
    for (const [kind, encode] of Object.entries(encodings)) {
      const [sequential, progressive] = [path.join(dir, `${kind}.sequential`), path.join(dir, `${kind}.progressive`)];
      await Promise.all([encode(false).toFile(sequential), encode(true).toFile(progressive)]);
      expect((await openInput(sequential, { maxPixels: 1e9, name: kind })).frameBytes).toBe(0);
      const counted = (await openInput(progressive, { maxPixels: 1e9, name: kind })).frameBytes;
      const extra = (await peakOf(progressive, blur)) - (await peakOf(sequential, blur));
      found[kind] = { counted: Math.round(counted / 2 ** 20), extra: Math.round(extra / 2 ** 20) };
    }
    // MiB counted against MiB measured, per kind: every count covers its decode, and none is more than twice it.
    for (const [kind, { counted, extra }] of Object.entries(found)) {
      expect({ kind, covered: extra <= counted, close: extra > counted / 2 }, JSON.stringify(found)).toEqual({ kind, covered: true, close: true });
    }
  });

  it('of a JPEG turned by its EXIF orientation is the frame libvips turns, to within a tenth; a mirrored one holds nothing', { timeout: 60_000 }, async () => {
    const photo = sharp(corpus('twowings-4k.jpg')).resize(4000, 3000, { fit: 'fill' });
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-decode-hold-'));
    const saved = async (orientation: number) => {
      const file = path.join(dir, `orientation-${orientation}.jpg`);
      await photo.clone().jpeg({ quality: 85 }).withMetadata({ orientation }).toFile(file);
      return file;
    };
    const [upright, mirrored, turned] = await Promise.all([saved(1), saved(2), saved(6)]);
    expect(await openInput(mirrored, { maxPixels: 1e9, name: 'mirrored.jpg' })).toMatchObject({ turned: false, frameBytes: 0 });
    const counted = (await openInput(turned, { maxPixels: 1e9, name: 'turned.jpg' })).frameBytes;
    expect(counted).toBe(4000 * 3000 * 3);
    const blur = [{ op: 'blur', sigma: 2 }];
    // The turned frame itself: 35.0-36.1 MB measured over four pairs against 36.0 MB counted. Each run's
    // peak moves by a megabyte or two from run to run (one pair once read 32.3 MB), so the median of three
    // alternating pairs is what is compared.
    const extras: number[] = [];
    for (let pair = 0; pair < 3; pair++) extras.push((await peakOf(turned, blur)) - (await peakOf(upright, blur)));
    const extra = extras.sort((a, b) => a - b)[1]!;
    expect(extra / counted, JSON.stringify(extras)).toBeGreaterThan(0.9);
    expect(extra / counted).toBeLessThan(1.1);
  });

  it('more than the worker has fails its task from the header, permanently (422), naming the file', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-decode-hold-'));
    const input = path.join(dir, 'deep.jpg');
    await fs.writeFile(input, await progressiveJpegDeclaring(12_000, 10_000));
    const reach = { masterUrl: 'http://127.0.0.1:9', headers: {}, maxBytes: 1 << 30 };
    const limits = { maxPixels: 268_402_689, maxDecodeBytes: 512 * 2 ** 20, memory: new MemoryGate(256 * 2 ** 20) };
    const pipeline = [{ op: 'blur', sigma: 2 }];
    const base = { unit: 'u', lease: 'l', input: { via: 'file' as const, path: input }, output: { via: 'file' as const, path: path.join(dir, 'out') } };
    const whole: Task = { ...base, spec: { kind: 'whole', name: 'deep.jpg', pipeline } };
    const variants: Task = { ...base, spec: { kind: 'variants', name: 'deep.jpg', pipeline, whole: { workerMemoryBytes: 512 * 2 ** 20 }, variants: [{ format: 'webp', output: base.output }] } };
    const refusal = { status: 422, code: 'too_many_pixels', message: expect.stringMatching(/^deep\.jpg: decoding a progressive JPEG of 12000x10000 holds about 687 MiB/) };
    expect(await runTask(whole, reach, limits)).toMatchObject({ ok: false, error: refusal });
    expect(await runTask(variants, reach, limits)).toMatchObject({ ok: false, error: refusal });
  });
});

describe('a worker on a micro budget', () => {
  it('runs two whole stages that need most of its memory one after the other, and its peak stays that of one', { timeout: 120_000 }, async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-memory-gate-'));
    // 44 MP: a contour trace of it needs about 380 MiB, nearly the 384 MiB a 512 MiB worker lends one image.
    const photo = path.join(dataDir, 'large.jpg');
    await sharp(corpus('twowings-4k.jpg')).resize(8390, 5244, { fit: 'fill' }).jpeg({ quality: 80 }).toFile(photo);
    const { master, workers } = await startCluster({ workers: 1, dataDir: path.join(dataDir, 'data'), env: { DIPS_WORKER_MEMORY_BYTES: String(512 * 2 ** 20), DIPS_LEASE_MS: '120000' } });
    const worker = workers[0]!;
    const health = async () => workerHealth.parse(await (await fetch(`${worker.url}/healthz`)).json());
    expect(await health()).toMatchObject({ slots: 2, memory: { capacityBytes: 384 * 2 ** 20, heldBytes: 0, waiting: 0 } });
    const idle = await memoryOf(worker.child);

    const id = await submit(master.url, [photo, photo], { pipeline: '[{"op":"contours"}]', format: 'jpeg' });
    // Both tasks are on the worker, one in each slot; the second waits for the first one's memory.
    const both = await waitUntil(health, (state) => state.running === 2 && state.memory.waiting === 1, 60_000, 'the second trace to wait for memory');
    expect(both.memory.heldBytes).toBeGreaterThan(300 * 2 ** 20);
    const job = await waitForJob(master.url, id, undefined, 90_000);
    expect(job.status).toBe('succeeded');
    expect(job.images.map((image) => image.status)).toEqual(['succeeded', 'succeeded']);

    // Over the idle worker: one trace at a time measured 384-394 MiB; both at once 734, and one after the
    // other without a collection between them 555 (the first one's buffers still held).
    const { peak } = await memoryOf(worker.child);
    expect(peak - idle.rss).toBeLessThan(520 * 2 ** 20);
    expect((await health()).memory).toEqual({ capacityBytes: 384 * 2 ** 20, heldBytes: 0, waiting: 0 });
  });
});
