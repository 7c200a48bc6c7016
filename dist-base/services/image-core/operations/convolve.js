import { z } from 'zod';
import { defineSharpOperation } from '../sharp-raw.js';
/** sharp (libvips conv through sharp) refuses kernels narrower or shorter than 3. */
const MIN_KERNEL_EDGE = 3;
const MAX_KERNEL_EDGE = 15;
const kernelSchema = z
    .array(z.array(z.number()).min(1).max(MAX_KERNEL_EDGE))
    .min(1)
    .max(MAX_KERNEL_EDGE)
    .refine((rows) => rows.every((row) => row.length === rows[0].length), 'every kernel row must have the same length')
    .refine((rows) => rows.length % 2 === 1 && rows[0].length % 2 === 1, 'kernel width and height must be odd so it has a centre')
    .refine((rows) => rows.length >= MIN_KERNEL_EDGE && rows[0].length >= MIN_KERNEL_EDGE, `kernel width and height must be at least ${MIN_KERNEL_EDGE}`)
    .describe(`the kernel as rows of weights, e.g. [[0,-1,0],[-1,5,-1],[0,-1,0]]; odd sizes from ${MIN_KERNEL_EDGE} to ${MAX_KERNEL_EDGE}`);
export const convolve = defineSharpOperation({
    name: 'convolve',
    description: 'Convolves every channel, alpha included, with the given kernel, divides by scale (default: the sum of ' +
        'the weights, or 1 when that is 0) and adds offset (libvips conv, edges extended by copying).',
    params: z
        .object({
        kernel: kernelSchema.default([
            [0, -1, 0],
            [-1, 5, -1],
            [0, -1, 0],
        ]),
        scale: z
            .number()
            .refine((scale) => scale !== 0, 'scale must not be 0')
            .optional()
            .describe('divisor of the weighted sum; default the sum of the weights, or 1 when that is 0'),
        // libvips' integer convolution rounds the offset, so only whole offsets are accepted.
        offset: z.number().int().min(-255).max(255).default(0).describe('whole number added after dividing by scale'),
    })
        .strict(),
    tiling: { kind: 'neighbourhood', halo: ({ kernel }) => Math.floor(Math.max(kernel.length, kernel[0].length) / 2) },
    sharp: {
        alpha: 'process',
        build: (pipeline, { kernel, scale, offset }) => {
            const weights = kernel.flat();
            const sum = weights.reduce((total, weight) => total + weight, 0);
            const divisor = scale ?? (sum === 0 ? 1 : sum);
            // libvips rounds the scale of an integer kernel: a fractional one is folded into the weights instead.
            const [folded, kernelScale] = Number.isInteger(divisor) ? [weights, divisor] : [weights.map((w) => w / divisor), 1];
            const options = { width: kernel[0].length, height: kernel.length, kernel: folded, scale: kernelScale, offset };
            return pipeline.convolve(options);
        },
    },
});
//# sourceMappingURL=convolve.js.map