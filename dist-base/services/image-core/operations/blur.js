import { z } from 'zod';
import { defineSharpOperation } from '../sharp-raw.js';
/** libvips builds the Gaussian mask out to where it falls below min_ampl = 0.2: radius < 1.8 sigma. */
export const blurRadius = (sigma) => Math.ceil(2 * sigma) + 1;
export const blur = defineSharpOperation({
    name: 'blur',
    description: 'Gaussian blur (libvips gaussblur, edges extended by copying); alpha is blurred too.',
    params: z
        .object({ sigma: z.number().min(0.3).max(100).default(2).describe('standard deviation of the Gaussian, in pixels') })
        .strict(),
    tiling: { kind: 'neighbourhood', halo: ({ sigma }) => blurRadius(sigma) },
    sharp: { build: (pipeline, { sigma }) => pipeline.blur(sigma), alpha: 'process' },
});
//# sourceMappingURL=blur.js.map