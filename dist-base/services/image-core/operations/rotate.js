import { z } from 'zod';
import { applySharp, defineSharpOperation } from '../sharp-raw.js';
const rotateBy = (angle) => async (image) => applySharp(image, (pipeline) => pipeline.rotate(angle));
/** Rectangle maps of clockwise quarter turns; `input` is the size before the turn. */
const quarterTurns = {
    0: { forward: (r) => r, backward: (r) => r },
    90: {
        forward: (r, input) => ({ x: input.height - r.y - r.height, y: r.x, width: r.height, height: r.width }),
        backward: (r, input) => ({ x: r.y, y: input.height - r.x - r.width, width: r.height, height: r.width }),
    },
    180: {
        forward: (r, input) => ({ ...r, x: input.width - r.x - r.width, y: input.height - r.y - r.height }),
        backward: (r, input) => ({ ...r, x: input.width - r.x - r.width, y: input.height - r.y - r.height }),
    },
    270: {
        forward: (r, input) => ({ x: r.y, y: input.width - r.x - r.width, width: r.height, height: r.width }),
        backward: (r, input) => ({ x: input.width - r.y - r.height, y: r.x, width: r.height, height: r.width }),
    },
};
/** The angle as a clockwise turn in [0, 360). */
const normalise = (angle) => ((angle % 360) + 360) % 360;
const isQuarterTurn = (turn) => turn % 90 === 0;
/**
 * The canvas of a rotation: quarter turns swap or keep the sides; other angles get the bounding box of
 * the turned image, as libvips' rotate computes it (rounded up; what the planner budgets with).
 */
function rotatedSize({ width, height }, angle) {
    const turn = normalise(angle);
    if (isQuarterTurn(turn))
        return turn % 180 === 0 ? { width, height } : { width: height, height: width };
    const radians = (turn * Math.PI) / 180;
    const [cos, sin] = [Math.abs(Math.cos(radians)), Math.abs(Math.sin(radians))];
    return { width: Math.ceil(width * cos + height * sin), height: Math.ceil(width * sin + height * cos) };
}
export const rotate = defineSharpOperation({
    name: 'rotate',
    description: 'Rotates clockwise by angle degrees. Multiples of 90 move pixels exactly (and are tiled); other angles ' +
        'interpolate, enlarge the canvas with a black background, and run on the whole image.',
    params: z
        .object({ angle: z.number().min(-360).max(360).describe('clockwise angle in degrees (negative: anticlockwise)') })
        .strict(),
    tiling: {
        kind: 'move',
        pixelMove: ({ angle }) => {
            const turn = normalise(angle);
            return isQuarterTurn(turn) ? { ...quarterTurns[turn], applyToTile: rotateBy(turn) } : undefined;
        },
        otherwise: 'angles that are not multiples of 90 interpolate',
    },
    outputSize: (input, { angle }) => rotatedSize(input, angle),
    sharp: { build: (pipeline, { angle }) => pipeline.rotate(normalise(angle)), alpha: 'process' },
});
//# sourceMappingURL=rotate.js.map