import { z } from 'zod';
import { defineOperation } from '../operation.js';
/** Does nothing; lets benchmarks measure the cost of dispatch, transfer and coding alone. */
export const identity = defineOperation({
    name: 'identity',
    description: 'Returns the image unchanged (for measuring dispatch and coding overhead).',
    params: z.object({}).strict(),
    tiling: { kind: 'pointwise' },
    apply: async (image) => image,
});
//# sourceMappingURL=identity.js.map