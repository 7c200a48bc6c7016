import { ApiError } from '../protocol/errors.js';
import { InputError } from '../image-core/decode.js';
import { parsePipeline, PipelineError } from '../image-core/pipeline.js';
import { processImage } from '../image-core/process-image.js';
import { inputOfLocation, writeLocation } from './locations.js';
import { runVariantsTask } from './run-variants.js';
import { isTiledTask, runTiledTask } from './tiled-tasks.js';
/** Runs one task: read its input, do its kind's work, write its output, describe the outcome. */
export async function runTask(task, reach, limits) {
    const { spec } = task;
    const started = performance.now();
    const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
    try {
        let done;
        if (spec.kind === 'variants')
            done = await runVariantsTask({ ...task, spec }, reach, limits);
        else if (isTiledTask(task))
            done = await runTiledTask(task, reach, limits);
        else if (spec.kind === 'whole')
            done = await runWholeTask(task, spec, reach, limits);
        else
            throw new ApiError(400, 'bad_task', `unknown task kind ${spec.kind}`);
        return { ok: true, lease: task.lease, processingMs: elapsed(), ...done };
    }
    catch (error) {
        const failure = asApiError(error);
        return { ok: false, lease: task.lease, processingMs: elapsed(), error: { status: failure.status, code: failure.code, message: failure.message } };
    }
}
async function runWholeTask(task, spec, reach, limits) {
    if (!task.output)
        throw new ApiError(400, 'bad_task', 'a whole task needs an output location');
    const { input, bytes: bytesIn } = await inputOfLocation(task.input, reach);
    const result = await processImage(input, parsePipeline(spec.pipeline), { ...spec.options, ...(spec.format ? { format: spec.format } : {}), ...(spec.quality ? { quality: spec.quality } : {}) }, { maxPixels: limits.maxPixels, name: spec.name, ...(reach.signal ? { signal: reach.signal } : {}) });
    await writeLocation(task.output, result.data, reach);
    const { width, height, format, annotations } = result;
    return { bytesIn, bytesOut: result.data.length, image: { width, height, format, ...imageAnnotations(annotations) } };
}
/** A result's annotations as imageOutput carries them: all of them, and the QR texts also on their own. */
export function imageAnnotations(annotations) {
    return {
        ...(annotations.qr ? { qr: annotations.qr } : {}),
        ...(Object.keys(annotations).length > 0 ? { annotations: annotations } : {}),
    };
}
/**
 * The worker's errors in the one error model: problems with the image or pipeline are permanent (422,
 * the master must not retry them); the rest is 500.
 */
export function asApiError(error) {
    if (error instanceof ApiError)
        return error;
    if (error instanceof InputError)
        return new ApiError(422, error.code, error.message);
    if (error instanceof PipelineError)
        return new ApiError(422, 'bad_pipeline', error.message);
    return new ApiError(500, 'task_failed', error?.message ?? String(error));
}
//# sourceMappingURL=run-task.js.map