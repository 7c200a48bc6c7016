import sharp, { type Sharp } from 'sharp';
import { toGrey } from './operations/grayscale.js';
import { hasAlpha, joinAlpha, rawDescriptor, rawImage, splitAlpha, type RawImage } from './raw-image.js';

/**
 * The one executor between raw pixels and sharp: operations never call sharp() themselves, they hand
 * applySharp what to do. That keeps the channel rules in one place.
 */

/** Runs a sharp pipeline and returns its result as 8-bit raw pixels. */
export async function toRawImage(pipeline: Sharp): Promise<RawImage> {
  const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return rawImage(data, info.width, info.height, info.channels);
}

export interface SharpStepOptions {
  /**
   * 'process': sharp treats alpha as it does (blur and convolve filter it too, resize premultiplies);
   * 'keep': the operation sees only the colour channels and alpha is put back unchanged.
   */
  alpha: 'process' | 'keep';
}

/**
 * Runs one sharp operation on raw pixels. Grey images stay grey: sharp hands raw grey input back as
 * sRGB with R = G = B (and its raw output cannot carry grey + alpha), so the result is converted back,
 * exactly.
 */
export async function applySharp(
  image: RawImage,
  operation: (pipeline: Sharp) => Sharp,
  options: SharpStepOptions = { alpha: 'process' },
): Promise<RawImage> {
  if (options.alpha === 'keep' && hasAlpha(image)) {
    const { colour, alpha } = splitAlpha(image);
    return joinAlpha(await applySharp(colour, operation), alpha);
  }
  const result = await toRawImage(operation(sharp(image.data, rawDescriptor(image))));
  return image.channels <= 2 && result.channels >= 3 ? toGrey(result) : result;
}
