import { z } from 'zod';
import { defineSharpOperation } from '../sharp-raw.js';
export const modulate = defineSharpOperation({
    name: 'modulate',
    description: 'Scales brightness and saturation and rotates the hue, in libvips LCh space; alpha is kept.',
    params: z
        .object({
        brightness: z.number().min(0).max(10).default(1).describe('brightness multiplier (1 = unchanged)'),
        saturation: z.number().min(0).max(10).default(1).describe('saturation multiplier (0 = grey, 1 = unchanged)'),
        hue: z.number().int().min(-360).max(360).default(0).describe('hue rotation in whole degrees'),
    })
        .strict(),
    tiling: { kind: 'pointwise' },
    sharp: { build: (pipeline, params) => pipeline.modulate(params), alpha: 'keep' },
});
//# sourceMappingURL=modulate.js.map