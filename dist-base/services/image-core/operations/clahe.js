import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { extractRect } from '../pixel-move.js';
import { mirrorPad } from '../raw-image.js';
import { applySharp } from '../sharp-raw.js';
const windowEdge = (which) => z.number().int().min(3).max(256).default(64).describe(`${which} of the window around each pixel whose histogram is equalised`);
export const clahe = defineOperation({
    name: 'clahe',
    description: 'Contrast-limited adaptive histogram equalisation: each pixel is equalised against the histogram of the ' +
        'width×height window around it (libvips hist_local, each colour channel on its own), its contrast limited ' +
        'by maxSlope; alpha is kept.',
    params: z
        .object({
        width: windowEdge('width'),
        height: windowEdge('height'),
        maxSlope: z.number().int().min(0).max(100).default(3).describe('contrast limit; 0 means no limit'),
    })
        .strict(),
    tiling: { kind: 'neighbourhood', halo: ({ width, height }) => Math.ceil(Math.max(width, height) / 2) },
    apply: async (image, { width, height, maxSlope }) => {
        // libvips refuses a window larger than the image (a small image, or a tile at an image corner),
        // so the mirrored border libvips would add itself is added here first, and cut off afterwards.
        const padX = Math.ceil(width / 2);
        const padY = Math.ceil(height / 2);
        const padded = await applySharp(mirrorPad(image, padX, padY), (pipeline) => pipeline.clahe({ width, height, maxSlope }), {
            alpha: 'keep',
        });
        return extractRect(padded, { x: padX, y: padY, width: image.width, height: image.height });
    },
});
//# sourceMappingURL=clahe.js.map