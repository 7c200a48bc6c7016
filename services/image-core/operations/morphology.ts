import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { hasAlpha, type RawImage } from '../raw-image.js';

type Extreme = 'min' | 'max';

/**
 * OpenCV turns `iterations` passes of a full size×size rectangle into one pass of a larger rectangle
 * with a scaled anchor; with borders ignored both give the same pixels, and one pass is cheaper.
 */
export function morphologyWindow(size: number, iterations: number): { length: number; anchor: number } {
  return { length: size + (iterations - 1) * (size - 1), anchor: Math.floor(size / 2) * iterations };
}

/**
 * Running minimum over windows of `length` samples starting `anchor` samples before each one
 * (van Herk/Gil-Werman: three comparisons per sample whatever the length). Samples outside the line
 * are ignored, which for min/max is the same as replicating the border (OpenCV's default).
 * A maximum is the minimum of inverted samples: `flip` 255 inverts (v XOR 255 = 255 - v) on the way
 * in and out, 0 leaves samples as they are.
 */
function minimumAlongLine(
  source: Uint8Array,
  start: number,
  stride: number,
  count: number,
  target: Uint8Array,
  flip: number,
  length: number,
  anchor: number,
  scratch: LineScratch,
): void {
  const { padded, forward, backward } = scratch;
  const total = count + length - 1;
  padded.fill(255, 0, total);
  for (let i = 0, at = start; i < count; i++, at += stride) padded[anchor + i] = source[at] ^ flip;
  for (let blockStart = 0; blockStart < total; blockStart += length) {
    const blockEnd = Math.min(blockStart + length, total);
    forward[blockStart] = padded[blockStart];
    for (let i = blockStart + 1; i < blockEnd; i++) forward[i] = Math.min(forward[i - 1], padded[i]);
    backward[blockEnd - 1] = padded[blockEnd - 1];
    for (let i = blockEnd - 2; i >= blockStart; i--) backward[i] = Math.min(backward[i + 1], padded[i]);
  }
  for (let i = 0, at = start; i < count; i++, at += stride) {
    target[at] = Math.min(backward[i], forward[i + length - 1]) ^ flip;
  }
}

interface LineScratch {
  padded: Uint8Array;
  forward: Uint8Array;
  backward: Uint8Array;
}

/** Grey-level min (erode) or max (dilate) over a rectangle, separably, per colour channel; alpha is kept. */
export function rectangleFilter(image: RawImage, extreme: Extreme, length: number, anchor: number): RawImage {
  if (length <= 1) return image;
  const { width, height, channels, data } = image;
  const flip = extreme === 'min' ? 0 : 255;
  const colourChannels = hasAlpha(image) ? channels - 1 : channels;
  const longest = Math.max(width, height) + length - 1;
  const scratch = { padded: new Uint8Array(longest), forward: new Uint8Array(longest), backward: new Uint8Array(longest) };
  const rowsDone = Buffer.from(data);
  const rowStride = width * channels;
  for (let y = 0; y < height; y++) {
    for (let c = 0; c < colourChannels; c++) {
      minimumAlongLine(data, y * rowStride + c, channels, width, rowsDone, flip, length, anchor, scratch);
    }
  }
  const out = Buffer.from(rowsDone);
  for (let x = 0; x < width; x++) {
    for (let c = 0; c < colourChannels; c++) {
      minimumAlongLine(rowsDone, x * channels + c, rowStride, height, out, flip, length, anchor, scratch);
    }
  }
  return { ...image, data: out };
}

const morphologyParams = z
  .object({
    size: z.number().int().min(1).max(51).default(5).describe('edge of the square structuring element, in pixels'),
    iterations: z.number().int().min(1).max(20).default(2).describe('how many times the filter is applied'),
  })
  .strict();

function morphology(name: 'erode' | 'dilate', extreme: Extreme, effect: string) {
  return defineOperation({
    name,
    description:
      `Grey-level ${extreme}imum over a size×size square, repeated iterations times (OpenCV ${name} with a ` +
      `rectangular kernel, default anchor and border): ${effect}; per colour channel, alpha is kept.`,
    params: morphologyParams,
    kind: 'local',
    tileable: true,
    halo: ({ size, iterations }) => {
      const { length, anchor } = morphologyWindow(size, iterations);
      return Math.max(anchor, length - 1 - anchor);
    },
    apply: async (image, { size, iterations }) => {
      const { length, anchor } = morphologyWindow(size, iterations);
      return rectangleFilter(image, extreme, length, anchor);
    },
  });
}

export const erode = morphology('erode', 'min', 'dark regions grow');
export const dilate = morphology('dilate', 'max', 'bright regions grow');
