import type { Sharp } from 'sharp';
import { rawImage, type RawImage } from './raw-image.js';

/** Runs a sharp pipeline and returns its result as 8-bit raw pixels. */
export async function toRawImage(pipeline: Sharp): Promise<RawImage> {
  const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return rawImage(data, info.width, info.height, info.channels);
}
