import { z } from 'zod';
import { defineAnalysisOperation } from '../operation.js';
import { thumbHashOf } from '../placeholder.js';
export const thumbhash = defineAnalysisOperation({
    name: 'thumbhash',
    description: 'Reports a ThumbHash placeholder (about 25 bytes, base64) in annotations.thumbhash, which a client decodes ' +
        'into a blurred preview with the image\'s colours, alpha and aspect ratio; pixels are left unchanged.',
    params: z.object({}).strict(),
    analyse: (image) => thumbHashOf(image),
});
//# sourceMappingURL=thumbhash.js.map