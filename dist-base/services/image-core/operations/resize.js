import { z } from 'zod';
import { PipelineError } from '../errors.js';
import { defineSharpOperation } from '../sharp-raw.js';
/** sharp's default input limit; a resize may not produce more than it would accept. */
export const MAX_RESIZE_PIXELS = 268_402_689;
const dimension = (what) => z.number().int().min(1).max(65_535).optional().describe(what);
/** sharp's fit modes (https://sharp.pixelplumbing.com/api-resize). */
const fits = ['fill', 'cover', 'contain', 'inside', 'outside'];
/** sharp's gravities for cover (which part is kept) and contain (where the image sits). */
const positions = ['centre', 'north', 'northeast', 'east', 'southeast', 'south', 'southwest', 'west', 'northwest'];
const resizeParams = z
    .object({
    width: dimension('output width in pixels'),
    height: dimension('output height in pixels'),
    scale: z.number().min(0.001).max(16).optional().describe('factor applied to both sides, instead of width/height'),
    fit: z
        .enum(fits)
        .default('fill')
        .describe('with both width and height: fill stretches to exactly that size; cover keeps the aspect ratio and ' +
        'crops to it; contain keeps the aspect ratio and pads with black; inside/outside keep the aspect ratio ' +
        'and fit within / cover the box (sharp fit)'),
    position: z.enum(positions).default('centre').describe('for cover: the part kept; for contain: where the image sits'),
    withoutEnlargement: z.boolean().default(false).describe('never make the image larger than it is'),
})
    .strict()
    .refine((p) => (p.scale === undefined) !== (p.width === undefined && p.height === undefined), {
    message: 'give width and/or height, or scale (not both kinds)',
});
/**
 * The output size as sharp computes it: per-axis shrink factors from the box (both equal unless fill,
 * the larger for inside/contain, the smaller for outside/cover), at least 1 without enlargement, sides
 * rounded; cover crops and contain pads to the box. A missing width or height keeps the aspect ratio.
 */
export function resizedSize(params, input) {
    const { scale, fit, withoutEnlargement } = params;
    const box = scale !== undefined ? { width: input.width * scale, height: input.height * scale } : undefined;
    const width = box?.width ?? params.width;
    const height = box?.height ?? params.height;
    let xShrink = width === undefined ? input.height / height : input.width / width;
    let yShrink = height === undefined ? input.width / width : input.height / height;
    const both = width !== undefined && height !== undefined && box === undefined;
    if (both && fit !== 'fill') {
        const shared = fit === 'inside' || fit === 'contain' ? Math.max(xShrink, yShrink) : Math.min(xShrink, yShrink);
        xShrink = yShrink = shared;
    }
    if (withoutEnlargement)
        [xShrink, yShrink] = [Math.max(1, xShrink), Math.max(1, yShrink)];
    const side = (length, shrink) => Math.max(1, Math.round(length / shrink));
    let size = { width: side(input.width, xShrink), height: side(input.height, yShrink) };
    if (both && fit === 'cover')
        size = { width: Math.min(size.width, width), height: Math.min(size.height, height) };
    if (both && fit === 'contain' && !withoutEnlargement)
        size = { width, height };
    if (size.width * size.height > MAX_RESIZE_PIXELS) {
        throw new PipelineError(`resize: ${size.width}x${size.height} from the ${input.width}x${input.height} image exceeds ` +
            `${MAX_RESIZE_PIXELS} pixels`);
    }
    return size;
}
export const resize = defineSharpOperation({
    name: 'resize',
    description: 'Resamples (Lanczos 3) to width and/or height, or by scale; one of width/height keeps the aspect ratio, ' +
        'both use fit (default fill: stretch to exactly that size), as sharp resize does. Resampling does not ' +
        'tile exactly, so it runs on the whole image.',
    params: resizeParams,
    // Each output pixel mixes a kernel of input pixels placed by the global scale; libvips also
    // shrinks by integer blocks first, so a tile cut anywhere but at block-aligned positions differs.
    tiling: { kind: 'whole', reason: 'resampling places its kernel by the global scale' },
    outputSize: (input, params) => resizedSize(params, input),
    sharp: { build: (pipeline, params, input) => pipeline.resize(sharpResize(params, input)), alpha: 'process' },
});
/** sharp's resize options for these parameters. */
function sharpResize(params, input) {
    const size = resizedSize(params, input); // refuses a result over the pixel limit
    const { width, height, fit, position, withoutEnlargement } = params;
    if (width !== undefined && height !== undefined)
        return { width, height, fit, position, withoutEnlargement };
    // One side: sharp keeps the aspect ratio with one shrink factor for both axes (and shrink-on-load).
    if (width !== undefined || height !== undefined)
        return { width, height, withoutEnlargement };
    // A scale: the size is known, and fit does not matter.
    return { ...size, fit: 'fill' };
}
//# sourceMappingURL=resize.js.map