import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { InputError, openInput } from '../../services/image-core/decode.js';
import { executeTileTask } from '../../services/image-core/execute-tile.js';
import { coreRange, headerFor, readHeader, rowsRange, writeAt } from '../../services/image-core/intermediate.js';
import { parsePipeline } from '../../services/image-core/pipeline.js';
import { planImage, planStageTiles, type TiledPlan } from '../../services/image-core/planner.js';
import { type TileJob, type TileTask } from '../../services/image-core/tile-task.js';
import { runTiledImage, type TiledRunOptions, type TiledRunState } from '../../services/image-core/tiled-run.js';
import { corpus, difference, LocalTiledWork, runTiled, runWhole } from './tiling-support.js';

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

/** The in-process work on garden-odd.png (or `source`), with `tile` wrapped by `around` when given. */
function localWork(options: { source?: string; name?: string; format?: 'png' | 'jpeg'; around?: (job: TileJob, run: () => Promise<unknown>) => Promise<unknown> } = {}) {
  const work = new LocalTiledWork(options.source ?? garden, workDir, { format: options.format ?? 'png', quality: 80 }, options.name);
  const { around } = options;
  if (around) {
    const tile = work.tile.bind(work);
    work.tile = (job, ...rest) => around(job, () => tile(job, ...rest)) as ReturnType<typeof tile>;
  }
  return work;
}

const baseOptions = (plan: TiledPlan, work: LocalTiledWork, overrides: Partial<TiledRunOptions> = {}): TiledRunOptions => ({
  plan,
  work,
  name: 'garden-odd.png',
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
    const crashing = localWork({
      // The master dies in the second stage, after its fourth tile.
      around: async (job, run) => {
        if (job.histogram && ++calls > 4) throw new Error('master process killed');
        return run();
      },
    });
    await expect(runTiledImage(baseOptions(plan, crashing, { checkpoint }))).rejects.toThrow('master process killed');
    const resumedFrom = await checkpoint.load();
    expect(resumedFrom).toMatchObject({ stage: 1 });
    expect(resumedFrom!.doneTiles.length).toBeGreaterThanOrEqual(4);

    const seen: string[] = [];
    const recording = localWork({
      around: async (job, run) => {
        seen.push(JSON.stringify(job.core));
        return run();
      },
    });
    await runTiledImage(baseOptions(plan, recording, { checkpoint }));
    const stageTiles = planStageTiles(plan.stages[1], { width: 1001, height: 667 }, 200).length;
    expect(seen).toHaveLength(stageTiles - resumedFrom!.doneTiles.length);
    expect(new Set(seen).size).toBe(seen.length);
    expect(await difference(recording.output!, (await runWhole(garden, pipeline)).output)).toBe('identical');
    expect(checkpoint.saved.at(-1)).toMatchObject({ stage: plan.stages.length, doneTiles: [] });
  });

  test('cancellation stops handing out tiles and rejects with the abort reason', async () => {
    const plan = tiledPlan([{ op: 'blur', sigma: 1 }], 100);
    const controller = new AbortController();
    let started = 0;
    const work = localWork({
      around: async (_job, run) => {
        if (++started === 3) controller.abort(new Error('job canceled'));
        return run();
      },
    });
    const run = runTiledImage(baseOptions(plan, work, { signal: controller.signal, concurrency: 2 }));
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
    const work = localWork({
      around: async (_job, run) => {
        most = Math.max(most, ++inFlight);
        // Hold the first tiles until three are in flight, so a fourth would show if the bound leaked.
        if (inFlight === 3) releaseFirstThree();
        await firstThree;
        try {
          return await run();
        } finally {
          inFlight--;
        }
      },
    });
    await runTiledImage(baseOptions(plan, work, { concurrency: 3 }));
    expect(most).toBe(3);
  });

  test('a failing tile fails the run with its error and leaves no intermediate growing', async () => {
    const plan = tiledPlan([{ op: 'blur', sigma: 1 }], 100);
    const work = localWork({
      around: async () => {
        throw new Error('worker 10.0.0.7 answered 500');
      },
    });
    await expect(runTiledImage(baseOptions(plan, work))).rejects.toThrow('worker 10.0.0.7 answered 500');
  });

  test('an upload that breaks off is reported by its name', async () => {
    const whole = await readFile(garden);
    const truncated = join(workDir, 'upload-1');
    await writeFile(truncated, whole.subarray(0, Math.floor(whole.length * 0.6)));
    const plan = tiledPlan([{ op: 'invert' }], 256);
    const run = runTiledImage(baseOptions(plan, localWork({ source: truncated, name: 'garden.png' })));
    await expect(run).rejects.toBeInstanceOf(InputError);
    await expect(run).rejects.toThrow(/^garden.png: /);
  });

  test('progress reports every tile of every stage', async () => {
    const plan = tiledPlan([{ op: 'equalize' }, { op: 'flop' }], 300);
    const reports: string[] = [];
    await runTiledImage(baseOptions(plan, localWork(), { onProgress: (p) => reports.push(`${p.stage}/${p.stages}:${p.done}/${p.total}`) }));
    // 1001x667 at tile size 300: full-width strips of 89 rows (300² / 1001), the last sliver joined.
    expect(reports.at(0)).toBe('0/2:0/7');
    expect(reports).toContain('0/2:7/7');
    expect(reports.at(-1)).toBe('1/2:7/7');
    // The measuring stage wrote nothing: stage 1 read the decoded intermediate, stage 2 wrote the last.
    expect((await readdir(workDir)).sort()).toEqual(['stage-0.v', 'stage-2.v']);
  });

  test('QR texts from a whole-image stage come back as annotations; JPEG output has the right size', async () => {
    const photo = corpus('qr-on-photo.jpg');
    const result = await runTiled(photo, [{ op: 'blur', sigma: 0.5 }, { op: 'qr' }, { op: 'flip' }], 256);
    expect(result.annotations.qr).toEqual(['DIPS test: tile 42 of 100']);
    expect(result.plan.stages.map((stage) => stage.whole)).toEqual([false, true, false]);
    const plan = planImage({ width: 1400, height: 875, channels: 3 }, parsePipeline([{ op: 'invert' }]), { tileSize: 512 });
    const work = localWork({ source: photo, format: 'jpeg' });
    await runTiledImage(baseOptions(plan as TiledPlan, work));
    expect(await sharp(work.output!).metadata()).toMatchObject({ format: 'jpeg', width: 1400, height: 875 });
  });
});

describe('a first stage that decodes its own rows', () => {
  /** garden-odd.png's pixels as a file that is not plain: a JPEG mirrored by its EXIF orientation (which libvips mirrors row by row), 16-bit PNG. */
  const sources = {
    'EXIF-mirrored JPEG (orientation 2)': (path: string) => sharp(garden).jpeg({ quality: 90 }).withMetadata({ orientation: 2 }).toFile(path),
    '16-bit PNG': (path: string) => sharp(garden).toColourspace('rgb16').png().toFile(path),
    'plain JPEG': (path: string) => sharp(garden).jpeg({ quality: 90 }).toFile(path),
  };
  test.each(Object.entries(sources))('%s: strips decode the upload, no decode task, no intermediate 0, pixels as a whole run', async (name, write) => {
    const source = join(workDir, `${name.replace(/\W+/g, '-')}.${name.includes('PNG') ? 'png' : 'jpg'}`);
    await write(source);
    const opened = await openInput(source, { maxPixels: 10_000_000, name });
    expect(opened).toMatchObject({ progressive: false, turned: false });
    const pipeline = [{ op: 'blur', sigma: 2 }, { op: 'invert' }, { op: 'equalize' }];
    const plan = planImage(opened, parsePipeline(pipeline), { tileSize: 180, inputFormat: opened.format, inputProgressive: false, inputTurned: false }) as TiledPlan;
    expect(plan.stages[0]).toMatchObject({ decodes: true });
    const decodes: TileJob[] = [];
    const work = localWork({ source, around: (job, run) => (job.decode && decodes.push(job), run()) });
    work.decode = () => Promise.reject(new Error('no decode task expected'));
    await runTiledImage(baseOptions(plan, work));
    expect(decodes.length).toBe(planStageTiles(plan.stages[0], opened, plan.tileSize).length);
    expect(decodes.length).toBeGreaterThan(2);
    expect((await readdir(workDir)).filter((file) => file.endsWith('.v')).sort()).toEqual(['stage-1.v', 'stage-2.v']);
    expect(await difference(work.output!, (await runWhole(source, pipeline)).output)).toBe('identical');
  });

  /**
   * Progressive and interlaced files, which libvips decodes whole even for their top rows, and a JPEG turned
   * by its EXIF orientation, which libvips turns whole: each strip would decode all of it.
   */
  const wholeFirst = {
    'progressive JPEG': { flags: { progressive: true, turned: false }, write: (path: string) => sharp(garden).jpeg({ quality: 90, progressive: true }).toFile(path) },
    'interlaced PNG': { flags: { progressive: true, turned: false }, write: (path: string) => sharp(garden).png({ progressive: true }).toFile(path) },
    'EXIF-turned JPEG (orientation 6)': { flags: { progressive: false, turned: true }, write: (path: string) => sharp(garden).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toFile(path) },
  };
  test.each(Object.entries(wholeFirst))('%s: one decode task, then strips of the intermediate, pixels as a whole run', async (name, { flags, write }) => {
    const source = join(workDir, `${name.replace(/\W+/g, '-')}.${name.includes('PNG') ? 'png' : 'jpg'}`);
    await write(source);
    const opened = await openInput(source, { maxPixels: 10_000_000, name });
    expect(opened).toMatchObject({ format: name.includes('PNG') ? 'png' : 'jpeg', ...flags });
    const pipeline = [{ op: 'blur', sigma: 2 }, { op: 'invert' }];
    const plan = planImage(opened, parsePipeline(pipeline), { tileSize: 180, inputFormat: opened.format, inputProgressive: opened.progressive, inputTurned: opened.turned }) as TiledPlan;
    expect(plan.stages[0]!.decodes).toBeFalsy();
    let decodeTasks = 0;
    const work = localWork({ source, around: (job, run) => (expect(job.decode).toBeUndefined(), run()) });
    const decode = work.decode.bind(work);
    work.decode = () => (decodeTasks++, decode());
    await runTiledImage(baseOptions(plan, work));
    expect(decodeTasks).toBe(1);
    expect(await difference(work.output!, (await runWhole(source, pipeline)).output)).toBe('identical');
  });

  test('a tile that finds the upload other than planned says so', async () => {
    const plan = planImage({ width: 1001, height: 667, channels: 1 }, parsePipeline([{ op: 'blur' }]), { tileSize: 300, inputFormat: 'png' }) as TiledPlan;
    await expect(runTiledImage(baseOptions(plan, localWork()))).rejects.toThrow(
      'garden-odd.png decodes to 1001x667 with 3 channels; the plan expected 1001x667 with 1',
    );
  });
});

describe('intermediates', () => {
  test('a core written at its byte range reads back, the origin core carries the header, and sharp sees the pixels', async () => {
    const path = join(workDir, 'grey-alpha.v');
    const shape = { width: 7, height: 5, channels: 2 as const };
    const strip = (rows: number, base: number) => Buffer.from([...Array(7 * rows * 2).keys()].map((i) => base + i));
    const [top, bottom] = [{ x: 0, y: 0, width: 7, height: 3 }, { x: 0, y: 3, width: 7, height: 2 }];
    // Written out of order, as tiles finish: the file is sparse until the first strip arrives.
    await writeAt(path, coreRange(shape, bottom).start, strip(2, 100));
    await writeAt(path, coreRange(shape, top).start, Buffer.concat([await headerFor(shape), strip(3, 10)]));
    expect(await readHeader(path)).toEqual(shape);
    const rows = rowsRange(shape, { x: 2, y: 3, width: 3, height: 2 });
    expect(rows.end - rows.start + 1).toBe(2 * 7 * 2);
    const { data, info } = await sharp(path).extractChannel('alpha').raw().toBuffer({ resolveWithObject: true });
    expect(info).toMatchObject({ width: 7, height: 5, channels: 1 });
    expect(data[4 * 7 + 6]).toBe(100 + 7 * 2 * 2 - 1);
  });

  test('refuses a file that is not an 8-bit .v image, and a core that is not contiguous', async () => {
    await expect(readHeader(garden)).rejects.toThrow(/is not a little-endian libvips .v file/);
    expect(() => coreRange({ width: 10, height: 10, channels: 3 }, { x: 5, y: 5, width: 5, height: 2 })).toThrow(/not contiguous/);
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
