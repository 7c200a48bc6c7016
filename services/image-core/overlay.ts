import { z } from 'zod';
import type { RawImage } from './raw-image.js';

/**
 * Placing an RGBA overlay (a watermark, rendered text) on an image. Blending is pointwise: every output
 * pixel depends only on the base pixel under it and the overlay pixel over it, so a tile that knows
 * where it lies in the image blends its part and gets the pixels a whole-image run gets.
 */

/** An 8-bit RGBA raster, not premultiplied (what sharp's raw output of ensureAlpha() gives). */
export interface Rgba {
  data: Buffer;
  width: number;
  height: number;
}

export const gravities = ['northwest', 'north', 'northeast', 'west', 'centre', 'east', 'southwest', 'south', 'southeast'] as const;
export type Gravity = (typeof gravities)[number];

/** The placement parameters composite and text share. */
export const placementParams = {
  gravity: z.enum(gravities).default('southeast').describe('where the overlay sits when left/top are not given'),
  margin: z.number().int().min(0).max(10_000).default(16).describe('distance in pixels from the edges gravity names'),
  left: z.number().int().min(-100_000).max(100_000).optional().describe('x of the overlay\'s top-left corner (overrides gravity)'),
  top: z.number().int().min(-100_000).max(100_000).optional().describe('y of the overlay\'s top-left corner (overrides gravity)'),
  opacity: z.number().min(0).max(1).default(1).describe('0 transparent to 1 as the overlay is'),
};
export interface Placement {
  gravity: Gravity;
  margin: number;
  left?: number;
  top?: number;
  opacity: number;
}

/** Top-left corner of an overlay of `size` on an image of `image` size. */
export function overlayOrigin(
  image: { width: number; height: number },
  size: { width: number; height: number },
  placement: Omit<Placement, 'opacity'>,
): { x: number; y: number } {
  const { gravity, margin } = placement;
  const along = (free: number, start: boolean, end: boolean) =>
    start ? margin : end ? free - margin : Math.floor(free / 2);
  const x = along(image.width - size.width, gravity.endsWith('west'), gravity.endsWith('east'));
  const y = along(image.height - size.height, gravity.startsWith('north'), gravity.startsWith('south'));
  return { x: placement.left ?? x, y: placement.top ?? y };
}

/**
 * Blends `overlay`, whose top-left corner lies at `origin` in image coordinates, "over" the pixels of
 * `base`, whose top-left corner lies at `baseOffset` (a tile's position; 0,0 for a whole image).
 * Integer arithmetic (exact and the same on every machine). Grey bases take the overlay's grey
 * (the grayscale operation's weights); a base with alpha gets the union of both coverages.
 */
export function blendOver(base: RawImage, baseOffset: { x: number; y: number }, overlay: Rgba, origin: { x: number; y: number }, opacity: number): RawImage {
  const out = Buffer.from(base.data);
  const { channels, width } = base;
  const colours = channels >= 3 ? 3 : 1;
  const baseHasAlpha = channels === 2 || channels === 4;
  const strength = Math.round(opacity * 255); // 0..255
  const x0 = Math.max(0, origin.x - baseOffset.x);
  const y0 = Math.max(0, origin.y - baseOffset.y);
  const x1 = Math.min(base.width, origin.x + overlay.width - baseOffset.x);
  const y1 = Math.min(base.height, origin.y + overlay.height - baseOffset.y);
  for (let y = y0; y < y1; y++) {
    const oy = y + baseOffset.y - origin.y;
    for (let x = x0; x < x1; x++) {
      const o = (oy * overlay.width + (x + baseOffset.x - origin.x)) * 4;
      const a = overlay.data[o + 3]! * strength; // overlay coverage, 0..65025
      if (a === 0) continue;
      const i = (y * width + x) * channels;
      const r = overlay.data[o]!;
      const g = overlay.data[o + 1]!;
      const b = overlay.data[o + 2]!;
      const source = colours === 3 ? [r, g, b] : [(r * 9798 + g * 19235 + b * 3735 + 16384) >> 15];
      if (!baseHasAlpha) {
        for (let c = 0; c < colours; c++) out[i + c] = Math.floor((source[c]! * a + out[i + c]! * (65025 - a) + 32512) / 65025);
        continue;
      }
      // "over" with straight alpha: outA = a + bA(1 - a); outC = (C·a + bC·bA(1 - a)) / outA.
      const baseA = out[i + colours]! * 255; // 0..65025
      const below = Math.floor((baseA * (65025 - a) + 32512) / 65025);
      const outA = a + below;
      for (let c = 0; c < colours; c++) out[i + c] = Math.floor((source[c]! * a + out[i + c]! * below + Math.floor(outA / 2)) / outA);
      out[i + colours] = Math.floor((outA + 127) / 255);
    }
  }
  return { ...base, data: out };
}
