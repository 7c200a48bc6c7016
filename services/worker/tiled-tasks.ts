import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Task } from '../protocol/tasks.js';
import { decodeOptions, type TaskDone, type TaskLimits } from './run-task.js';
import { openInput } from '../image-core/decode.js';
import { parsePipeline } from '../image-core/pipeline.js';
import { wholeStageBytes } from '../image-core/planner.js';
import { decodeToIntermediate, encodeIntermediate, runTileJob } from '../image-core/tile-task.js';
import { fileOfLocation, inputOfLocation, readLocation, writeLocation, writeLocationFromFile, type Reach } from './locations.js';

type TiledKind = 'decode' | 'tile' | 'encode';
export type TiledTask = Task & { spec: Extract<Task['spec'], { kind: TiledKind }> };

/** JPEG segments the join task reads at once. */
const SEGMENT_READS_AT_ONCE = 4;

export const isTiledTask = (task: Task): task is TiledTask => ['decode', 'tile', 'encode'].includes(task.spec.kind);

/**
 * The work of a tiled image (services/image-core/tile-task.ts) with its bytes moved by the worker: a
 * decode writes the whole intermediate, a tile reads its rows as one byte range and writes its core as
 * another, an encode reads the last intermediate (the file itself when the worker shares the master's
 * disk, else a download to scratch space) and writes the image, or joins the JPEG segments the last
 * stage's strips wrote.
 */
export async function runTiledTask(task: TiledTask, reach: Reach, limits: TaskLimits): Promise<TaskDone> {
  const { spec } = task;
  const output = () => {
    if (!task.output) throw new Error(`a ${spec.kind} task needs an output`);
    return task.output;
  };
  if (spec.kind === 'tile') {
    // A tile that decodes the upload gives sharp a shared file's path (libvips reads only what it decodes);
    // a stage's rows arrive as one buffer.
    const input = spec.decode ? await inputOfLocation(task.input, reach) : await readLocation(task.input, reach).then((data) => ({ input: data, bytes: data.length }));
    // A tile without a core is a whole stage, which holds its memory; the planner sizes tiles for two at once.
    const holds = spec.core ? 0 : wholeStageBytes(spec.input, parsePipeline(spec.steps));
    const { bytes, outcome } = await limits.memory.hold(holds, () => runTileJob(spec, input.input, { maxPixels: limits.maxPixels, ...(reach.signal ? { signal: reach.signal } : {}) }), reach.signal);
    const { tag } = bytes && task.output ? await writeLocation(task.output, bytes, reach) : {};
    return { bytesIn: input.bytes, bytesOut: bytes?.reduce((sum, chunk) => sum + chunk.length, 0) ?? 0, tile: { ...outcome, ...(tag ? { tag } : {}) } };
  }
  if (spec.kind === 'encode' && spec.segments) {
    // The last stage's strips encoded the JPEG: the output is their bytes in order.
    const segments = [task.input, ...spec.segments];
    const data: Buffer[] = new Array(segments.length);
    // A few requests at once: each is a round trip to storage, and the output needs all of them anyway.
    let next = 0;
    const reader = async () => {
      for (let index = next++; index < segments.length; index = next++) data[index] = await readLocation(segments[index], reach);
    };
    await Promise.all(Array.from({ length: Math.min(SEGMENT_READS_AT_ONCE, segments.length) }, reader));
    await writeLocation(output(), data, reach);
    const bytes = data.reduce((sum, chunk) => sum + chunk.length, 0);
    const { width, height } = spec.shape;
    return { bytesIn: bytes, bytesOut: bytes, image: { width, height, format: spec.format } };
  }
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-tiled-'));
  try {
    if (spec.kind === 'decode') {
      const input = await readLocation(task.input, reach);
      const target = output();
      // Beside its target on a shared disk (renamed into place), else in scratch space and then PUT.
      const file = target.via === 'file' ? `${target.path}.partial-${randomBytes(4).toString('hex')}.v` : path.join(scratch, 'decoded.v');
      try {
        const decoding = decodeOptions(limits, spec.name);
        const opened = await openInput(input, decoding);
        const shape = await limits.memory.hold(opened.frameBytes, () => decodeToIntermediate(input, file, { ...decoding, opened }), reach.signal);
        await writeLocationFromFile(target, file, reach);
        return { bytesIn: input.length, bytesOut: (await fs.stat(target.via === 'file' ? target.path : file)).size, tile: shape };
      } finally {
        await fs.rm(file, { force: true });
      }
    }
    const { file } = await fileOfLocation(task.input, scratch, reach);
    const data = await encodeIntermediate(file, spec.shape, { ...spec.options, format: spec.format, ...(spec.quality ? { quality: spec.quality } : {}) });
    await writeLocation(output(), data, reach);
    const { width, height } = spec.shape;
    return { bytesIn: (await fs.stat(file)).size, bytesOut: data.length, image: { width, height, format: spec.format } };
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}
