import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { applySharp } from '../sharp-raw.js';
const side = (what) => z.number().int().min(1).max(16_384).describe(what);
export const smartcrop = defineOperation({
    name: 'smartcrop',
    description: 'Scales the image to cover width×height and crops the rest away where it is least interesting (libvips ' +
        'smartcrop: "attention" looks for skin tones, saturated colour and detail, "entropy" for detail), as ' +
        'sharp resize with fit cover does; alpha is kept.',
    params: z
        .object({
        width: side('output width in pixels'),
        height: side('output height in pixels'),
        strategy: z.enum(['attention', 'entropy']).default('attention').describe('how the kept region is chosen'),
    })
        .strict(),
    tiling: { kind: 'whole', reason: 'the kept region is chosen from the whole image, and it resamples' },
    outputSize: (_input, { width, height }) => ({ width, height }),
    apply: (image, { width, height, strategy }) => applySharp(image, (pipeline) => pipeline.resize(width, height, { fit: 'cover', position: strategy })),
});
//# sourceMappingURL=smartcrop.js.map