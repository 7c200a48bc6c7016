import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { operations } from '../../services/image-core/catalogue.js';
import { openInput } from '../../services/image-core/decode.js';
import { parsePipeline } from '../../services/image-core/pipeline.js';
import { fusionOf, processImage } from '../../services/image-core/process-image.js';
import { corpus, difference, MAX_PIXELS, runWhole, sampleParams } from './tiling-support.js';

/** processImage fuses sharp-native steps with decode and encode; the pixels must not change for it. */
const options = (name: string) => ({ maxPixels: MAX_PIXELS, name });
const inputs: Record<string, string> = {};
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dips-fusion-'));
  const region = sharp(corpus('wood.jpg')).extract({ left: 300, top: 120, width: 203, height: 151 });
  const write = async (name: string, image: Sharp) => {
    inputs[name] = join(dir, name);
    await image.toFile(inputs[name]);
  };
  await write('rgb.png', region.clone().png());
  await write('grey.png', region.clone().toColourspace('b-w').png());
  const alpha = await sharp(corpus('storm.jpg')).extract({ left: 0, top: 0, width: 203, height: 151 }).grayscale().raw().toBuffer();
  await write('rgba.png', region.clone().joinChannel(alpha, { raw: { width: 203, height: 151, channels: 1 } }).png());
  await write('16bit.png', region.clone().toColourspace('rgb16').png());
  await write('photo.webp', region.clone().webp({ quality: 90 }));
  await write('rotated.jpg', region.clone().jpeg().withMetadata({ orientation: 6 }));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const native = operations.filter((op) => op.sharp !== undefined);
const cases = native.flatMap((op) => (sampleParams[op.name] ?? [{}]).map((params) => [{ op: op.name, ...params }]));
const pipelines = [
  [],
  [{ op: 'grayscale' }, { op: 'sharpen' }],
  [{ op: 'blur', sigma: 1.5 }, { op: 'invert' }, { op: 'median', size: 3 }],
  [{ op: 'sharpen', sigma: 1 }, { op: 'blur', sigma: 2 }],
  [{ op: 'flip' }, { op: 'modulate', hue: 90 }],
  [{ op: 'rotate', angle: 90 }, { op: 'gamma' }, { op: 'convolve' }],
];

describe('processImage gives the pixels of the step-by-step run', () => {
  test.each(['rgb.png', 'grey.png', 'rgba.png', '16bit.png', 'photo.webp', 'rotated.jpg'])(
    'on %s, for every sharp-native operation and multi-step pipelines',
    async (name) => {
      const failures: string[] = [];
      // JPEG and WebP load already shrunk for a leading resize (shrink-on-load), by design: see below.
      const shrinksOnLoad = /\.(jpg|webp)$/.test(name);
      for (const pipeline of [...cases, ...pipelines]) {
        if (shrinksOnLoad && pipeline[0]?.op === 'resize') continue;
        const fused = await processImage(inputs[name], parsePipeline(pipeline), { format: 'png' }, options(name));
        const verdict = await difference(fused.data, (await runWhole(inputs[name], pipeline)).output);
        if (verdict !== 'identical') failures.push(`${JSON.stringify(pipeline)}: ${verdict}`);
      }
      expect(failures).toEqual([]);
    },
  );

  test('a one-step pipeline runs as one sharp call; the middle steps get raw pixels', async () => {
    const opened = await openInput(inputs['rgb.png'], options('rgb.png'));
    expect(fusionOf(parsePipeline([{ op: 'blur' }]), opened)).toEqual({ withDecode: 1, withEncode: 0 });
    expect(fusionOf(parsePipeline([{ op: 'blur' }, { op: 'invert' }, { op: 'sharpen' }]), opened)).toEqual({ withDecode: 1, withEncode: 1 });
    const oriented = await openInput(inputs['rotated.jpg'], options('rotated.jpg'));
    expect(fusionOf(parsePipeline([{ op: 'blur' }]), oriented)).toEqual({ withDecode: 0, withEncode: 1 });
  });

  test.each([
    [{ op: 'resize', width: 350 }, { width: 350 }],
    [{ op: 'resize', width: 300, height: 300, fit: 'cover' }, { width: 300, height: 300, fit: 'cover' as const }],
  ])('a JPEG %j uses shrink-on-load: the result is what sharp itself gives', async (step, resize) => {
    const ours = await processImage(corpus('ladybird.jpg'), parsePipeline([step]), { format: 'png' }, options('ladybird.jpg'));
    const plain = await sharp(corpus('ladybird.jpg')).resize(resize).png().toBuffer();
    expect(await difference(ours.data, plain)).toBe('identical');
  });

  test('shrink-on-load is real: a quarter-size JPEG resize differs from resizing the decoded pixels', async () => {
    const step = { op: 'resize', width: 350 };
    const ours = await processImage(corpus('ladybird.jpg'), parsePipeline([step]), { format: 'png' }, options('ladybird.jpg'));
    expect(await difference(ours.data, (await runWhole(corpus('ladybird.jpg'), [step])).output)).not.toBe('identical');
  });
});
