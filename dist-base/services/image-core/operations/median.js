import { z } from 'zod';
import { defineSharpOperation } from '../sharp-raw.js';
export const median = defineSharpOperation({
    name: 'median',
    description: 'Median of each size×size square, per channel, alpha included (libvips median, edges extended by copying).',
    params: z
        .object({
        size: z
            .number()
            .int()
            .min(3)
            .max(25)
            .refine((size) => size % 2 === 1, 'size must be odd')
            .default(3)
            .describe('edge of the square window, an odd number of pixels'),
    })
        .strict(),
    tiling: { kind: 'neighbourhood', halo: ({ size }) => Math.floor(size / 2) },
    sharp: { build: (pipeline, { size }) => pipeline.median(size), alpha: 'process' },
});
//# sourceMappingURL=median.js.map