import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { lookupTable, mapColourSamples } from '../raw-image.js';
const inverse = lookupTable((value) => 255 - value);
export const invert = defineOperation({
    name: 'invert',
    description: 'Replaces every colour sample v by 255 - v; alpha is kept.',
    params: z.object({}).strict(),
    tiling: { kind: 'pointwise' },
    apply: async (image) => mapColourSamples(image, inverse),
});
//# sourceMappingURL=invert.js.map