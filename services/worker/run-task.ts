import { ApiError } from '../protocol/errors.js';
import type { ImageOutput, Task, TaskResult } from '../protocol/tasks.js';
import { InputError } from '../image-core/decode.js';
import { parsePipeline, PipelineError } from '../image-core/pipeline.js';
import type { OutputFormat } from '../image-core/encode.js';
import { processImage } from '../image-core/process-image.js';
import { processVariants } from '../image-core/variants.js';
import { readLocation, writeLocation, type Reach } from './locations.js';
import { isTiledTask, runTiledTask } from './tiled-tasks.js';

/** Runs one task: read its input, do its kind's work, write its output, describe the outcome. */
export async function runTask(task: Task, reach: Reach, limits: { maxPixels: number }): Promise<TaskResult> {
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
  try {
    if (isTiledTask(task)) {
      const done = await runTiledTask(task, reach, limits);
      return { ok: true, lease: task.lease, processingMs: elapsed(), ...done };
    }
    if (!task.output) throw new ApiError(400, 'bad_task', `a ${task.spec.kind} task needs an output location`);
    const input = await readLocation(task.input, reach);
    const { data, image, variants } = await work(task, input, { ...limits, ...(reach.signal ? { signal: reach.signal } : {}) });
    await writeLocation(task.output, data, reach);
    return { ok: true, lease: task.lease, processingMs: elapsed(), bytesIn: input.length, bytesOut: data.length, ...(image ? { image } : {}), ...(variants ? { variants } : {}) };
  } catch (error) {
    const failure = asApiError(error);
    return { ok: false, lease: task.lease, processingMs: elapsed(), error: { status: failure.status, code: failure.code, message: failure.message } };
  }
}

type Work = { data: Buffer; image?: ImageOutput; variants?: Array<{ format: OutputFormat; width: number; height: number; bytes: number }> };

async function work(task: Task, input: Buffer, options: { maxPixels: number; signal?: AbortSignal }): Promise<Work> {
  const { spec } = task;
  if (spec.kind === 'variants') {
    const result = await processVariants(input, parsePipeline(spec.pipeline), spec.variants, {
      maxPixels: options.maxPixels,
      name: spec.name,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const first = result.variants[0]!;
    const annotations = result.annotations as Record<string, unknown>;
    return {
      data: Buffer.concat(result.variants.map((variant) => variant.data)),
      image: { width: result.width, height: result.height, format: first.format, ...(Object.keys(annotations).length > 0 ? { annotations } : {}) },
      variants: result.variants.map(({ format, width, height, data }) => ({ format, width, height, bytes: data.length })),
    };
  }
  if (spec.kind !== 'whole') throw new ApiError(400, 'bad_task', `unknown task kind ${spec.kind}`);
  const result = await processImage(
    input,
    parsePipeline(spec.pipeline),
    { ...(spec.format ? { format: spec.format } : {}), ...(spec.quality ? { quality: spec.quality } : {}) },
    { maxPixels: options.maxPixels, name: spec.name, ...(options.signal ? { signal: options.signal } : {}) },
  );
  const { width, height, format } = result;
  return { data: result.data, image: { width, height, format, ...(result.annotations.qr ? { qr: result.annotations.qr } : {}) } };
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
