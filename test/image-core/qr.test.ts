import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { decodeImage } from '../../services/image-core/decode.js';
import { toGrey } from '../../services/image-core/operations/grayscale.js';
import { qr } from '../../services/image-core/operations/qr.js';
import type { RawImage } from '../../services/image-core/raw-image.js';
import { corpus } from './tiling-support.js';

const decode = (input: string | Buffer) => decodeImage(input, { maxPixels: 100_000_000, name: 'test image' });

async function findQr(image: RawImage) {
  const reported: unknown[] = [];
  const marked = await qr.apply(image, {}, { annotate: (value) => reported.push(value) });
  expect(reported).toHaveLength(1);
  return { marked, texts: reported[0] };
}

/** Pixels that are pure outline red in `after` but were not in `before`. */
function newRedPixels(before: RawImage, after: RawImage): number {
  let count = 0;
  for (let i = 0; i < after.data.length; i += after.channels) {
    const red = after.data[i] === 255 && after.data[i + 1] === 0 && after.data[i + 2] === 0;
    const wasRed = before.data[i] === 255 && before.data[i + 1] === 0 && before.data[i + 2] === 0;
    if (red && !wasRed) count++;
  }
  return count;
}

describe('qr', () => {
  test('decodes the code on the corpus photo and outlines it', async () => {
    const image = await decode(corpus('qr-on-photo.jpg'));
    const { marked, texts } = await findQr(image);
    expect(texts).toEqual(['DIPS test: tile 42 of 100']);
    expect(marked.width).toBe(image.width);
    // An outline at least as long as the perimeter of a small code, drawn 2 pixels thick.
    expect(newRedPixels(image, marked)).toBeGreaterThan(400);
  });

  test('finds both codes when two copies stand side by side', async () => {
    const { width, height } = await sharp(corpus('qr-on-photo.jpg')).metadata();
    const twice = await sharp(corpus('qr-on-photo.jpg'))
      .extend({ right: width!, background: '#ffffff' })
      .composite([{ input: corpus('qr-on-photo.jpg'), left: width!, top: 0 }])
      .png()
      .toBuffer();
    const image = await decode(twice);
    expect(image.width).toBe(2 * width!);
    expect(image.height).toBe(height!);
    const { texts } = await findQr(image);
    expect(texts).toEqual(['DIPS test: tile 42 of 100', 'DIPS test: tile 42 of 100']);
  });

  test('reports nothing and leaves pixels untouched on a photo without a code', async () => {
    const image = await decode(corpus('aqua.jpg'));
    const { marked, texts } = await findQr(image);
    expect(texts).toEqual([]);
    expect(marked.data.equals(image.data)).toBe(true);
  });

  test('reads a grey image and draws the outline in colour', async () => {
    const image = toGrey(await decode(corpus('qr-on-photo.jpg')));
    expect(image.channels).toBe(1);
    const { marked, texts } = await findQr(image);
    expect(texts).toEqual(['DIPS test: tile 42 of 100']);
    expect(marked.channels).toBe(3);
  });
});
