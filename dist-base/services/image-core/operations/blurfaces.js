import { z } from 'zod';
import { detectFaces, detectionWindowCount, LOWEST_CONFIDENCE } from '../face-detector.js';
import { PipelineError } from '../errors.js';
import { defineOperation } from '../operation.js';
import { extractRect, intersect, pasteRect } from '../pixel-move.js';
import { applySharp } from '../sharp-raw.js';
/**
 * Detection windows one image may need: a 16384×512 panorama needs 444; 1000 is about a minute of CPU
 * (about 60 ms each, bench/faces.ts), so more elongated images are refused at submission.
 */
const MAX_DETECTION_WINDOWS = 1000;
/** sharp's Gaussian blur takes sigma in 0.3..1000. */
const MIN_SIGMA = 0.3;
const MAX_SIGMA = 1000;
const blurfacesParams = z
    .object({
    minConfidence: z.number().min(LOWEST_CONFIDENCE).max(1).default(0.6).describe('faces the detector is less sure of (0..1) are left alone'),
    padding: z.number().min(0).max(1).default(0.25).describe('the blurred box is the face box grown by this fraction of its size on every side'),
    strength: z.number().min(0.02).max(1).default(0.15).describe("blur sigma as a fraction of the face box's longer side (0.15 makes a face unrecognisable)"),
})
    .strict();
/** The face box grown by `padding` of its size on each side, in whole pixels, clipped to the image. */
function paddedBox(face, padding, image) {
    const left = Math.floor(face.x - padding * face.width);
    const top = Math.floor(face.y - padding * face.height);
    const right = Math.ceil(face.x + face.width * (1 + padding));
    const bottom = Math.ceil(face.y + face.height * (1 + padding));
    return intersect({ x: left, y: top, width: right - left, height: bottom - top }, { x: 0, y: 0, width: image.width, height: image.height });
}
async function blurFaces(image, params, signal) {
    const faces = (await detectFaces(image, signal)).filter((face) => face.score >= params.minConfidence);
    if (faces.length === 0)
        return { image, faces: [] };
    const out = { ...image, data: Buffer.from(image.data) };
    const blurred = [];
    for (const face of faces) {
        const box = paddedBox(face, params.padding, image);
        if (box.width === 0 || box.height === 0)
            continue;
        const sigma = Math.min(MAX_SIGMA, Math.max(MIN_SIGMA, params.strength * Math.max(face.width, face.height)));
        // Cut from the output, so overlapping faces are blurred on top of each other rather than undone.
        const piece = await applySharp(extractRect(out, box), (pipeline) => pipeline.blur(sigma), { alpha: 'keep' });
        pasteRect(out, piece, box);
        blurred.push({ ...box, score: Math.round(face.score * 1000) / 1000 });
    }
    return { image: out, faces: blurred };
}
export const blurfaces = defineOperation({
    name: 'blurfaces',
    description: 'Finds faces down to about 3% of the short side (BlazeFace proposes, FaceMesh confirms; the models of ' +
        '@vladmandic/human, run locally) and blurs a box around each, for privacy; the boxes are reported ' +
        '(annotations.blurfaces: x, y, width, height, score). Grey images stay grey; alpha is kept.',
    params: blurfacesParams,
    tiling: { kind: 'whole', reason: 'a face can lie anywhere and at any size, and is found by looking at the whole image' },
    outputSize: (input) => {
        const windows = detectionWindowCount(input.width, input.height);
        if (windows > MAX_DETECTION_WINDOWS) {
            throw new PipelineError(`blurfaces: a ${input.width}x${input.height} image needs ${windows} detection windows, more than ${MAX_DETECTION_WINDOWS}: crop or split it first`);
        }
        return input;
    },
    apply: async (image, params, context) => {
        const { image: result, faces } = await blurFaces(image, params, context.signal);
        context.annotate?.(faces);
        return result;
    },
});
//# sourceMappingURL=blurfaces.js.map