import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOperation } from '../../services/image-core/catalogue.js';
import { decodeImage } from '../../services/image-core/decode.js';
import type { RawImage } from '../../services/image-core/raw-image.js';
import { greyHistogram, otsuThreshold } from '../../services/image-core/operations/threshold.js';
import { toGrey } from '../../services/image-core/operations/grayscale.js';
import { corpus } from '../helpers/api.js';
import { otsuLevel, references } from './opencv/reference.js';

// The reference is OpenCV itself, compiled to WebAssembly (./opencv/reference.ts), fed the same decoded pixels.
const photos = ['aqua.jpg', 'garden-odd.png', 'ladybird.jpg'];

const decoded = new Map<string, RawImage>();
const measured: string[] = [];

beforeAll(async () => {
  for (const photo of photos) {
    decoded.set(photo.replace(/\.[^.]+$/, ''), await decodeImage(corpus(photo), { maxPixels: 50_000_000, name: photo }));
  }
});

afterAll(() => {
  if (measured.length) console.info(`OpenCV parity:\n${measured.join('\n')}`);
});

async function dips(stem: string, op: string, params: Record<string, unknown> = {}): Promise<RawImage> {
  const declaration = findOperation(op)!;
  return declaration.apply(decoded.get(stem)!, declaration.params.parse(params), {});
}

function opencv(stem: string, name: string): Promise<RawImage> {
  return references[name]!(decoded.get(stem)!);
}

function compare(ours: RawImage, theirs: RawImage): { agreement: number; maxDifference: number } {
  expect([ours.width, ours.height, ours.channels]).toEqual([theirs.width, theirs.height, theirs.channels]);
  let equal = 0;
  let maxDifference = 0;
  for (let i = 0; i < ours.data.length; i++) {
    const difference = Math.abs(ours.data[i] - theirs.data[i]);
    if (difference === 0) equal++;
    if (difference > maxDifference) maxDifference = difference;
  }
  return { agreement: equal / ours.data.length, maxDifference };
}

function record(stem: string, name: string, result: { agreement: number; maxDifference: number }) {
  measured.push(`  ${stem} ${name}: ${(result.agreement * 100).toFixed(4)}% identical, max difference ${result.maxDifference}`);
}

describe.each(photos.map((photo) => photo.replace(/\.[^.]+$/, '')))('OpenCV parity on %s', (stem) => {
  it.each([
    ['edges-100-200', { low: 100, high: 200 }],
    ['edges-50-150', { low: 50, high: 150 }],
  ])('Canny %s agrees on at least 99%% of pixels', async (name, params) => {
    const result = compare(await dips(stem, 'edges', params), await opencv(stem, name));
    record(stem, name, result);
    expect(result.agreement).toBeGreaterThanOrEqual(0.99);
  });

  it.each([
    ['grayscale', 'grayscale', {}],
    ['threshold-128', 'threshold', { value: 128 }],
    ['threshold-otsu', 'threshold', { value: 'otsu' }],
    ['erode-5-2', 'erode', { size: 5, iterations: 2 }],
    ['dilate-5-2', 'dilate', { size: 5, iterations: 2 }],
    ['erode-4-1', 'erode', { size: 4, iterations: 1 }],
    ['normalize', 'normalize', {}],
    ['equalize-colour', 'equalize', {}],
  ])('%s is within one grey level of OpenCV', async (name, op, params) => {
    const result = compare(await dips(stem, op, params), await opencv(stem, name));
    record(stem, name, result);
    expect(result.maxDifference).toBeLessThanOrEqual(1);
  });

  it('equalize on the grey image is within one grey level of equalizeHist', async () => {
    const grey = toGrey(decoded.get(stem)!);
    const ours = await findOperation('equalize')!.apply(grey, {}, {});
    const result = compare(ours, await opencv(stem, 'equalize-grey'));
    record(stem, 'equalize-grey', result);
    expect(result.maxDifference).toBeLessThanOrEqual(1);
  });

  it("Otsu picks OpenCV's level", async () => {
    expect(otsuThreshold(greyHistogram(toGrey(decoded.get(stem)!)))).toBe(await otsuLevel(decoded.get(stem)!));
  });
});
