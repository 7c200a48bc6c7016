import { z } from 'zod';
import type { Annotations } from './operation.js';
import type { Size } from './pixel-move.js';
import type { RawImage, Rect } from './raw-image.js';

/**
 * What the master sends a worker for one tile of one stage. executeTileTask(task) computes the result
 * from the task alone, so a task can be retried on any worker.
 */
export interface TileTask {
  /** The stage's steps in canonical JSON (serializePipeline); the worker validates them again. */
  steps: Array<Record<string, unknown>>;
  /** The pixels of `source`: the tile with its halo, cut from the stage's input. */
  tile: RawImage;
  /** Where the tile lies in the stage's input. */
  source: Rect;
  /** Size of the stage's input. */
  imageSize: Size;
  /** The rectangle of the stage's output to return; absent: the whole output (a whole stage). */
  core?: Rect;
  /** Histogram merged over all tiles, for the first step (a statistics step). */
  histogram?: Uint32Array;
  /** A statistics step (canonical JSON): return the histogram of the output core as it computes it. */
  histogramFor?: Record<string, unknown>;
  /** False when the stage only measures (no steps): the result then carries no pixels. */
  returnCore: boolean;
}

export interface TileResult {
  /** The output core's pixels (absent when the task said returnCore: false). */
  core?: RawImage;
  histogram?: Uint32Array;
  annotations: Annotations;
}

/*
 * Wire format, both directions: 4 ASCII bytes naming the message, a little-endian uint32 giving the
 * length of a UTF-8 JSON header, the header, then the raw pixel bytes. Raw pixels were chosen by
 * measurement (docs/tiling.md): compressing a 1024x1024 RGB tile costs more CPU (PNG level 1: 18 ms
 * to encode + 11 ms to decode, deflate level 1: 38 + 18 ms) than sending the 3.1 MB saves.
 */
const TASK_MAGIC = 'DPT1';
const RESULT_MAGIC = 'DPR1';
const PREFIX_BYTES = 8;
/** Headers hold steps, rectangles and histograms: small, but a histogram may have 65536 bins. */
const MAX_HEADER_BYTES = 4 * 1024 * 1024;

const count = z.number().int().min(0);
const rect = z.object({ x: count, y: count, width: count, height: count });
const pixelLayout = z.object({ width: count, height: count, channels: z.number().int().min(1).max(4) });
const histogram = z.array(count);

const taskHeader = z.object({
  steps: z.array(z.record(z.string(), z.unknown())),
  tile: pixelLayout,
  source: rect,
  imageSize: z.object({ width: count, height: count }),
  core: rect.optional(),
  histogram: histogram.optional(),
  histogramFor: z.record(z.string(), z.unknown()).optional(),
  returnCore: z.boolean(),
});

const resultHeader = z.object({
  core: pixelLayout.optional(),
  histogram: histogram.optional(),
  annotations: z.record(z.string(), z.unknown()),
});

/** A message that is not a well-formed tile task or result; the message says what is wrong. */
export class TileWireError extends Error {
  override readonly name = 'TileWireError';
}

function frame(magic: string, header: unknown, pixels?: Buffer): Buffer[] {
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(PREFIX_BYTES);
  prefix.write(magic, 0, 'ascii');
  prefix.writeUInt32LE(json.length, 4);
  return pixels ? [prefix, json, pixels] : [prefix, json];
}

function unframe<T>(magic: string, what: string, bytes: Buffer, schema: z.ZodType<T>): { header: T; pixels: Buffer } {
  if (bytes.length < PREFIX_BYTES || bytes.toString('ascii', 0, 4) !== magic) {
    throw new TileWireError(`not a DIPS ${what}: expected it to start with "${magic}"`);
  }
  const headerBytes = bytes.readUInt32LE(4);
  if (headerBytes > MAX_HEADER_BYTES || PREFIX_BYTES + headerBytes > bytes.length) {
    throw new TileWireError(`${what} header of ${headerBytes} bytes does not fit in the ${bytes.length}-byte message`);
  }
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8', PREFIX_BYTES, PREFIX_BYTES + headerBytes));
  } catch (error) {
    throw new TileWireError(`${what} header is not JSON: ${(error as Error).message}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'header'}: ${issue.message}`);
    throw new TileWireError(`${what} header is invalid: ${issues.join('; ')}`);
  }
  return { header: parsed.data, pixels: bytes.subarray(PREFIX_BYTES + headerBytes) };
}

/** Checks that the pixel bytes match the declared layout and wraps them without copying. */
function pixelsOf(what: string, layout: z.infer<typeof pixelLayout>, pixels: Buffer): RawImage {
  const expected = layout.width * layout.height * layout.channels;
  if (pixels.length !== expected) {
    throw new TileWireError(
      `${what} declares ${layout.width}x${layout.height}x${layout.channels} pixels (${expected} bytes) ` +
        `but carries ${pixels.length}`,
    );
  }
  return { data: pixels, ...layout, channels: layout.channels as RawImage['channels'] };
}

const layoutOf = ({ width, height, channels }: RawImage) => ({ width, height, channels });

/** The task as message chunks (header, pixels): write them in order, or Buffer.concat them. */
export function encodeTileTask(task: TileTask): Buffer[] {
  const { tile, histogram: merged, ...rest } = task;
  const header = { ...rest, tile: layoutOf(tile), histogram: merged && Array.from(merged) };
  return frame(TASK_MAGIC, header, tile.data);
}

export function decodeTileTask(bytes: Buffer): TileTask {
  const { header, pixels } = unframe(TASK_MAGIC, 'tile task', bytes, taskHeader);
  const { tile, histogram: merged, ...rest } = header;
  const task: TileTask = { ...rest, tile: pixelsOf('tile task', tile, pixels) };
  if (merged) task.histogram = Uint32Array.from(merged);
  return task;
}

export function encodeTileResult(result: TileResult): Buffer[] {
  const header = {
    core: result.core && layoutOf(result.core),
    histogram: result.histogram && Array.from(result.histogram),
    annotations: result.annotations,
  };
  return frame(RESULT_MAGIC, header, result.core?.data);
}

export function decodeTileResult(bytes: Buffer): TileResult {
  const { header, pixels } = unframe(RESULT_MAGIC, 'tile result', bytes, resultHeader);
  const result: TileResult = { annotations: header.annotations };
  if (header.core) result.core = pixelsOf('tile result', header.core, pixels);
  else if (pixels.length > 0) {
    throw new TileWireError(`tile result declares no pixels but carries ${pixels.length} bytes`);
  }
  if (header.histogram) result.histogram = Uint32Array.from(header.histogram);
  return result;
}
