import { z } from 'zod';
import { defineOperation } from '../operation.js';
import type { RawImage } from '../raw-image.js';
import { greyChannel } from './grayscale.js';

/** tan(22.5°) in Q15, as OpenCV's Canny classifies gradient directions. */
const TAN_22_5_Q15 = 13573;
/** Largest L1 gradient of a 3x3 Sobel pair on 8-bit samples: 4*255 per axis. */
const MAX_L1_GRADIENT = 2040;

const NOT_EDGE = 1;
const WEAK = 0;
const STRONG = 2;

/**
 * OpenCV's Canny (aperture 3, L1 gradient) on a one-channel grey image: 3x3 Sobel with replicated
 * borders, non-maximum suppression in four directions with OpenCV's tie rules, then hysteresis:
 * pixels above `high` are edges, pixels above `low` are edges when 8-connected to one.
 * Returns one grey channel, 255 on edges and 0 elsewhere.
 */
export function canny(grey: RawImage, low: number, high: number): RawImage {
  if (grey.channels !== 1) throw new Error(`canny needs one grey channel, got ${grey.channels}`);
  if (low > high) [low, high] = [high, low];
  const lowLimit = Math.floor(low);
  const highLimit = Math.floor(high);
  const { width, height, data } = grey;
  const size = width * height;

  const dx = new Int16Array(size);
  const dy = new Int16Array(size);
  const magnitude = new Int32Array(size);
  for (let y = 0; y < height; y++) {
    const above = Math.max(y - 1, 0) * width;
    const row = y * width;
    const below = Math.min(y + 1, height - 1) * width;
    for (let x = 0; x < width; x++) {
      const left = x > 0 ? x - 1 : 0;
      const right = x < width - 1 ? x + 1 : width - 1;
      const gx =
        data[above + right] + 2 * data[row + right] + data[below + right] -
        (data[above + left] + 2 * data[row + left] + data[below + left]);
      const gy =
        data[below + left] + 2 * data[below + x] + data[below + right] -
        (data[above + left] + 2 * data[above + x] + data[above + right]);
      dx[row + x] = gx;
      dy[row + x] = gy;
      magnitude[row + x] = Math.abs(gx) + Math.abs(gy);
    }
  }

  // Magnitudes outside the image count as 0, as in OpenCV's zero-padded magnitude rows.
  const magnitudeAt = (x: number, y: number): number =>
    x < 0 || y < 0 || x >= width || y >= height ? 0 : magnitude[y * width + x];

  const map = new Uint8Array(size).fill(NOT_EDGE);
  const stack = new Int32Array(size);
  let stackSize = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const index = y * width + x;
      const m = magnitude[index];
      if (m <= lowLimit) continue;
      const gx = dx[index];
      const gy = dy[index];
      const ax = Math.abs(gx);
      const ayQ15 = Math.abs(gy) * 32768;
      const tan22x = ax * TAN_22_5_Q15;
      let isMaximum: boolean;
      if (ayQ15 < tan22x) {
        isMaximum = m > magnitudeAt(x - 1, y) && m >= magnitudeAt(x + 1, y);
      } else if (ayQ15 > tan22x + ax * 65536) {
        isMaximum = m > magnitudeAt(x, y - 1) && m >= magnitudeAt(x, y + 1);
      } else {
        const step = (gx < 0) !== (gy < 0) ? -1 : 1;
        isMaximum = m > magnitudeAt(x - step, y - 1) && m > magnitudeAt(x + step, y + 1);
      }
      if (!isMaximum) continue;
      if (m > highLimit) {
        map[index] = STRONG;
        stack[stackSize++] = index;
      } else {
        map[index] = WEAK;
      }
    }
  }

  while (stackSize > 0) {
    const index = stack[--stackSize];
    const x = index % width;
    const y = (index - x) / width;
    for (let ny = Math.max(y - 1, 0); ny <= Math.min(y + 1, height - 1); ny++) {
      for (let nx = Math.max(x - 1, 0); nx <= Math.min(x + 1, width - 1); nx++) {
        const neighbour = ny * width + nx;
        if (map[neighbour] === WEAK) {
          map[neighbour] = STRONG;
          stack[stackSize++] = neighbour;
        }
      }
    }
  }

  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) if (map[i] === STRONG) out[i] = 255;
  return { data: out, width, height, channels: 1 };
}

const threshold = (which: string, fallback: number) =>
  z
    .number()
    .min(0)
    .max(MAX_L1_GRADIENT)
    .default(fallback)
    .describe(`${which} hysteresis threshold on the L1 gradient |dx|+|dy| (0-${MAX_L1_GRADIENT})`);

export const edges = defineOperation({
  name: 'edges',
  description:
    'Canny edge detection as OpenCV does it (grey image, 3x3 Sobel, L1 gradient, hysteresis low/high); ' +
    'output is one grey channel, 255 on edges; alpha is dropped.',
  params: z
    .object({ low: threshold('lower', 100), high: threshold('upper', 200) })
    .strict()
    .refine(({ low, high }) => low <= high, { message: 'low must not exceed high', path: ['low'] }),
  // Hysteresis follows edges across any distance, so a tile cannot know its result: run it whole.
  kind: 'whole-image',
  tileable: false,
  halo: () => 0,
  apply: async (image, { low, high }) => canny(greyChannel(image), low, high),
});
