import { z } from 'zod';
import { applySharp, defineSharpOperation } from '../sharp-raw.js';
const mirrorVertically = async (image) => applySharp(image, (pipeline) => pipeline.flip());
const mirrorHorizontally = async (image) => applySharp(image, (pipeline) => pipeline.flop());
/** Top and bottom swap places; a tile's rectangle is mirrored the same way. */
const verticalMirror = {
    forward: (rect, input) => ({ ...rect, y: input.height - rect.y - rect.height }),
    backward: (rect, input) => ({ ...rect, y: input.height - rect.y - rect.height }),
    applyToTile: mirrorVertically,
};
const horizontalMirror = {
    forward: (rect, input) => ({ ...rect, x: input.width - rect.x - rect.width }),
    backward: (rect, input) => ({ ...rect, x: input.width - rect.x - rect.width }),
    applyToTile: mirrorHorizontally,
};
const always = 'every mirror only moves pixels';
export const flip = defineSharpOperation({
    name: 'flip',
    description: 'Mirrors the image top to bottom (about the horizontal axis).',
    params: z.object({}).strict(),
    tiling: { kind: 'move', pixelMove: () => verticalMirror, otherwise: always },
    sharp: { build: (pipeline) => pipeline.flip(), alpha: 'process' },
});
export const flop = defineSharpOperation({
    name: 'flop',
    description: 'Mirrors the image left to right (about the vertical axis).',
    params: z.object({}).strict(),
    tiling: { kind: 'move', pixelMove: () => horizontalMirror, otherwise: always },
    sharp: { build: (pipeline) => pipeline.flop(), alpha: 'process' },
});
//# sourceMappingURL=flip.js.map