import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { applySharp } from '../sharp-raw.js';

const MAX_KERNEL_EDGE = 15;

const kernelSchema = z
  .array(z.array(z.number()).min(1).max(MAX_KERNEL_EDGE))
  .min(1)
  .max(MAX_KERNEL_EDGE)
  .refine((rows) => rows.every((row) => row.length === rows[0].length), 'every kernel row must have the same length')
  .refine(
    (rows) => rows.length % 2 === 1 && rows[0].length % 2 === 1,
    'kernel width and height must be odd so it has a centre',
  )
  .describe(`the kernel as rows of weights, e.g. [[0,-1,0],[-1,5,-1],[0,-1,0]]; odd sizes up to ${MAX_KERNEL_EDGE}`);

export const convolve = defineOperation({
  name: 'convolve',
  description:
    'Convolves every channel, alpha included, with the given kernel, divides by scale (default: the sum of ' +
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
      offset: z.number().min(-255).max(255).default(0).describe('added after dividing by scale'),
    })
    .strict(),
  tiling: { kind: 'neighbourhood', halo: ({ kernel }) => Math.floor(Math.max(kernel.length, kernel[0].length) / 2) },
  apply: async (image, { kernel, scale, offset }) => {
    const weights = kernel.flat();
    const sum = weights.reduce((total, weight) => total + weight, 0);
    const options = { width: kernel[0].length, height: kernel.length, kernel: weights, scale: scale ?? (sum === 0 ? 1 : sum), offset };
    return applySharp(image, (pipeline) => pipeline.convolve(options));
  },
});
