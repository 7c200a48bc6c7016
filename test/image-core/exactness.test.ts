import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { operations } from '../../services/image-core/catalogue.js';
import { corpus, cropOf, difference, runTiled, runWhole, sampleParams } from './tiling-support.js';

const everyOperation = operations.flatMap((op) =>
  (sampleParams[op.name] ?? [{}]).map((params) => ({
    label: `${op.name} ${JSON.stringify(params)}`,
    pipeline: [{ op: op.name, ...params }],
    runsWhole: op.tiling.kind === 'whole',
  })),
);

const pipelines: Array<Array<Record<string, unknown>>> = [
  [{ op: 'blur', sigma: 2 }, { op: 'grayscale' }, { op: 'threshold', value: 'otsu' }],
  [{ op: 'equalize' }, { op: 'erode' }],
  [{ op: 'sharpen' }, { op: 'edges' }],
  [{ op: 'crop', left: 101, top: 57, width: 700, height: 500 }, { op: 'blur', sigma: 3 }],
  [{ op: 'flip' }, { op: 'median', size: 5 }],
  [{ op: 'blur', sigma: 1.5 }, { op: 'normalize' }, { op: 'dilate', size: 3, iterations: 1 }],
  [
    { op: 'rotate', angle: 90 },
    { op: 'blur', sigma: 2 },
    { op: 'flop' },
    { op: 'crop', left: 5, top: 300, width: 600, height: 333 },
    { op: 'median', size: 3 },
  ],
  [{ op: 'resize', width: 640 }, { op: 'equalize' }, { op: 'blur', sigma: 1 }],
  [{ op: 'grayscale' }, { op: 'contours' }, { op: 'blur', sigma: 1 }],
];

let dir: string;
let small: string;
let smallWithAlpha: string;
let sixteenBit: string;
let grey: string;
let sixteenBitGrey: string;
let rotatedJpeg: string;
const garden = corpus('garden-odd.png');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dips-exactness-'));
  small = await cropOf(dir, 'ladybird.jpg', { left: 311, top: 203, width: 301, height: 263 });
  // An alpha channel that varies, so ops that keep alpha are checked on it too.
  smallWithAlpha = join(dir, 'wood-alpha.png');
  const rgb = sharp(corpus('wood.jpg')).extract({ left: 400, top: 100, width: 279, height: 261 });
  const alpha = await sharp(corpus('storm.jpg'))
    .extract({ left: 0, top: 0, width: 279, height: 261 })
    .grayscale()
    .raw()
    .toBuffer();
  await rgb.joinChannel(alpha, { raw: { width: 279, height: 261, channels: 1 } }).png().toFile(smallWithAlpha);
  const dune = sharp(corpus('dune.jpg')).extract({ left: 200, top: 150, width: 283, height: 199 });
  sixteenBit = join(dir, 'dune-16bit.png');
  await dune.clone().toColourspace('rgb16').png().toFile(sixteenBit);
  grey = join(dir, 'dune-grey.png');
  await dune.clone().toColourspace('b-w').png().toFile(grey);
  sixteenBitGrey = join(dir, 'dune-grey16.png');
  await dune.clone().toColourspace('grey16').png().toFile(sixteenBitGrey);
  rotatedJpeg = join(dir, 'dune-orientation-6.jpg');
  await dune.clone().jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toFile(rotatedJpeg);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The whole-image reference, computed once per image and pipeline: several tile sizes compare against it. */
const references = new Map<string, Promise<Buffer>>();
function reference(image: string, pipeline: unknown): Promise<Buffer> {
  const key = `${image}\0${JSON.stringify(pipeline)}`;
  if (!references.has(key)) references.set(key, runWhole(image, pipeline).then((whole) => whole.output));
  return references.get(key)!;
}

describe('a tiled run gives the pixels of a whole-image run', () => {
  describe.each([64, 100, 257])('tile size %i', (tileSize) => {
    // An operation that runs whole gets the assembled image whatever the tile size: one tile size (and the
    // alpha case below) shows the tiled run hands it the same pixels. blurfaces alone costs ~2 s a case.
    // At 257 one strip would hold the whole 301x263 crop (257² pixels are 219 of its rows, and the 44 left
    // join them): that size runs on the larger photo.
    const onCrop = tileSize < 257;
    const image = () => (onCrop ? small : garden);
    test.each(everyOperation.filter((each) => tileSize === 64 || !each.runsWhole))(`$label on ${onCrop ? 'a 301x263 photo crop' : 'garden-odd.png (1001x667)'}`, async ({ pipeline }) => {
      const tiled = await runTiled(image(), pipeline, tileSize);
      expect(await difference(tiled.output, await reference(image(), pipeline))).toBe('identical');
    });
  });

  test.each(everyOperation)('$label on an image with alpha, tile size 100', async ({ pipeline }) => {
    const tiled = await runTiled(smallWithAlpha, pipeline, 100);
    expect(await difference(tiled.output, await reference(smallWithAlpha, pipeline))).toBe('identical');
  });

  test.each([
    ['a 16-bit RGB', () => sixteenBit],
    ['a grey', () => grey],
  ])('%s upload, tile size 64', async (_kind, image) => {
    const pipeline = [{ op: 'blur', sigma: 2 }, { op: 'rotate', angle: 270 }, { op: 'equalize' }, { op: 'sharpen' }];
    const tiled = await runTiled(image(), pipeline, 64);
    expect(await difference(tiled.output, await reference(image(), pipeline))).toBe('identical');
  });

  describe.each([100, 257])('pipelines on garden-odd.png (1001x667), tile size %i', (tileSize) => {
    test.each(pipelines.map((pipeline) => ({ label: pipeline.map((step) => step.op).join(' > '), pipeline })))(
      '$label',
      async ({ pipeline }) => {
        const tiled = await runTiled(garden, pipeline, tileSize);
        expect(await difference(tiled.output, await reference(garden, pipeline))).toBe('identical');
      },
    );
  });

  describe('JPEG output, encoded by the last stage\'s strips in restart intervals', () => {
    test.each([
      { label: 'blur, 4:2:0 q90, tile size 257', image: () => garden, pipeline: [{ op: 'blur', sigma: 2 }], tileSize: 257, encoding: {} },
      { label: 'blur, 4:4:4 q75, tile size 257', image: () => garden, pipeline: [{ op: 'blur', sigma: 2 }], tileSize: 257, encoding: { quality: 75, chromaSubsampling: '4:4:4' as const } },
      { label: 'sharpen > equalize > flop > median (two stages)', image: () => garden, pipeline: [{ op: 'sharpen' }, { op: 'equalize' }, { op: 'flop' }, { op: 'median', size: 3 }], tileSize: 257, encoding: {} },
      { label: 'grayscale > blur (one component)', image: () => garden, pipeline: [{ op: 'grayscale' }, { op: 'blur', sigma: 1 }], tileSize: 100, encoding: {} },
      { label: 'blur on a grey upload (its strips stream through a scratch file)', image: () => grey, pipeline: [{ op: 'blur', sigma: 2 }], tileSize: 100, encoding: {} },
      // Uploads that are not plain: the strips decode to raw pixels, run the step on those and encode their core.
      { label: 'blur on an EXIF-rotated JPEG upload', image: () => rotatedJpeg, pipeline: [{ op: 'blur', sigma: 2 }], tileSize: 100, encoding: {} },
      { label: 'blur on a 16-bit RGB upload', image: () => sixteenBit, pipeline: [{ op: 'blur', sigma: 2 }], tileSize: 100, encoding: {} },
      { label: 'median on a 16-bit grey upload', image: () => sixteenBitGrey, pipeline: [{ op: 'median', size: 5 }], tileSize: 100, encoding: {} },
      { label: 'blur on an image with alpha (flattened)', image: () => smallWithAlpha, pipeline: [{ op: 'blur', sigma: 1 }], tileSize: 100, encoding: {} },
      { label: 'edges > blur (after a whole stage)', image: () => small, pipeline: [{ op: 'edges' }, { op: 'blur', sigma: 1 }], tileSize: 100, encoding: { quality: 50 } },
    ])('$label', async ({ image, pipeline, tileSize, encoding }) => {
      const jpeg = { format: 'jpeg' as const, ...encoding };
      const tiled = await runTiled(image(), pipeline, tileSize, {}, jpeg);
      const last = tiled.plan.stages.at(-1)!;
      expect(last.restart, 'the last stage encodes the JPEG').toBeDefined();
      expect(tiled.output.includes(Buffer.from([0xff, 0xd0])), 'a restart marker between strips').toBe(true);
      const whole = await runWhole(image(), pipeline, jpeg);
      expect(await difference(tiled.output, whole.output)).toBe('identical');
    });

    test('a progressive JPEG is still one encode of the last intermediate', async () => {
      const pipeline = [{ op: 'blur', sigma: 2 }];
      const jpeg = { format: 'jpeg' as const, progressive: true };
      const tiled = await runTiled(garden, pipeline, 257, {}, jpeg);
      expect(tiled.plan.stages.at(-1)!.restart).toBeUndefined();
      expect(await difference(tiled.output, (await runWhole(garden, pipeline, jpeg)).output)).toBe('identical');
    });
  });
});
