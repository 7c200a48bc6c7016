import { ApiError } from '../protocol/errors.js';
import type { ImageOutput, Task, TaskResult, TaskSpec } from '../protocol/tasks.js';
import { InputError } from '../image-core/decode.js';
import type { Annotations } from '../image-core/operation.js';
import { parsePipeline, PipelineError } from '../image-core/pipeline.js';
import { processImage } from '../image-core/process-image.js';
import { readLocation, writeLocation, type Reach } from './locations.js';
import { runVariantsTask } from './run-variants.js';
import { isTiledTask, runTiledTask } from './tiled-tasks.js';

/** Runs one task: read its input, do its kind's work, write its output, describe the outcome. */
export async function runTask(task: Task, reach: Reach, limits: { maxPixels: number }): Promise<TaskResult> {
  const { spec } = task;
  if (spec.kind === 'variants') return runVariantsTask({ ...task, spec }, reach, limits);
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
  try {
    if (isTiledTask(task)) {
      const done = await runTiledTask(task, reach, limits);
      return { ok: true, lease: task.lease, processingMs: elapsed(), ...done };
    }
    if (spec.kind !== 'whole') throw new ApiError(400, 'bad_task', `unknown task kind ${spec.kind}`);
    if (!task.output) throw new ApiError(400, 'bad_task', 'a whole task needs an output location');
    const input = await readLocation(task.input, reach);
    const { data, image } = await work(spec, input, { ...limits, ...(reach.signal ? { signal: reach.signal } : {}) });
    await writeLocation(task.output, data, reach);
    return { ok: true, lease: task.lease, processingMs: elapsed(), bytesIn: input.length, bytesOut: data.length, ...(image ? { image } : {}) };
  } catch (error) {
    const failure = asApiError(error);
    return { ok: false, lease: task.lease, processingMs: elapsed(), error: { status: failure.status, code: failure.code, message: failure.message } };
  }
}

type Work = { data: Buffer; image?: ImageOutput };

async function work(spec: Extract<TaskSpec, { kind: 'whole' }>, input: Buffer, options: { maxPixels: number; signal?: AbortSignal }): Promise<Work> {
  const result = await processImage(
    input,
    parsePipeline(spec.pipeline),
    { ...spec.options, ...(spec.format ? { format: spec.format } : {}), ...(spec.quality ? { quality: spec.quality } : {}) },
    { maxPixels: options.maxPixels, name: spec.name, ...(options.signal ? { signal: options.signal } : {}) },
  );
  const { width, height, format, annotations } = result;
  return { data: result.data, image: { width, height, format, ...imageAnnotations(annotations) } };
}

/** A result's annotations as imageOutput carries them: all of them, and the QR texts also on their own. */
export function imageAnnotations(annotations: Annotations): Pick<ImageOutput, 'qr' | 'annotations'> {
  return {
    ...(annotations.qr ? { qr: annotations.qr } : {}),
    ...(Object.keys(annotations).length > 0 ? { annotations: annotations as Record<string, unknown> } : {}),
  };
}

/**
 * The worker's errors in the one error model: problems with the image or pipeline are permanent (422,
 * the master must not retry them); the rest is 500.
 */
export function asApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof InputError) return new ApiError(422, error.code, error.message);
  if (error instanceof PipelineError) return new ApiError(422, 'bad_pipeline', error.message);
  return new ApiError(500, 'task_failed', (error as Error)?.message ?? String(error));
}
