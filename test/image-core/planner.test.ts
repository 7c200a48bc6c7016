import { describe, expect, test } from 'vitest';
import { haloOf } from '../../services/image-core/operation.js';
import { parsePipeline, PipelineError } from '../../services/image-core/pipeline.js';
import { planImage, planStages, planStageTiles, stageOutputSize, type PlanOptions, type Stage } from '../../services/image-core/planner.js';
import type { Rect } from '../../services/image-core/raw-image.js';

const rgb = (width: number, height: number) => ({ width, height, channels: 3 });
const names = (stage: Stage) => stage.steps.map((step) => step.op.name);
const MiB = 1024 * 1024;

describe('planImage', () => {
  const steps = parsePipeline([{ op: 'blur', sigma: 2 }]);

  test('a photo goes whole to one worker', () => {
    expect(planImage(rgb(1920, 1080), steps)).toEqual({ mode: 'whole' });
  });

  test('a 100 MP image is tiled with tiles that fit a micro worker twice over', () => {
    const plan = planImage(rgb(12_000, 8_400), steps);
    expect(plan.mode).toBe('tiled');
    if (plan.mode !== 'tiled') return;
    const tiles = planStageTiles(plan.stages[0], { width: 12_000, height: 8_400 }, plan.tileSize);
    expect(tiles.length).toBeGreaterThanOrEqual(16);
    const largestSource = Math.max(...tiles.map(({ source }) => source.width * source.height));
    // Two tasks in flight, four channels, input + output + sharp's copies: well under 768 MiB.
    expect(2 * largestSource * 4 * 8).toBeLessThan(768 * MiB);
  });

  test('the first stage of a JPEG decodes its own rows: the fewest strips two tasks per worker can hold, at least two', () => {
    const stripsOf = (plan: ReturnType<typeof planImage>) => {
      if (plan.mode !== 'tiled') throw new Error('expected a tiled plan');
      return planStageTiles(plan.stages[0], plan.input, plan.tileSize);
    };
    const image = rgb(10_000, 10_000);
    // 100 M pixels x 3 channels x 2.5 bytes: 4 strips at 512 MiB (192 MiB a task), 2 at 1 GiB.
    const small = planImage(image, steps, { inputFormat: 'jpeg', workerMemoryBytes: 512 * MiB });
    expect(small).toMatchObject({ mode: 'tiled', stages: [{ decodes: true }] });
    expect(stripsOf(small).map(({ core }) => core!.height)).toEqual([2500, 2500, 2500, 2500]);
    expect(stripsOf(planImage(image, steps, { inputFormat: 'jpeg', workerMemoryBytes: 1024 * MiB })).length).toBe(2);
    // A further raw-pixel step in the stage needs its input and output besides: more strips.
    expect(stripsOf(planImage(image, parsePipeline([{ op: 'blur' }, { op: 'invert' }]), { inputFormat: 'jpeg', workerMemoryBytes: 1024 * MiB })).length).toBe(8);
    // WebP frames are decoded whole, an unknown format may be, a measuring or whole first stage writes no strips, after a
    // quarter turn every strip would decode all rows: a decode task first.
    for (const [pipeline, inputFormat] of [[[{ op: 'blur' }], 'webp'], [[{ op: 'blur' }], undefined], [[{ op: 'equalize' }], 'jpeg'], [[{ op: 'resize', scale: 0.9 }, { op: 'blur' }], 'jpeg'], [[{ op: 'rotate', angle: 90 }, { op: 'blur' }], 'jpeg']] as const) {
      const plan = planImage(image, parsePipeline(pipeline), inputFormat ? { inputFormat } : {});
      expect(plan.mode).toBe('tiled');
      expect(plan.mode === 'tiled' && plan.stages[0]!.decodes).toBeFalsy();
    }
  });

  test('a progressive, interlaced or EXIF-turned file gets a decode task: libvips decodes all of it before its first upright row', () => {
    const image = rgb(10_000, 10_000);
    for (const inputFormat of ['jpeg', 'png'] as const) {
      for (const wholeFirst of [{ inputProgressive: true }, { inputTurned: true }]) {
        const plan = planImage(image, steps, { inputFormat, ...wholeFirst, workerMemoryBytes: 512 * MiB });
        expect(plan, JSON.stringify(wholeFirst)).toMatchObject({ mode: 'tiled' });
        expect(plan.mode === 'tiled' && plan.stages[0]!.decodes, JSON.stringify(wholeFirst)).toBeFalsy();
      }
      expect(planImage(image, steps, { inputFormat, inputProgressive: false, inputTurned: false, workerMemoryBytes: 512 * MiB })).toMatchObject({ stages: [{ decodes: true }] });
    }
  });

  test('a baseline JPEG output is encoded by the last stage\'s strips, in bands of whole restart intervals', () => {
    const image = rgb(10_000, 10_000);
    const planned = (output: PlanOptions['output'], options = {}) => {
      const plan = planImage(image, steps, { inputFormat: 'jpeg', inputPlain: true, workerMemoryBytes: 512 * MiB, output, ...options });
      if (plan.mode !== 'tiled') throw new Error('expected a tiled plan');
      return { restart: plan.stages.at(-1)!.restart, cores: planStageTiles(plan.stages[0], plan.input, plan.tileSize).map(({ core }) => core!) };
    };
    // A blur on a plain upload runs in the decode call and streams each strip through a scratch file (1.2
    // bytes a sample): 2 strips of about 5000 rows.
    // 625 MCUs of 16x16 a row: an interval holds at most 104 MCU rows (1664), so each strip gets 3 pieces
    // of 104 MCU rows; the 16 rows left at the bottom join the last strip.
    const jpeg = planned({ format: 'jpeg' });
    expect(jpeg.restart).toEqual({ pieceRows: 1664, stripRows: 4992 });
    expect(jpeg.cores.map(({ y, height }) => [y, height])).toEqual([[0, 4992], [4992, 5008]]);
    // 4:4:4: 8x8 MCUs, 1250 a row, at most 52 MCU rows an interval: 13 pieces of 49 MCU rows (392) a strip.
    expect(planned({ format: 'jpeg', chromaSubsampling: '4:4:4' }).restart).toEqual({ pieceRows: 392, stripRows: 5096 });
    for (const output of [{ format: 'jpeg', progressive: true }, { format: 'png' }, { format: 'webp' }, undefined] as const) {
      expect(planned(output).restart).toBeUndefined();
    }
    // A step that is not one sharp call (invert), or a blur of an upload that is not plain (decoded to raw
    // pixels first), holds the strip's raw pixels, 2.5 bytes a sample: 4 strips; a second step 8 more: 16.
    // PNG output has no pieces to encode from a file: 4 strips.
    const cases = [
      [[{ op: 'invert' }], { format: 'jpeg' }, true, 4],
      [[{ op: 'blur' }], { format: 'jpeg' }, false, 4],
      [[{ op: 'blur' }, { op: 'blur' }], { format: 'jpeg' }, true, 16],
      [[{ op: 'blur' }], { format: 'png' }, true, 4],
    ] as const;
    for (const [pipeline, output, inputPlain, strips] of cases) {
      const plan = planImage(image, parsePipeline(pipeline), { inputFormat: 'jpeg', inputPlain, workerMemoryBytes: 512 * MiB, output });
      if (plan.mode !== 'tiled') throw new Error('expected a tiled plan');
      expect(plan.stages[0]).toMatchObject({ decodes: true });
      expect(planStageTiles(plan.stages[0], plan.input, plan.tileSize).length).toBe(strips);
    }
    // Strips thinner than an MCU (a forced tiny tile size) cannot be whole intervals: one encode task.
    expect(planned({ format: 'jpeg' }, { tileSize: 100 }).restart).toBeUndefined();
  });

  test('less worker memory means tiling sooner and smaller tiles', () => {
    expect(planImage(rgb(4000, 3000), steps).mode).toBe('whole');
    const small = planImage(rgb(4000, 3000), steps, { workerMemoryBytes: 256 * MiB });
    expect(small.mode).toBe('tiled');
    const big = planImage(rgb(20_000, 20_000), steps);
    const tight = planImage(rgb(20_000, 20_000), steps, { workerMemoryBytes: 128 * MiB });
    if (big.mode !== 'tiled' || tight.mode !== 'tiled') throw new Error('expected tiled plans');
    expect(tight.tileSize).toBeLessThan(big.tileSize);
  });

  test('a forced tile size tiles any image larger than one tile, and only those', () => {
    expect(planImage(rgb(300, 200), steps, { tileSize: 256 })).toMatchObject({ mode: 'tiled', tileSize: 256 });
    expect(planImage(rgb(256, 256), steps, { tileSize: 256 })).toEqual({ mode: 'whole' });
  });
});

describe('planImage budgets by the largest image the pipeline makes (#17)', () => {
  const tiny = { width: 32, height: 32, channels: 3 };

  test('an upscale of a small upload followed by a filter is tiled; the filter alone, or the upscale alone, is not', () => {
    expect(planImage(tiny, parsePipeline([{ op: 'resize', width: 6000, height: 6000 }, { op: 'blur' }]))).toMatchObject({ mode: 'tiled' });
    expect(planImage(tiny, parsePipeline([{ op: 'blur' }]))).toEqual({ mode: 'whole' });
    expect(planImage(tiny, parsePipeline([{ op: 'resize', width: 6000, height: 6000 }]))).toEqual({ mode: 'whole' });
  });

  test('a large photo shrunk first runs whole; one shrunk only a little is tiled after the resize', () => {
    const [photo, workerMemoryBytes] = [rgb(12_000, 8_400), 2 * 1024 ** 3];
    expect(planImage(photo, parsePipeline([{ op: 'resize', width: 1600 }, { op: 'sharpen' }]), { workerMemoryBytes })).toEqual({ mode: 'whole' });
    const plan = planImage(photo, parsePipeline([{ op: 'resize', scale: 0.8 }, { op: 'sharpen' }]), { workerMemoryBytes });
    expect(plan.mode === 'tiled' && plan.stages.map((stage) => stage.whole)).toEqual([true, false]);
  });

  test('a whole-image step that no worker could hold is refused', () => {
    const steps = parsePipeline([{ op: 'resize', width: 16_383, height: 16_383 }]);
    expect(() => planImage(tiny, steps)).toThrow(PipelineError);
    expect(() => planImage(tiny, steps)).toThrow(/resize run on the whole image.*MiB/);
    expect(() => planImage(tiny, steps, { workerMemoryBytes: 16 * 1024 ** 3 })).not.toThrow();
  });

  test('an intermediate over the pixel limit is refused, naming the step', () => {
    const steps = parsePipeline([{ op: 'rotate', angle: 90 }, { op: 'resize', scale: 4 }, { op: 'crop', left: 0, top: 0, width: 10, height: 10 }]);
    expect(() => planImage(rgb(4000, 3000), steps, { maxPixels: 100_000_000 })).toThrow(/step 2 \(resize\) makes a 12000x16000 image/);
  });

  test.each([
    [1, 100_000_000],
    [100_000_000, 1],
  ])('a %ix%i image makes a sane number of tiles of bounded area', (width, height) => {
    const plan = planImage({ width, height, channels: 1 }, parsePipeline([{ op: 'blur', sigma: 2 }]));
    if (plan.mode !== 'tiled') throw new Error('expected a tiled plan');
    const tiles = planStageTiles(plan.stages[0], { width, height }, plan.tileSize);
    expect(tiles.length).toBeGreaterThanOrEqual(8);
    expect(tiles.length).toBeLessThanOrEqual(64);
    for (const { core } of tiles) expect(core!.width * core!.height).toBeLessThan(2 * plan.tileSize ** 2);
  });
});

describe('planStages', () => {
  const stagesOf = (pipeline: unknown) => planStages(parsePipeline(pipeline));

  test('local steps fuse into one stage whose halo is the sum of theirs', () => {
    const [stage, ...rest] = stagesOf([{ op: 'blur', sigma: 2 }, { op: 'grayscale' }, { op: 'median', size: 5 }]);
    expect(rest).toHaveLength(0);
    expect(names(stage)).toEqual(['blur', 'grayscale', 'median']);
    expect(stage.halo).toBe(stage.steps.reduce((sum, step) => sum + haloOf(step.op.tiling, step.params), 0));
    expect(stage.whole).toBe(false);
  });

  test('a statistics step ends a stage that returns histograms and starts one that applies the merged histogram', () => {
    const stages = stagesOf([{ op: 'blur', sigma: 2 }, { op: 'grayscale' }, { op: 'threshold', value: 'otsu' }]);
    expect(stages.map(names)).toEqual([['blur', 'grayscale'], ['threshold']]);
    expect(stages[0].histogramFor?.op.name).toBe('threshold');
    expect(stages[1]).toMatchObject({ leadingStatistics: true, whole: false });
  });

  test('a leading statistics step gets a measuring stage without steps', () => {
    const stages = stagesOf([{ op: 'equalize' }, { op: 'erode' }]);
    expect(stages.map(names)).toEqual([[], ['equalize', 'erode']]);
    expect(stages[0].histogramFor?.op.name).toBe('equalize');
  });

  test('exact pixel moves tile with the local steps; resampling and whole-image steps run whole', () => {
    const stages = stagesOf([
      { op: 'flip' },
      { op: 'blur', sigma: 1 },
      { op: 'rotate', angle: 90 },
      { op: 'resize', scale: 0.5 },
      { op: 'qr' },
      { op: 'equalize' },
      { op: 'crop', left: 0, top: 0, width: 10, height: 10 },
      { op: 'rotate', angle: 45 },
    ]);
    expect(stages.map((stage) => [names(stage), stage.whole])).toEqual([
      [['flip', 'blur', 'rotate'], false],
      [['resize', 'qr', 'equalize'], true],
      [['crop'], false],
      [['rotate'], true],
    ]);
  });
});

describe('planStageTiles', () => {
  const covered = (rects: Rect[], width: number, height: number) => {
    const hits = new Uint8Array(width * height);
    for (const r of rects) {
      for (let y = r.y; y < r.y + r.height; y++) for (let x = r.x; x < r.x + r.width; x++) hits[y * width + x]++;
    }
    return { missing: hits.filter((h) => h === 0).length, twice: hits.filter((h) => h > 1).length };
  };

  test('cores are full-width strips that cover the output exactly once; a sliver joins its neighbour', () => {
    const [stage] = planStages(parsePipeline([{ op: 'blur', sigma: 2 }]));
    const tiles = planStageTiles(stage, { width: 1001, height: 667 }, 100);
    expect(covered(tiles.map((t) => t.core!), 1001, 667)).toEqual({ missing: 0, twice: 0 });
    // 100² pixels of 1001-wide rows: strips of 9 rows, or the halo + 1 if more; a short last strip joins the one before.
    expect(tiles.every((t) => t.core!.x === 0 && t.core!.width === 1001)).toBe(true);
    expect(tiles.map((t) => t.core!.height).sort((a, b) => a - b).slice(0, 2)).toEqual([Math.max(9, stage.halo + 1), Math.max(9, stage.halo + 1)]);
    expect(Math.max(...tiles.map((t) => t.core!.height))).toBeLessThan(2 * Math.max(9, stage.halo + 1));
  });

  test('sources are the cores grown by the halo and clipped to the image', () => {
    const [stage] = planStages(parsePipeline([{ op: 'blur', sigma: 2 }, { op: 'median', size: 5 }]));
    const tiles = planStageTiles(stage, { width: 500, height: 300 }, 128);
    for (const { core, source } of tiles) {
      const x = Math.max(0, core!.x - stage.halo);
      const y = Math.max(0, core!.y - stage.halo);
      expect(source).toEqual({
        x,
        y,
        width: Math.min(500, core!.x + core!.width + stage.halo) - x,
        height: Math.min(300, core!.y + core!.height + stage.halo) - y,
      });
    }
  });

  test('through crop, flop and a quarter turn, the sources are the moved cores inside the crop', () => {
    const [stage] = planStages(
      parsePipeline([{ op: 'crop', left: 40, top: 30, width: 400, height: 200 }, { op: 'flop' }, { op: 'rotate', angle: 90 }]),
    );
    expect(stageOutputSize(stage, { width: 500, height: 300 })).toEqual({ width: 200, height: 400 });
    const tiles = planStageTiles(stage, { width: 500, height: 300 }, 64);
    expect(covered(tiles.map((t) => t.core!), 200, 400)).toEqual({ missing: 0, twice: 0 });
    const sources = tiles.map((t) => t.source);
    for (const s of sources) expect(s.x >= 40 && s.y >= 30 && s.x + s.width <= 440 && s.y + s.height <= 230).toBe(true);
    const inCrop = covered(sources.map((s) => ({ ...s, x: s.x - 40, y: s.y - 30 })), 400, 200);
    expect(inCrop).toEqual({ missing: 0, twice: 0 });
  });

  test('a whole stage is one task over the whole input', () => {
    const [stage] = planStages(parsePipeline([{ op: 'resize', scale: 0.5 }]));
    expect(planStageTiles(stage, { width: 900, height: 700 }, 64)).toEqual([
      { index: 0, source: { x: 0, y: 0, width: 900, height: 700 } },
    ]);
  });

  test('a crop that does not fit the image is reported with the image size', () => {
    const [stage] = planStages(parsePipeline([{ op: 'crop', left: 0, top: 0, width: 600, height: 10 }]));
    expect(() => planStageTiles(stage, { width: 500, height: 300 }, 64)).toThrow(/does not fit in the 500x300 image/);
  });
});
