import { z } from 'zod';
import { defineSharpOperation } from '../sharp-raw.js';
import { blurRadius } from './blur.js';
export const sharpen = defineSharpOperation({
    name: 'sharpen',
    description: 'Unsharp mask on the lightness (libvips sharpen with a Gaussian of the given sigma); ' +
        'without sigma a fast, mild 3×3 sharpen; alpha is kept.',
    params: z
        .object({
        sigma: z
            .number()
            .min(0.3)
            .max(10)
            .optional()
            .describe('standard deviation of the Gaussian mask, in pixels; omit for the fast 3×3 sharpen'),
    })
        .strict(),
    tiling: { kind: 'neighbourhood', halo: ({ sigma }) => (sigma === undefined ? 1 : blurRadius(sigma)) },
    sharp: { build: (pipeline, { sigma }) => pipeline.sharpen(sigma === undefined ? undefined : { sigma }), alpha: 'keep' },
});
//# sourceMappingURL=sharpen.js.map