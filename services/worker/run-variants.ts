import { ApiError } from '../protocol/errors.js';
import type { Task, TaskSpec } from '../protocol/tasks.js';
import { openInput } from '../image-core/decode.js';
import { parsePipeline } from '../image-core/pipeline.js';
import { planImage } from '../image-core/planner.js';
import { processVariants } from '../image-core/variants.js';
import { inputOfLocation, sinkFor, writeLocation, type Reach } from './locations.js';
import { decodeOptions, imageAnnotations, imageMemoryOf, type TaskDone, type TaskLimits } from './run-task.js';

type VariantsTask = Task & { spec: Extract<TaskSpec, { kind: 'variants' }> };

/**
 * A batch item: reads the input where the task says (presigned URL, shared file or master blob),
 * refuses an image the master's planner would tile, decodes once (the header read for the plan is the
 * decode's), then encodes each variant and writes it to its own output. The master receives only the
 * description (sizes, formats, ETags).
 */
export async function runVariantsTask(task: VariantsTask, reach: Reach, limits: TaskLimits): Promise<TaskDone> {
  const { spec } = task;
  const { input, bytes: bytesIn, release } = await inputOfLocation(task.input, reach);
  try {
    const steps = parsePipeline(spec.pipeline);
    const opened = await openInput(input, decodeOptions(limits, spec.name));
    if (planImage(opened, steps, spec.whole).mode !== 'whole') {
      throw new ApiError(422, 'needs_tiling', `${spec.name}: ${opened.width}x${opened.height} needs tiling, which batch items do not do; make its session an upload job (POST /v1/uploads/{id}/job) or send it in a multipart POST /v1/jobs, which tile (dips submit does so by itself)`);
    }
    const signal = reach.signal ? { signal: reach.signal } : {};
    const result = await limits.memory.hold(
      imageMemoryOf(opened, steps),
      () =>
        processVariants(input, steps, spec.variants.map((variant) => ({ ...variant, sink: sinkFor(variant.output) })), {
          ...(spec.options ? { output: spec.options } : {}),
          maxPixels: limits.maxPixels,
          name: spec.name,
          opened,
          ...signal,
        }),
      reach.signal,
    );
    const variants = [];
    for (const [index, variant] of result.variants.entries()) {
      // A variant without data is in its file already (sinkFor).
      const { tag: etag } = variant.data ? await writeLocation(spec.variants[index]!.output, variant.data, reach) : {};
      variants.push({ format: variant.format, width: variant.width, height: variant.height, bytes: variant.bytes, ...(etag ? { etag } : {}) });
    }
    return {
      bytesIn,
      bytesOut: variants.reduce((sum, variant) => sum + variant.bytes, 0),
      image: { width: result.width, height: result.height, format: result.variants[0]!.format, ...imageAnnotations(result.annotations) },
      variants,
    };
  } finally {
    // Every sharp call on the input has ended (each is awaited above), so its buffer may serve the next task.
    release();
  }
}
