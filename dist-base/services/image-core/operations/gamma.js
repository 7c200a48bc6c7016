import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { lookupTable, mapColourSamples } from '../raw-image.js';
// sharp's gamma() only brackets a resize (darken before, brighten after), so it is a table here.
export const gamma = defineOperation({
    name: 'gamma',
    description: 'Gamma correction 255·(v/255)^(1/value) on every colour sample (value > 1 brightens, < 1 darkens); alpha is kept.',
    params: z
        .object({
        value: z.number().min(0.1).max(10).default(2.2).describe('gamma; output = 255·(input/255)^(1/value)'),
    })
        .strict(),
    tiling: { kind: 'pointwise' },
    apply: async (image, { value }) => mapColourSamples(image, lookupTable((sample) => 255 * (sample / 255) ** (1 / value))),
});
//# sourceMappingURL=gamma.js.map