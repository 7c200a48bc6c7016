import sharp, { type Sharp } from 'sharp';
import { toGrey } from './operations/grayscale.js';
import { hasAlpha, joinAlpha, rawDescriptor, rawImage, splitAlpha, type RawImage } from './raw-image.js';

/** Runs a sharp pipeline and returns its result as 8-bit raw pixels. */
export async function toRawImage(pipeline: Sharp): Promise<RawImage> {
  const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return rawImage(data, info.width, info.height, info.channels);
}

/**
 * Runs one sharp operation on raw pixels (one sharp invocation per step: see docs/internals.md).
 * Grey images stay grey: sharp hands raw grey input back as sRGB with R = G = B (and its raw output
 * cannot carry grey + alpha), so the result is converted back, exactly. With alpha 'keep' the
 * operation sees only the colour channels and the alpha channel is put back unchanged; with
 * 'process' sharp treats alpha as it does (blur and convolve filter it too).
 */
export async function applySharp(
  image: RawImage,
  operation: (pipeline: Sharp) => Sharp,
  options: { alpha: 'process' | 'keep' } = { alpha: 'process' },
): Promise<RawImage> {
  if (options.alpha === 'keep' && hasAlpha(image)) {
    const { colour, alpha } = splitAlpha(image);
    return joinAlpha(await applySharp(colour, operation), alpha);
  }
  const result = await toRawImage(operation(sharp(image.data, rawDescriptor(image))));
  return image.channels <= 2 && result.channels >= 3 ? toGrey(result) : result;
}
