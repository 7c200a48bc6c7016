import { z } from 'zod';
import { outputOptions } from '../protocol/output.js';
import { blurfaces } from './operations/blurfaces.js';
import { composite } from './operations/composite.js';
import { extend } from './operations/extend.js';
import { metadata } from './operations/metadata.js';
import { phash } from './operations/phash.js';
import { smartcrop } from './operations/smartcrop.js';
import { text } from './operations/text.js';
import { thumbhash } from './operations/thumbhash.js';
import { trim } from './operations/trim.js';
import { blur } from './operations/blur.js';
import { clahe } from './operations/clahe.js';
import { contours } from './operations/contours.js';
import { convolve } from './operations/convolve.js';
import { crop } from './operations/crop.js';
import { edges } from './operations/edges.js';
import { equalize } from './operations/equalize.js';
import { flip, flop } from './operations/flip.js';
import { gamma } from './operations/gamma.js';
import { grayscale } from './operations/grayscale.js';
import { identity } from './operations/identity.js';
import { invert } from './operations/invert.js';
import { median } from './operations/median.js';
import { modulate } from './operations/modulate.js';
import { dilate, erode } from './operations/morphology.js';
import { normalize } from './operations/normalize.js';
import { qr } from './operations/qr.js';
import { resize } from './operations/resize.js';
import { rotate } from './operations/rotate.js';
import { sharpen } from './operations/sharpen.js';
import { threshold } from './operations/threshold.js';
/** Every operation DIPS offers, in catalogue order. Adding an operation means adding it here. */
export const operations = [
    // colour and tone
    grayscale,
    invert,
    gamma,
    modulate,
    normalize,
    equalize,
    clahe,
    threshold,
    // neighbourhood filters
    blur,
    sharpen,
    median,
    convolve,
    erode,
    dilate,
    edges,
    // geometry
    resize,
    rotate,
    flip,
    flop,
    crop,
    smartcrop,
    trim,
    extend,
    // overlays
    composite,
    text,
    blurfaces,
    // analysis (pixels unchanged unless said)
    qr,
    contours,
    phash,
    thumbhash,
    metadata,
    // benchmarking
    identity,
];
const byName = new Map(operations.map((op) => [op.name, op]));
export function findOperation(name) {
    return byName.get(name);
}
/** The catalogue as the API serves it: parameters as JSON Schema (types, ranges, defaults). */
export function describeOperations() {
    return operations.map((op) => ({
        name: op.name,
        description: op.description,
        tiling: op.tiling.kind,
        tileable: op.tiling.kind !== 'whole',
        ...(op.tiling.kind === 'whole' ? { runsWholeBecause: op.tiling.reason } : {}),
        ...(op.tiling.kind === 'move' ? { runsWholeWhen: op.tiling.otherwise } : {}),
        params: z.toJSONSchema(op.params, { io: 'input' }),
    }));
}
/**
 * GET /v1/operations (and `dips ops --json`): the operations, and the JSON Schema of the output options a
 * job may give (encode.ts), so a client renders both its pipeline editor and its output form from one answer.
 */
export function describeCatalogue() {
    return { operations: describeOperations(), outputOptions: z.toJSONSchema(outputOptions, { io: 'input' }) };
}
//# sourceMappingURL=catalogue.js.map