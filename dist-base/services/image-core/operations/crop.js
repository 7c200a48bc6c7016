import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { extractRect, intersect } from '../pixel-move.js';
import { PipelineError } from '../errors.js';
const edge = (what) => z.number().int().min(0).max(1_000_000).describe(what);
const length = (what) => z.number().int().min(1).max(1_000_000).describe(what);
/** The crop rectangle, checked against the size of the image it is applied to. */
function cropRect(params, input) {
    const rect = { x: params.left, y: params.top, width: params.width, height: params.height };
    if (rect.x + rect.width > input.width || rect.y + rect.height > input.height) {
        throw new PipelineError(`crop: the rectangle ${rect.width}x${rect.height} at left ${rect.x}, top ${rect.y} ` +
            `does not fit in the ${input.width}x${input.height} image`);
    }
    return rect;
}
export const crop = defineOperation({
    name: 'crop',
    description: 'Keeps the rectangle left, top, width, height (pixels); it must lie inside the image.',
    params: z
        .object({
        left: edge('distance of the rectangle from the left edge, in pixels'),
        top: edge('distance of the rectangle from the top edge, in pixels'),
        width: length('width of the rectangle, in pixels'),
        height: length('height of the rectangle, in pixels'),
    })
        .strict(),
    tiling: { kind: 'move', pixelMove: (params) => cropMove(params), otherwise: 'a crop only moves pixels' },
    outputSize: (input, params) => {
        const rect = cropRect(params, input);
        return { width: rect.width, height: rect.height };
    },
    apply: async (image, params) => extractRect(image, cropRect(params, image)),
});
/** A crop shifts the kept rectangle to the origin and cuts tiles at its edges. */
function cropMove(params) {
    return {
        forward: (rect, input) => {
            const kept = intersect(rect, cropRect(params, input));
            return { ...kept, x: kept.x - params.left, y: kept.y - params.top };
        },
        backward: (rect) => ({ ...rect, x: rect.x + params.left, y: rect.y + params.top }),
        applyToTile: async (tile, rect, input) => {
            const kept = intersect(rect, cropRect(params, input));
            return extractRect(tile, { ...kept, x: kept.x - rect.x, y: kept.y - rect.y });
        },
    };
}
//# sourceMappingURL=crop.js.map