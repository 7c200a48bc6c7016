import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { InputError } from '../../services/image-core/decode.js';
import { executeTileTask } from '../../services/image-core/execute-tile.js';
import { Intermediate } from '../../services/image-core/intermediate.js';
import { parsePipeline } from '../../services/image-core/pipeline.js';
import { planImage, planStageTiles, type TiledPlan } from '../../services/image-core/planner.js';
import {
  decodeTileResult,
  decodeTileTask,
  encodeTileResult,
  encodeTileTask,
  TileWireError,
  type TileTask,
} from '../../services/image-core/tile-task.js';
import { runTiledImage, type TiledRunOptions, type TiledRunState } from '../../services/image-core/tiled-run.js';
import { corpus, difference, MAX_PIXELS, runTiled, runTileInProcess, runWhole } from './tiling-support.js';

const garden = corpus('garden-odd.png');
let workDir: string;
beforeEach(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'dips-tiled-run-'));
});
afterEach(async () => {
  await rm(workDir, { recursive: true, force: true });
});

function tiledPlan(pipeline: unknown, tileSize: number): TiledPlan {
  const plan = planImage({ width: 1001, height: 667, channels: 3 }, parsePipeline(pipeline), { tileSize });
  if (plan.mode !== 'tiled') throw new Error('expected a tiled plan');
  return plan;
}

const baseOptions = (plan: TiledPlan, overrides: Partial<TiledRunOptions> = {}): TiledRunOptions => ({
  plan,
  source: garden,
  workDir,
  output: { format: 'png' },
  maxPixels: MAX_PIXELS,
  runTile: runTileInProcess,
  concurrency: 2,
  ...overrides,
});

/** A checkpoint kept in memory, as the master would keep it in its job store. */
function memoryCheckpoint() {
  const saved: TiledRunState[] = [];
  return {
    saved,
    load: async () => saved.at(-1) && structuredClone(saved.at(-1)),
    save: async (state: TiledRunState) => void saved.push(structuredClone(state)),
  };
}

describe('runTiledImage', () => {
  const pipeline = [
    { op: 'blur', sigma: 2 },
    { op: 'grayscale' },
    { op: 'threshold', value: 'otsu' },
    { op: 'erode', size: 3, iterations: 1 },
  ];

  test('a restarted master resumes the current stage without redoing finished tiles', async () => {
    const plan = tiledPlan(pipeline, 200);
    const checkpoint = memoryCheckpoint();
    let calls = 0;
    const crashing = async (task: TileTask) => {
      // The master dies in the second stage, after its fourth tile.
      if (task.histogram && ++calls > 4) throw new Error('master process killed');
      return runTileInProcess(task);
    };
    await expect(runTiledImage(baseOptions(plan, { runTile: crashing, checkpoint }))).rejects.toThrow('master process killed');
    const resumedFrom = await checkpoint.load();
    expect(resumedFrom).toMatchObject({ stage: 1 });
    expect(resumedFrom!.doneTiles.length).toBeGreaterThanOrEqual(4);

    const seen: string[] = [];
    const recording = async (task: TileTask) => {
      seen.push(JSON.stringify(task.core));
      return runTileInProcess(task);
    };
    const result = await runTiledImage(baseOptions(plan, { runTile: recording, checkpoint }));
    const stageTiles = planStageTiles(plan.stages[1], { width: 1001, height: 667 }, 200).length;
    expect(seen).toHaveLength(stageTiles - resumedFrom!.doneTiles.length);
    expect(new Set(seen).size).toBe(seen.length);
    expect(await difference(result.data, (await runWhole(garden, pipeline)).output)).toBe('identical');
    expect(checkpoint.saved.at(-1)).toMatchObject({ stage: plan.stages.length, doneTiles: [] });
  });

  test('cancellation stops handing out tiles and rejects with the abort reason', async () => {
    const plan = tiledPlan([{ op: 'blur', sigma: 1 }], 100);
    const controller = new AbortController();
    let started = 0;
    const runTile = async (task: TileTask) => {
      if (++started === 3) controller.abort(new Error('job canceled'));
      return runTileInProcess(task);
    };
    const run = runTiledImage(baseOptions(plan, { runTile, signal: controller.signal, concurrency: 2 }));
    await expect(run).rejects.toThrow('job canceled');
    // The two in flight when the abort came may finish; no third lane exists to start another.
    expect(started).toBe(3);
  });

  test('no more than `concurrency` tiles are in flight', async () => {
    const plan = tiledPlan([{ op: 'median', size: 3 }], 100);
    let inFlight = 0;
    let most = 0;
    let releaseFirstThree!: () => void;
    const firstThree = new Promise<void>((resolve) => (releaseFirstThree = resolve));
    const runTile = async (task: TileTask) => {
      most = Math.max(most, ++inFlight);
      // Hold the first tiles until three are in flight, so a fourth would show if the bound leaked.
      if (inFlight === 3) releaseFirstThree();
      await firstThree;
      try {
        return await runTileInProcess(task);
      } finally {
        inFlight--;
      }
    };
    await runTiledImage(baseOptions(plan, { runTile, concurrency: 3 }));
    expect(most).toBe(3);
  });

  test('a failing tile fails the run with its error and leaves no intermediate growing', async () => {
    const plan = tiledPlan([{ op: 'blur', sigma: 1 }], 100);
    const runTile = async () => {
      throw new Error('worker 10.0.0.7 answered 500');
    };
    await expect(runTiledImage(baseOptions(plan, { runTile }))).rejects.toThrow('worker 10.0.0.7 answered 500');
  });

  test('an upload that breaks off is reported by its name', async () => {
    const whole = await readFile(garden);
    const truncated = join(workDir, 'upload-1');
    await writeFile(truncated, whole.subarray(0, Math.floor(whole.length * 0.6)));
    const plan = tiledPlan([{ op: 'invert' }], 256);
    const run = runTiledImage(baseOptions(plan, { source: truncated, name: 'garden.png' }));
    await expect(run).rejects.toBeInstanceOf(InputError);
    await expect(run).rejects.toThrow(/^garden.png: /);
  });

  test('progress reports every tile of every stage', async () => {
    const plan = tiledPlan([{ op: 'equalize' }, { op: 'flop' }], 300);
    const reports: string[] = [];
    await runTiledImage(baseOptions(plan, { onProgress: (p) => reports.push(`${p.stage}/${p.stages}:${p.done}/${p.total}`) }));
    expect(reports.at(0)).toBe('0/2:0/6');
    expect(reports).toContain('0/2:6/6');
    expect(reports.at(-1)).toBe('1/2:6/6');
    expect(await readdir(workDir)).toEqual(['stage-2.v']);
  });

  test('QR texts from a whole-image stage come back as annotations; JPEG output has the right size', async () => {
    const photo = corpus('qr-on-photo.jpg');
    const result = await runTiled(photo, [{ op: 'blur', sigma: 0.5 }, { op: 'qr' }, { op: 'flip' }], 256);
    expect(result.annotations.qr).toEqual(['DIPS test: tile 42 of 100']);
    expect(result.plan.stages.map((stage) => stage.whole)).toEqual([false, true, false]);
    const plan = planImage({ width: 1400, height: 875, channels: 3 }, parsePipeline([{ op: 'invert' }]), { tileSize: 512 });
    const jpeg = await runTiledImage(baseOptions(plan as TiledPlan, { source: photo, output: { format: 'jpeg', quality: 80 } }));
    expect(await sharp(jpeg.data).metadata()).toMatchObject({ format: 'jpeg', width: 1400, height: 875 });
  });
});

describe('Intermediate', () => {
  test('rectangles written at a position read back, and sharp sees the same pixels', async () => {
    const path = join(workDir, 'grey-alpha.v');
    const file = await Intermediate.create(path, { width: 7, height: 5 }, 2);
    const samples = Buffer.from([...Array(3 * 2 * 2).keys()].map((i) => 10 + i));
    const patch = { data: samples, width: 3, height: 2, channels: 2 as const };
    await file.write(patch, { x: 4, y: 3 });
    expect(await file.read({ x: 4, y: 3, width: 3, height: 2 })).toEqual(patch);
    await file.close();
    const { data, info } = await sharp(path).extractChannel('alpha').raw().toBuffer({ resolveWithObject: true });
    expect(info).toMatchObject({ width: 7, height: 5, channels: 1 });
    expect(data[4 * 7 + 6]).toBe(patch.data[2 * 3 * 2 - 1]);
  });

  test('refuses a file that is not an 8-bit .v image, and rectangles outside it', async () => {
    await expect(Intermediate.open(garden)).rejects.toThrow(/is not a little-endian libvips .v file/);
    const file = await Intermediate.create(join(workDir, 'rgb.v'), { width: 10, height: 10 }, 3);
    await expect(file.read({ x: 5, y: 5, width: 6, height: 1 })).rejects.toThrow(/6x1 at 5,5 is outside the 10x10 image/);
    await file.close();
  });
});

describe('tile wire format', () => {
  const task: TileTask = {
    steps: [{ op: 'blur', sigma: 2 }],
    tile: { data: Buffer.from([1, 2, 3, 4, 5, 6]), width: 2, height: 1, channels: 3 },
    source: { x: 10, y: 20, width: 2, height: 1 },
    imageSize: { width: 100, height: 100 },
    core: { x: 10, y: 20, width: 1, height: 1 },
    histogram: Uint32Array.from([7, 8, 9]),
    returnCore: true,
  };

  test('a task and a result survive the round trip', () => {
    expect(decodeTileTask(Buffer.concat(encodeTileTask(task)))).toEqual(task);
    const result = { core: task.tile, histogram: Uint32Array.from([1, 2]), annotations: { qr: ['hello'] } };
    expect(decodeTileResult(Buffer.concat(encodeTileResult(result)))).toEqual(result);
  });

  test('damaged messages are rejected saying what is wrong', () => {
    const bytes = Buffer.concat(encodeTileTask(task));
    expect(() => decodeTileTask(bytes.subarray(0, bytes.length - 1))).toThrow(/declares 2x1x3 pixels \(6 bytes\) but carries 5/);
    expect(() => decodeTileTask(Buffer.from('GET / HTTP/1.1'))).toThrow(TileWireError);
    expect(() => decodeTileResult(bytes)).toThrow(/expected it to start with "DPR1"/);
    const badHeader = Buffer.concat(encodeTileTask({ ...task, source: { ...task.source, x: -1 } }));
    expect(() => decodeTileTask(badHeader)).toThrow(/source.x/);
  });
});

describe('executeTileTask', () => {
  const tile = { data: Buffer.alloc(8 * 8 * 3, 90), width: 8, height: 8, channels: 3 as const };
  const task: TileTask = {
    steps: [{ op: 'invert' }, { op: 'flip' }],
    tile,
    source: { x: 0, y: 0, width: 8, height: 8 },
    imageSize: { width: 8, height: 16 },
    core: { x: 0, y: 8, width: 8, height: 8 },
    returnCore: true,
  };

  test('runs the steps through the shared step loop, tracking where a pixel move carries the tile', async () => {
    const result = await executeTileTask(task);
    expect(result.core).toMatchObject({ width: 8, height: 8, channels: 3 });
    expect([...result.core!.data.subarray(0, 3)]).toEqual([165, 165, 165]);
  });

  test('an aborted task stops with the abort reason', async () => {
    const reason = new Error('abandoned by the master');
    await expect(executeTileTask(task, AbortSignal.abort(reason))).rejects.toBe(reason);
  });
});
