import { ApiError } from '../protocol/errors.js';
import type { ImageOutput, Task, TaskResult, TaskSpec } from '../protocol/tasks.js';
import { InputError, openInput, type DecodeOptions, type OpenedInput } from '../image-core/decode.js';
import type { Annotations } from '../image-core/operation.js';
import { parsePipeline, PipelineError, type Step } from '../image-core/pipeline.js';
import { wholeStageBytes } from '../image-core/planner.js';
import { processImageInto } from '../image-core/process-image.js';
import { inputOfLocation, sinkFor, writeLocation, type Reach } from './locations.js';
import type { MemoryGate } from './memory-gate.js';
import { runVariantsTask } from './run-variants.js';
import { isTiledTask, runTiledTask } from './tiled-tasks.js';

/** What a task kind's runner reports; runTask adds the lease and the time taken. */
export type TaskDone = Omit<Extract<TaskResult, { ok: true }>, 'ok' | 'lease' | 'processingMs'>;

/**
 * What bounds a task on this worker: the pixels an image may have, the most its decode may hold (the
 * worker's memory), and the memory its whole stage or decode holds while it runs.
 */
export interface TaskLimits {
  maxPixels: number;
  maxDecodeBytes: number;
  memory: MemoryGate;
}

/** How this worker opens an input: with its limits, naming the file as the user knows it. */
export const decodeOptions = (limits: TaskLimits, name: string): DecodeOptions => ({ maxPixels: limits.maxPixels, maxDecodeBytes: limits.maxDecodeBytes, name });

/** What a whole image lends from the memory gate while it runs: its largest whole stage, or the whole frame its decode holds. */
export const imageMemoryOf = (opened: OpenedInput, steps: readonly Step[]): number => Math.max(wholeStageBytes(opened, steps), opened.frameBytes);

/** Runs one task: read its input, do its kind's work, write its output, describe the outcome. */
export async function runTask(task: Task, reach: Reach, limits: TaskLimits): Promise<TaskResult> {
  const { spec } = task;
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
  try {
    let done: TaskDone;
    if (spec.kind === 'variants') done = await runVariantsTask({ ...task, spec }, reach, limits);
    else if (isTiledTask(task)) done = await runTiledTask(task, reach, limits);
    else if (spec.kind === 'whole') done = await runWholeTask(task, spec, reach, limits);
    else throw new ApiError(400, 'bad_task', `unknown task kind ${spec.kind}`);
    return { ok: true, lease: task.lease, processingMs: elapsed(), ...done };
  } catch (error) {
    const failure = asApiError(error);
    return { ok: false, lease: task.lease, processingMs: elapsed(), error: { status: failure.status, code: failure.code, message: failure.message } };
  }
}

async function runWholeTask(task: Task, spec: Extract<TaskSpec, { kind: 'whole' }>, reach: Reach, limits: TaskLimits): Promise<TaskDone> {
  const { output } = task;
  if (!output) throw new ApiError(400, 'bad_task', 'a whole task needs an output location');
  const { input, bytes: bytesIn, release } = await inputOfLocation(task.input, reach);
  try {
    const steps = parsePipeline(spec.pipeline);
    const signal = reach.signal ? { signal: reach.signal } : {};
    const decoding = { ...decodeOptions(limits, spec.name), ...signal };
    const opened = await openInput(input, decoding);
    const result = await limits.memory.hold(
      imageMemoryOf(opened, steps),
      () => processImageInto(input, steps, { ...spec.options, ...(spec.format ? { format: spec.format } : {}), ...(spec.quality ? { quality: spec.quality } : {}) }, { ...decoding, opened }, sinkFor(output)),
      reach.signal,
    );
    // Without data the result is in its file already (sinkFor).
    if (result.data) await writeLocation(output, result.data, reach);
    const { width, height, format, annotations } = result;
    return { bytesIn, bytesOut: result.bytes, image: { width, height, format, ...imageAnnotations(annotations) } };
  } finally {
    // Every sharp call on the input has ended (each is awaited above), so its buffer may serve the next task.
    release();
  }
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
