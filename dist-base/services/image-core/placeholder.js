import { rgbaToThumbHash } from 'thumbhash';
import { rgbaOf } from './overlay.js';
import { applySharp } from './sharp-raw.js';
/** ThumbHash encodes images of at most 100×100 pixels (its format's limit). */
const THUMBHASH_MAX_EDGE = 100;
/**
 * The image's ThumbHash (base64): a placeholder of about 25 bytes that a client decodes into a blurred
 * preview with the image's colours, alpha and aspect ratio (thumbhash's thumbHashToDataURL).
 */
export async function thumbHashOf(image) {
    const small = await applySharp(image, (pipeline) => pipeline.resize(THUMBHASH_MAX_EDGE, THUMBHASH_MAX_EDGE, { fit: 'inside' }));
    const rgba = rgbaOf(small);
    return Buffer.from(rgbaToThumbHash(rgba.width, rgba.height, rgba.data)).toString('base64');
}
//# sourceMappingURL=placeholder.js.map