import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { inputErrorFrom, openInput, type OpenedInput } from './decode.js';
import { encodePipeline, type EncodeOptions } from './encode.js';
import { type OutputOptions } from '../protocol/output.js';
import { executeTileTask } from './execute-tile.js';
import { cutRows, headerFor, readHeader, writeIntermediate } from './intermediate.js';
import { encodeRestartBand, rawBand, type BandPixels } from './jpeg-restart.js';
import type { Annotations } from './operation.js';
import { parsePipeline } from './pipeline.js';
import { tilingOf, type ImageShape } from './planner.js';
import type { Size } from './pixel-move.js';
import { fusionOf } from './process-image.js';
import type { RawImage, Rect } from './raw-image.js';
import { rawResult, toRawImage } from './sharp-raw.js';

/**
 * The three kinds of work of a tiled image, all run by workers (services/worker/tiled-tasks.ts moves
 * their bytes): `decode` the upload into the first intermediate, run a `tile` of a stage (its rows read
 * from the stage's intermediate, its core written into the next), `encode` the last intermediate.
 */

/** One tile of one stage, computed from its rows alone (executeTileTask), so it can be retried anywhere. */
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

/** A tile as the master describes it (JSON, services/protocol/tasks.ts `tileSpec`): no pixels, only where they are. */
export interface TileJob {
  steps: Array<Record<string, unknown>>;
  /**
   * Shape of the stage's input intermediate; the task's input is the bytes of the rows `source` spans
   * (rowsRange). With `decode`, the shape of the decoded upload, and the task's input is the upload.
   */
  input: ImageShape;
  /** The tile decodes its rows from the upload (a decoding stage, docs/tiling.md); `name` names it in errors. */
  decode?: { name: string };
  source: Rect;
  core?: Rect;
  /** A tiled stage's whole output (its .v header, written by the core at the origin). */
  output?: ImageShape;
  histogram?: number[];
  histogramFor?: Record<string, unknown>;
  returnCore: boolean;
  /** The core is encoded as its rows' part of the output JPEG (Stage.restart), not written as pixels. */
  jpeg?: { pieceRows: number; quality?: number; options?: OutputOptions };
}

/** What a tile (or a decode) reports: the shape of the pixels it wrote, and the tile's histogram and annotations. */
export interface TileOutcome extends ImageShape {
  histogram?: number[];
  annotations?: Annotations;
}

/**
 * Runs a tile on the bytes of its rows (or, with `job.decode`, on the upload, a buffer or a file path)
 * and returns the bytes to write, in order and never joined (a strip can be 150 MB): a tiled stage's core
 * (after the .v header when the core starts the image, see coreRange), its band of the output JPEG
 * (`job.jpeg`), or a whole stage's complete .v file.
 */
export async function runTileJob(
  job: TileJob,
  input: Buffer | string,
  options: { signal?: AbortSignal; maxPixels: number },
): Promise<{ bytes?: Buffer[]; outcome: TileOutcome }> {
  const decoding = job.decode && (await decodeTileRows(input, job, { name: job.decode.name, maxPixels: options.maxPixels }));
  if (decoding && decoding.steps.length === 0 && job.jpeg && !job.histogramFor) return encodeStripThroughFile(decoding.rows, job, job.decode!.name);
  const { tile, steps } = decoding ? { tile: await decoding.tile(), steps: decoding.steps } : { tile: cutRows(input as Buffer, job.input, job.source), steps: job.steps };
  const task: TileTask = {
    steps,
    tile,
    source: job.source,
    imageSize: { width: job.input.width, height: job.input.height },
    returnCore: job.returnCore,
    ...(job.core ? { core: job.core } : {}),
    ...(job.histogram ? { histogram: Uint32Array.from(job.histogram) } : {}),
    ...(job.histogramFor ? { histogramFor: job.histogramFor } : {}),
  };
  const result = await executeTileTask(task, options.signal);
  const shape = result.core ? { width: result.core.width, height: result.core.height, channels: result.core.channels } : job.input;
  const outcome: TileOutcome = {
    ...shape,
    annotations: result.annotations,
    ...(result.histogram ? { histogram: Array.from(result.histogram) } : {}),
  };
  if (!result.core) return { outcome };
  if (job.output && job.output.channels !== shape.channels) {
    throw new Error(`the stage made ${shape.channels}-channel pixels where its plan expects ${job.output.channels}`);
  }
  if (job.jpeg) return { bytes: await encodeBand(rawBand(result.core), job), outcome };
  const startsFile = !job.core || (job.core.x === 0 && job.core.y === 0);
  return { bytes: startsFile ? [await headerFor(job.output ?? shape), result.core.data] : [result.core.data], outcome };
}

/** A tile's core as its band of the output JPEG (job.jpeg). */
function encodeBand(band: BandPixels, job: TileJob): Promise<Buffer[]> {
  if (!job.jpeg || !job.core || !job.output) throw new Error('a tile encoding its part of the JPEG needs its core and the stage output shape');
  const { pieceRows, quality, options } = job.jpeg;
  const at = { y: job.core.y, imageHeight: job.output.height, pieceRows };
  return encodeRestartBand(band, at, { ...options, format: 'jpeg', ...(quality ? { quality } : {}) });
}

/**
 * A decoding strip whose steps all ran in its decode call, encoding its band of the JPEG: libvips streams
 * the strip into a scratch .v file and each piece is encoded from that file, so the strip's pixels are
 * never held in memory besides the copy sharp's blur keeps of its input (a blurred 10000x5000 strip of the
 * 100 MP JPEG: 237 MiB peak instead of 367, the same CPU).
 */
async function encodeStripThroughFile(strip: Sharp, job: TileJob, name: string): Promise<{ bytes: Buffer[]; outcome: TileOutcome }> {
  const scratch = join(tmpdir(), `dips-strip-${randomBytes(6).toString('hex')}.v`);
  try {
    await strip.toFile(scratch).catch((error: unknown) => {
      throw inputErrorFrom(error, name);
    });
    const shape = await readHeader(scratch);
    const core = job.core!;
    if (shape.width !== core.width || shape.channels !== job.output?.channels) {
      throw new Error(`the strip made ${shape.width}-wide ${shape.channels}-channel pixels where its plan expects ${core.width} wide with ${job.output?.channels}`);
    }
    const skip = core.y - job.source.y;
    const band: BandPixels = {
      ...shape,
      height: core.height,
      rows: (top, rows) => sharp(scratch, { limitInputPixels: false }).extract({ left: 0, top: skip + top, width: shape.width, height: rows }),
    };
    return { bytes: await encodeBand(band, job), outcome: { width: core.width, height: core.height, channels: shape.channels, annotations: {} } };
  } finally {
    await rm(scratch, { force: true });
  }
}

/**
 * The pixels of `job.source` decoded from the upload itself: libvips decodes JPEG and PNG rows in
 * order and stops after the last one the extract needs. The stage's first step joins the same sharp call
 * when processImage would fuse it with the decode (fusionOf: a plain file, a sharp-native step) and it
 * does not move pixels (runSteps tracks where a moved tile lies). Returns that call (`rows`), the steps
 * left, and `tile()`, which runs the call into raw pixels.
 */
async function decodeTileRows(upload: Buffer | string, job: TileJob, options: { name: string; maxPixels: number }) {
  const opened = await openInput(upload, options);
  const { input, source } = job;
  if (opened.width !== input.width || opened.height !== input.height || opened.channels !== input.channels) {
    throw new Error(
      `${options.name} decodes to ${opened.width}x${opened.height} with ${opened.channels} channels; the plan expected ` +
        `${input.width}x${input.height} with ${input.channels}`,
    );
  }
  const steps = parsePipeline(job.steps);
  const [first] = steps;
  const fused = fusionOf(steps, opened).withDecode === 1 && tilingOf(first) !== 'move';
  // extract after autoOrient: sharp orients first (orientBefore), so these are rows of the upright image.
  const extracted = opened.pipeline.extract({ left: source.x, top: source.y, width: source.width, height: source.height });
  const rows = fused ? first.op.sharp!.build(extracted, first.params, source) : extracted;
  const tile = () =>
    (fused ? rawResult(rows, opened.channels) : toRawImage(rows)).catch((error: unknown) => {
      throw inputErrorFrom(error, options.name);
    });
  return { rows, tile, steps: job.steps.slice(fused ? 1 : 0) };
}

/** Decodes an upload into the run's first intermediate (.v at `path`) and returns its shape. */
export async function decodeToIntermediate(input: Buffer | string, path: string, options: { maxPixels: number; name: string; opened?: OpenedInput }): Promise<ImageShape> {
  // The caller may have read the header already (a worker sizes what the decode holds from it).
  const { pipeline } = options.opened ?? (await openInput(input, options));
  return writeIntermediate(pipeline, path).catch((error: unknown) => {
    throw inputErrorFrom(error, options.name);
  });
}

/** Encodes the last intermediate (sharp reads the .v file itself, row by row). */
export function encodeIntermediate(path: string, shape: ImageShape, options: EncodeOptions): Promise<Buffer> {
  return encodePipeline(sharp(path, { limitInputPixels: false }), shape, options);
}
