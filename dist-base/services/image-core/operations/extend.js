import { z } from 'zod';
import { PipelineError } from '../errors.js';
import { defineOperation } from '../operation.js';
import { hasAlpha } from '../raw-image.js';
import { MAX_RESIZE_PIXELS } from './resize.js';
const pad = (side) => z.number().int().min(0).max(100_000).default(0).describe(`pixels added on the ${side}`);
const extendParams = z
    .object({
    top: pad('top'),
    right: pad('right'),
    bottom: pad('bottom'),
    left: pad('left'),
    colour: z.string().regex(/^#[0-9a-fA-F]{6}$/, 'a colour such as #000000').default('#000000').describe('fill colour as #rrggbb'),
    opacity: z.number().min(0).max(1).default(1).describe('alpha of the added pixels (images with alpha only)'),
})
    .strict();
function extendedSize(input, p) {
    const size = { width: input.width + p.left + p.right, height: input.height + p.top + p.bottom };
    if (size.width * size.height > MAX_RESIZE_PIXELS) {
        throw new PipelineError(`extend: ${size.width}x${size.height} from the ${input.width}x${input.height} image exceeds ${MAX_RESIZE_PIXELS} pixels`);
    }
    return size;
}
/** One pixel of the fill in the image's layout: grey gets the colour's grey (grayscale's weights). */
function fillPixel(image, colour, opacity) {
    const [r, g, b] = [1, 3, 5].map((at) => Number.parseInt(colour.slice(at, at + 2), 16));
    const colours = image.channels >= 3 ? [r, g, b] : [(r * 9798 + g * 19235 + b * 3735 + 16384) >> 15];
    return Buffer.from(hasAlpha(image) ? [...colours, Math.round(opacity * 255)] : colours);
}
export const extend = defineOperation({
    name: 'extend',
    description: 'Pads the image with rows and columns of a colour (with opacity where the image has alpha) on each side. ' +
        'Grey images stay grey (the colour\'s grey); alpha is kept.',
    params: extendParams,
    tiling: { kind: 'whole', reason: 'a tile of the new border has no source pixels (the step is a cheap copy)' },
    outputSize: extendedSize,
    apply: async (image, params) => {
        const { width, height } = extendedSize(image, params);
        const { channels } = image;
        const out = Buffer.allocUnsafe(width * height * channels);
        const pixel = fillPixel(image, params.colour, params.opacity);
        const fillRow = Buffer.allocUnsafe(width * channels);
        for (let o = 0; o < fillRow.length; o += channels)
            pixel.copy(fillRow, o);
        const rowBytes = image.width * channels;
        for (let y = 0; y < height; y++) {
            fillRow.copy(out, y * fillRow.length);
            const sourceRow = y - params.top;
            if (sourceRow >= 0 && sourceRow < image.height) {
                image.data.copy(out, y * fillRow.length + params.left * channels, sourceRow * rowBytes, (sourceRow + 1) * rowBytes);
            }
        }
        return { data: out, width, height, channels };
    },
});
//# sourceMappingURL=extend.js.map