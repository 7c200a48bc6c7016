import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Task } from '../../services/protocol/tasks.js';
import { MemoryGate } from '../../services/worker/memory-gate.js';
import { runTask } from '../../services/worker/run-task.js';
import { corpus } from '../helpers/api.js';

/** The worker's tiled tasks against its limits: a strip that decodes the upload itself is held to DIPS_MAX_TASK_BYTES as every task. */
let dir = '';
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-tiled-tasks-'));
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

describe('tiled tasks', () => {
  it('refuses an upload over DIPS_MAX_TASK_BYTES in a decoding strip with the error every task gives', async () => {
    const upload = corpus('garden-odd.png');
    const { size } = await fs.stat(upload);
    const reach = { masterUrl: 'http://127.0.0.1:9', headers: {}, maxBytes: size - 1 };
    const limits = { maxPixels: 10_000_000, maxDecodeBytes: 1 << 30, memory: new MemoryGate(1 << 30) };
    const base = { unit: 'u', lease: 'l', input: { via: 'file' as const, path: upload } };
    const strip: Task = {
      ...base,
      output: { via: 'file', path: path.join(dir, 'stage-1.v'), range: { start: 0, end: 64 + 1001 * 100 * 3 - 1 } },
      spec: {
        kind: 'tile',
        steps: [{ op: 'blur', sigma: 2 }],
        input: { width: 1001, height: 667, channels: 3 },
        source: { x: 0, y: 0, width: 1001, height: 110 },
        core: { x: 0, y: 0, width: 1001, height: 100 },
        output: { width: 1001, height: 667, channels: 3 },
        returnCore: true,
        decode: { name: 'garden-odd.png' },
      },
    };
    const whole: Task = { ...base, output: { via: 'file', path: path.join(dir, 'out.png') }, spec: { kind: 'whole', name: 'garden-odd.png', pipeline: [{ op: 'blur', sigma: 2 }] } };
    const [refusedStrip, refusedWhole] = [await runTask(strip, reach, limits), await runTask(whole, reach, limits)];
    expect(refusedStrip).toMatchObject({ ok: false, error: { status: 413, code: 'task_too_large', message: `task input of ${size} bytes exceeds DIPS_MAX_TASK_BYTES (${size - 1})` } });
    expect(refusedStrip.ok === false && refusedStrip.error).toEqual(refusedWhole.ok === false && refusedWhole.error);
    // Within the cap the same strip runs and writes its core.
    expect(await runTask(strip, { ...reach, maxBytes: size }, limits)).toMatchObject({ ok: true, bytesIn: size, tile: { width: 1001, height: 100, channels: 3 } });
  });

  it('joins the JPEG segments of the strips in order, whatever order their reads finish in', async () => {
    const segments = await Promise.all(
      Array.from({ length: 9 }, async (_, index) => {
        const file = path.join(dir, `segment-${index}`);
        // Sizes falling then rising, so reads running at once finish out of order.
        await fs.writeFile(file, Buffer.alloc(1 + Math.abs(4 - index) * 200_000, index));
        return { via: 'file' as const, path: file };
      }),
    );
    const joined = path.join(dir, 'joined.jpg');
    const reach = { masterUrl: 'http://127.0.0.1:9', headers: {}, maxBytes: 1 << 30 };
    const join: Task = {
      unit: 'u',
      lease: 'l',
      input: segments[0]!,
      output: { via: 'file', path: joined },
      spec: { kind: 'encode', shape: { width: 10, height: 10, channels: 3 }, format: 'jpeg', segments: segments.slice(1) },
    };
    expect(await runTask(join, reach, { maxPixels: 100, maxDecodeBytes: 1 << 30, memory: new MemoryGate(1 << 30) })).toMatchObject({ ok: true });
    const expected = Buffer.concat(await Promise.all(segments.map(({ path: file }) => fs.readFile(file))));
    expect((await fs.readFile(joined)).equals(expected)).toBe(true);
  });
});
