import { z } from 'zod';
import { defineAnalysisOperation } from '../operation.js';
import { perceptualHash } from '../perceptual-hash.js';
export const phash = defineAnalysisOperation({
    name: 'phash',
    description: 'Reports a 64-bit perceptual hash (DCT of the 32×32 grey image, 8×8 lowest frequencies against their median) ' +
        'as 16 hex digits in annotations.phash: re-encoded or resized copies differ in a few bits, different photos ' +
        'in about half; pixels are left unchanged.',
    params: z.object({}).strict(),
    analyse: (image) => perceptualHash(image),
});
//# sourceMappingURL=phash.js.map