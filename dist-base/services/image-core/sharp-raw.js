import sharp from 'sharp';
import { toGrey } from './operations/grayscale.js';
import { hasAlpha, joinAlpha, rawDescriptor, rawImage, splitAlpha } from './raw-image.js';
/**
 * The one executor between raw pixels and sharp: operations never call sharp() themselves, they hand
 * applySharp what to do. That keeps the channel rules in one place.
 */
/** Runs a sharp pipeline and returns its result as 8-bit raw pixels. */
export async function toRawImage(pipeline) {
    const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return rawImage(data, info.width, info.height, info.channels);
}
/**
 * Runs one sharp operation on raw pixels. Grey images stay grey: sharp hands raw grey input back as
 * sRGB with R = G = B (and its raw output cannot carry grey + alpha), so the result is converted back,
 * exactly.
 */
export async function applySharp(image, operation, options = { alpha: 'process' }) {
    if (options.alpha === 'keep' && hasAlpha(image)) {
        const { colour, alpha } = splitAlpha(image);
        return joinAlpha(await applySharp(colour, operation), alpha);
    }
    return rawResult(operation(rawPipeline(image)), image.channels);
}
/**
 * A step that runs inside a sharp call on pixels with `channels` (a sharp-native op whose alpha rule
 * allows them): processImage fuses it with decode or encode, a decoding strip runs it on its pieces.
 */
export function fusable(step, channels) {
    const native = step?.op.sharp;
    return native !== undefined && (native.alpha === 'process' || !hasAlpha({ channels }));
}
/** A sharp pipeline reading raw pixels. */
export function rawPipeline(image) {
    return sharp(image.data, rawDescriptor(image));
}
/** The raw result of a pipeline whose input had `inputChannels`; grey input stays grey (see applySharp). */
export async function rawResult(pipeline, inputChannels) {
    const result = await toRawImage(pipeline);
    return inputChannels <= 2 && result.channels >= 3 ? toGrey(result) : result;
}
/**
 * An operation that is one sharp call: its apply on raw pixels is derived from `sharp.build`, and
 * processImage may fuse it with decode or encode (see fusion.ts).
 */
export function defineSharpOperation(declaration) {
    const { build, alpha } = declaration.sharp;
    return {
        ...declaration,
        apply: async (image, params) => applySharp(image, (pipeline) => build(pipeline, params, image), { alpha }),
    };
}
//# sourceMappingURL=sharp-raw.js.map