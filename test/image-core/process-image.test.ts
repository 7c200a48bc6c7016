import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, InputError } from '../../services/image-core/decode.js';
import { parsePipeline, runSteps } from '../../services/image-core/pipeline.js';
import { processImage } from '../../services/image-core/process-image.js';
import { corpus } from '../helpers/api.js';

const options = (name: string) => ({ maxPixels: 10_000_000, name });
let dir: string;
let pngPath: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dips-process-'));
  pngPath = join(dir, 'wood.png');
  await sharp(corpus('wood.jpg')).extract({ left: 200, top: 100, width: 300, height: 200 }).png().toFile(pngPath);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('processImage', () => {
  it('gives the pixels of decode + runSteps, in the input format by default', async () => {
    const steps = parsePipeline([{ op: 'blur', sigma: 1.5 }, { op: 'grayscale' }, { op: 'threshold', value: 'otsu' }]);
    const result = await processImage(pngPath, steps, {}, options('wood.png'));
    expect(result.format).toBe('png');
    expect((await sharp(result.data).metadata()).format).toBe('png');
    const expected = (await runSteps(await decodeImage(pngPath, options('wood.png')), steps)).image;
    const decoded = await decodeImage(result.data, options('result.png'));
    expect([result.width, result.height]).toEqual([expected.width, expected.height]);
    expect(decoded.data.equals(expected.data)).toBe(true);
    expect(result.annotations).toEqual({});
  });

  it('writes the requested format and quality', async () => {
    const steps = parsePipeline([{ op: 'invert' }]);
    const low = await processImage(pngPath, steps, { format: 'webp', quality: 10 }, options('wood.png'));
    const high = await processImage(pngPath, steps, { format: 'webp', quality: 90 }, options('wood.png'));
    expect(low.format).toBe('webp');
    expect((await sharp(low.data).metadata()).format).toBe('webp');
    expect(low.data.length).toBeLessThan(high.data.length);
  });

  it('reports the size after geometric steps', async () => {
    const steps = parsePipeline([{ op: 'crop', left: 10, top: 20, width: 101, height: 57 }, { op: 'median', size: 3 }]);
    const result = await processImage(pngPath, steps, {}, options('wood.png'));
    expect([result.width, result.height]).toEqual([101, 57]);
    expect((await sharp(result.data).metadata()).width).toBe(101);
  });

  it('stops when the signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('job canceled'));
    await expect(
      processImage(pngPath, parsePipeline([{ op: 'identity' }]), {}, { ...options('wood.png'), signal: controller.signal }),
    ).rejects.toThrow('job canceled');
  });

  it('rejects input it cannot decode with an InputError naming the file', async () => {
    const error = await processImage(Buffer.from('not an image'), parsePipeline([{ op: 'invert' }]), {}, options('upload.bin')).catch(
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(InputError);
    expect((error as InputError).message).toContain('upload.bin');
  });
});
