import { extractRect } from './pixel-move.js';
import { parsePipeline, PipelineError, runSteps } from './pipeline.js';
/**
 * Runs one task of a stage (worker side): the stage's steps on the tile through the same step loop as
 * whole images (runSteps, which tracks where the tile lies as pixel moves carry it), then cuts out the
 * requested core. Depends on the task alone; `signal` aborts it between steps.
 */
export async function executeTileTask(task, signal) {
    const { tile, source } = task;
    if (tile.width !== source.width || tile.height !== source.height) {
        throw new Error(`tile of ${tile.width}x${tile.height} pixels does not match its source rectangle ${source.width}x${source.height}`);
    }
    const steps = parsePipeline(task.steps);
    const { image, annotations, place } = await runSteps(tile, steps, {
        signal,
        ...(task.core ? { tile: { region: source, imageSize: task.imageSize } } : {}),
        ...(task.histogram ? { histogram: task.histogram } : {}),
    });
    const { core: wanted } = task;
    const { region } = place;
    const core = wanted ? coreOf(image, { ...wanted, x: wanted.x - region.x, y: wanted.y - region.y }) : image;
    const result = { annotations };
    if (task.returnCore)
        result.core = core;
    if (task.histogramFor) {
        const [{ op, params }] = parsePipeline([task.histogramFor]);
        if (op.tiling.kind !== 'statistics')
            throw new PipelineError(`${op.name} is not a statistics operation`);
        result.histogram = op.tiling.histogram(core, params);
    }
    return result;
}
/** The core's pixels: rows as wide as the tile are one run of its bytes, taken without copying (a strip's core is most of it). */
function coreOf(image, rect) {
    if (rect.x !== 0 || rect.width !== image.width || rect.y < 0 || rect.y + rect.height > image.height)
        return extractRect(image, rect);
    const rowBytes = image.width * image.channels;
    return { ...image, height: rect.height, data: image.data.subarray(rect.y * rowBytes, (rect.y + rect.height) * rowBytes) };
}
//# sourceMappingURL=execute-tile.js.map