/** Where the pixels given to a step lie, filling in the whole-image defaults of StepContext. */
export function placeOf(image, context) {
    return {
        region: context.region ?? { x: 0, y: 0, width: image.width, height: image.height },
        imageSize: context.imageSize ?? { width: image.width, height: image.height },
    };
}
/** Identity helper that keeps the parameter type of each declaration precise. */
export function defineOperation(declaration) {
    return declaration;
}
/**
 * A statistics operation: its whole-image apply is derived (histogram of the image, then the mapping),
 * the same two functions the tiled path runs, so both paths agree by construction.
 */
export function defineStatisticsOperation(declaration) {
    const { statistics, ...rest } = declaration;
    return {
        ...rest,
        tiling: { kind: 'statistics', ...statistics },
        apply: async (image, params) => statistics.applyWithHistogram(image, params, statistics.histogram(image, params)),
    };
}
/**
 * An analysis operation: leaves the pixels alone and reports `analyse(...)` as annotations.<name>.
 * It runs on the whole image unless it declares another tiling (and then its annotations are merged
 * across tiles by mergeAnnotation).
 */
export function defineAnalysisOperation(declaration) {
    const { analyse, tiling, ...rest } = declaration;
    return {
        ...rest,
        tiling: tiling ?? { kind: 'whole', reason: 'its result describes the whole image' },
        apply: async (image, params, context) => {
            context.annotate?.(await analyse(image, params, context));
            return image;
        },
    };
}
/** Adds one operation's annotation: arrays are concatenated, anything else replaces what was there. */
export function mergeAnnotation(into, op, value) {
    const previous = into[op];
    into[op] = Array.isArray(previous) && Array.isArray(value) ? [...previous, ...value] : value;
}
/** Adds every annotation of `from` (e.g. a tile's) to `into`. */
export function mergeAnnotations(into, from) {
    for (const [op, value] of Object.entries(from))
        mergeAnnotation(into, op, value);
}
/** The halo a step's tiles need on every side (0 unless it is a neighbourhood op). */
export function haloOf(tiling, params) {
    return tiling.kind === 'neighbourhood' ? tiling.halo(params) : 0;
}
/** The pixel move of a step that tiles as a move with these parameters, else undefined. */
export function pixelMoveOf(tiling, params) {
    return tiling.kind === 'move' ? tiling.pixelMove(params) : undefined;
}
//# sourceMappingURL=operation.js.map