import { beforeAll, describe, expect, test } from 'vitest';
import { decodeImage } from '../../services/image-core/decode.js';
import { parsePipeline, PipelineError, runSteps } from '../../services/image-core/pipeline.js';
import { toGrey } from '../../services/image-core/operations/grayscale.js';
import { extractRect } from '../../services/image-core/pixel-move.js';
import type { RawImage } from '../../services/image-core/raw-image.js';
import { corpus } from './tiling-support.js';

let photo: RawImage;
beforeAll(async () => {
  photo = await decodeImage(corpus('garden-odd.png'), { maxPixels: 10_000_000, name: 'garden-odd.png' });
});

const run = async (image: RawImage, step: Record<string, unknown>) => (await runSteps(image, parsePipeline([step]))).image;

/** The samples of pixel (x, y). */
const pixel = (image: RawImage, x: number, y: number) => {
  const at = (y * image.width + x) * image.channels;
  return [...image.data.subarray(at, at + image.channels)];
};

/** How many pixels of `output` differ from the input pixel that `source` says they came from. */
function misplaced(output: RawImage, input: RawImage, source: (x: number, y: number) => [number, number]): number {
  let count = 0;
  const { channels } = output;
  for (let y = 0; y < output.height; y++) {
    for (let x = 0; x < output.width; x++) {
      const [sx, sy] = source(x, y);
      const from = (sy * input.width + sx) * channels;
      const to = (y * output.width + x) * channels;
      for (let c = 0; c < channels; c++) {
        if (output.data[to + c] !== input.data[from + c]) {
          count++;
          break;
        }
      }
    }
  }
  return count;
}

describe('pixel moves', () => {
  test('flip mirrors top to bottom, flop left to right', async () => {
    const { width, height } = photo;
    const flipped = await run(photo, { op: 'flip' });
    const flopped = await run(photo, { op: 'flop' });
    expect([flipped.width, flipped.height, flopped.width, flopped.height]).toEqual([width, height, width, height]);
    expect(misplaced(flipped, photo, (x, y) => [x, height - 1 - y])).toBe(0);
    expect(misplaced(flopped, photo, (x, y) => [width - 1 - x, y])).toBe(0);
  });

  test.each([
    { angle: 90, source: (x: number, y: number, _w: number, h: number) => [y, h - 1 - x] },
    { angle: -270, source: (x: number, y: number, _w: number, h: number) => [y, h - 1 - x] },
    { angle: 180, source: (x: number, y: number, w: number, h: number) => [w - 1 - x, h - 1 - y] },
    { angle: 270, source: (x: number, y: number, w: number) => [w - 1 - y, x] },
    { angle: -90, source: (x: number, y: number, w: number) => [w - 1 - y, x] },
  ])('rotate $angle turns clockwise by that angle', async ({ angle, source }) => {
    const { width, height } = photo;
    const rotated = await run(photo, { op: 'rotate', angle });
    const quarter = Math.abs(angle) % 180 === 90;
    expect([rotated.width, rotated.height]).toEqual(quarter ? [height, width] : [width, height]);
    expect(misplaced(rotated, photo, (x, y) => source(x, y, width, height) as [number, number])).toBe(0);
  });

  test('crop keeps exactly the rectangle', async () => {
    const cropped = await run(photo, { op: 'crop', left: 101, top: 57, width: 333, height: 211 });
    expect([cropped.width, cropped.height]).toEqual([333, 211]);
    expect(misplaced(cropped, photo, (x, y) => [x + 101, y + 57])).toBe(0);
  });

  test('crop reaching outside the image is an error naming the image size', async () => {
    await expect(run(photo, { op: 'crop', left: 900, top: 0, width: 200, height: 100 })).rejects.toThrow(
      /crop: .*200x100 at left 900, top 0 does not fit in the 1001x667 image/,
    );
    await expect(run(photo, { op: 'crop', left: 900, top: 0, width: 200, height: 100 })).rejects.toBeInstanceOf(PipelineError);
  });
});

describe('resampling', () => {
  test('rotate by an angle that is not a quarter turn enlarges the canvas and fills the corners black', async () => {
    const rotated = await run(photo, { op: 'rotate', angle: 30 });
    const radians = Math.PI / 6;
    const expectedWidth = photo.width * Math.cos(radians) + photo.height * Math.sin(radians);
    expect(Math.abs(rotated.width - expectedWidth)).toBeLessThanOrEqual(2);
    expect(pixel(rotated, 0, 0)).toEqual([0, 0, 0]);
    expect(pixel(rotated, rotated.width - 1, rotated.height - 1)).toEqual([0, 0, 0]);
  });

  test('resize to a width keeps the aspect ratio', async () => {
    const resized = await run(photo, { op: 'resize', width: 500 });
    expect([resized.width, resized.height]).toEqual([500, Math.round((photo.height * 500) / photo.width)]);
  });

  test('resize to both sides stretches, resize by scale scales both', async () => {
    const stretched = await run(photo, { op: 'resize', width: 300, height: 300 });
    expect([stretched.width, stretched.height]).toEqual([300, 300]);
    const scaled = await run(photo, { op: 'resize', scale: 0.25 });
    expect([scaled.width, scaled.height]).toEqual([Math.round(photo.width / 4), Math.round(photo.height / 4)]);
  });

  test.each([
    ['inside', [300, 200]],
    ['outside', [450, 300]],
    ['cover', [300, 300]],
    ['contain', [300, 300]],
    ['fill', [300, 300]],
  ])('resize with fit %s into 300x300 gives %j (sharp fit)', async (fit, size) => {
    const resized = await run(photo, { op: 'resize', width: 300, height: 300, fit });
    expect([resized.width, resized.height]).toEqual(size);
  });

  test('cover keeps the part named by position: north is the top of the width-fitted copy', async () => {
    const fitted = await run(photo, { op: 'resize', width: 300 });
    const north = await run(photo, { op: 'resize', width: 300, height: 100, fit: 'cover', position: 'north' });
    const south = await run(photo, { op: 'resize', width: 300, height: 100, fit: 'cover', position: 'south' });
    const top = extractRect(fitted, { x: 0, y: 0, width: 300, height: 100 });
    const bottom = extractRect(fitted, { x: 0, y: fitted.height - 100, width: 300, height: 100 });
    // Resampled by a box factor not quite the fitted one's, so alike rather than identical.
    const meanDifference = (a: RawImage, b: RawImage) => a.data.reduce((sum, v, i) => sum + Math.abs(v - b.data[i]), 0) / a.data.length;
    expect(meanDifference(north, top)).toBeLessThan(2);
    expect(meanDifference(south, bottom)).toBeLessThan(2);
    expect(meanDifference(north, bottom)).toBeGreaterThan(10);
  });

  test('contain pads with black bars around the whole picture', async () => {
    const boxed = await run(photo, { op: 'resize', width: 300, height: 300, fit: 'contain' });
    expect(pixel(boxed, 150, 10)).toEqual([0, 0, 0]);
    expect(pixel(boxed, 150, 289)).toEqual([0, 0, 0]);
    expect(pixel(boxed, 150, 150)).not.toEqual([0, 0, 0]);
  });

  test('withoutEnlargement leaves a smaller image its size; grey stays grey', async () => {
    const kept = await run(photo, { op: 'resize', width: 2000, withoutEnlargement: true });
    expect([kept.width, kept.height]).toEqual([photo.width, photo.height]);
    const grey = await run(toGrey(photo), { op: 'resize', width: 200 });
    expect(grey.channels).toBe(1);
  });

  test('resize keeps the picture: a half-size copy resembles the original where it should', async () => {
    const half = await run(photo, { op: 'resize', width: 500, height: 333 });
    const [scaleX, scaleY] = [photo.width / half.width, photo.height / half.height];
    /** Mean green difference between the copy and the original sampled through `map`. */
    const meanDifference = (map: (x: number, y: number) => [number, number]) => {
      let total = 0;
      for (let y = 0; y < half.height; y++) {
        for (let x = 0; x < half.width; x++) {
          const [sx, sy] = map(x, y);
          total += Math.abs(pixel(half, x, y)[1] - pixel(photo, sx, sy)[1]);
        }
      }
      return total / (half.width * half.height);
    };
    const where = (x: number, y: number): [number, number] => [
      Math.min(photo.width - 1, Math.floor((x + 0.5) * scaleX)),
      Math.min(photo.height - 1, Math.floor((y + 0.5) * scaleY)),
    ];
    const upsideDown = (x: number, y: number) => where(x, half.height - 1 - y);
    expect(meanDifference(where)).toBeLessThan(meanDifference(upsideDown) / 3);
  });

  test.each([
    [{ op: 'resize' }, /give width and\/or height, or scale/],
    [{ op: 'resize', width: 100, scale: 2 }, /give width and\/or height, or scale/],
    [{ op: 'resize', width: 0 }, /width/],
    [{ op: 'rotate' }, /angle/],
    [{ op: 'crop', left: 0, top: 0, width: 0, height: 5 }, /width/],
    [{ op: 'flip', axis: 'x' }, /axis/],
  ])('%j is rejected when parsed, naming the parameter', (step, message) => {
    expect(() => parsePipeline([step])).toThrow(message);
  });
});
