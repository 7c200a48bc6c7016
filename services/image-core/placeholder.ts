import sharp from 'sharp';
import { rgbaToThumbHash } from 'thumbhash';
import { rawDescriptor, type RawImage } from './raw-image.js';

/** ThumbHash encodes images of at most 100×100 pixels (its format's limit). */
const THUMBHASH_MAX_EDGE = 100;

/**
 * The image's ThumbHash (base64): a placeholder of about 25 bytes that a client decodes into a blurred
 * preview with the image's colours, alpha and aspect ratio (thumbhash's thumbHashToDataURL).
 */
export async function thumbHashOf(image: RawImage): Promise<string> {
  const { data, info } = await sharp(image.data, rawDescriptor(image))
    .resize(THUMBHASH_MAX_EDGE, THUMBHASH_MAX_EDGE, { fit: 'inside' })
    .toColourspace('srgb')
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return Buffer.from(rgbaToThumbHash(info.width, info.height, data)).toString('base64');
}
