import sharp from 'sharp';
import { inputErrorFrom, openInput } from './decode.js';
import { encodePipeline, type EncodeOptions } from './encode.js';
import { executeTileTask } from './execute-tile.js';
import { cutRows, headerFor, writeIntermediate } from './intermediate.js';
import type { Annotations } from './operation.js';
import type { ImageShape } from './planner.js';
import type { Size } from './pixel-move.js';
import type { RawImage, Rect } from './raw-image.js';

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
  /** Shape of the stage's input intermediate; the task's input is the bytes of the rows `source` spans (rowsRange). */
  input: ImageShape;
  source: Rect;
  core?: Rect;
  /** A tiled stage's whole output (its .v header, written by the core at the origin). */
  output?: ImageShape;
  histogram?: number[];
  histogramFor?: Record<string, unknown>;
  returnCore: boolean;
}

/** What a tile (or a decode) reports: the shape of the pixels it wrote, and the tile's histogram and annotations. */
export interface TileOutcome extends ImageShape {
  histogram?: number[];
  annotations?: Annotations;
}

/**
 * Runs a tile on the bytes of its rows and returns the bytes to write: a tiled stage's core (with the
 * .v header first when the core starts the image, see coreRange), or a whole stage's complete .v file.
 */
export async function runTileJob(job: TileJob, rows: Buffer, signal?: AbortSignal): Promise<{ bytes?: Buffer; outcome: TileOutcome }> {
  const task: TileTask = {
    steps: job.steps,
    tile: cutRows(rows, job.input, job.source),
    source: job.source,
    imageSize: { width: job.input.width, height: job.input.height },
    returnCore: job.returnCore,
    ...(job.core ? { core: job.core } : {}),
    ...(job.histogram ? { histogram: Uint32Array.from(job.histogram) } : {}),
    ...(job.histogramFor ? { histogramFor: job.histogramFor } : {}),
  };
  const result = await executeTileTask(task, signal);
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
  const startsFile = !job.core || (job.core.x === 0 && job.core.y === 0);
  return { bytes: startsFile ? Buffer.concat([await headerFor(job.output ?? shape), result.core.data]) : result.core.data, outcome };
}

/** Decodes an upload into the run's first intermediate (.v at `path`) and returns its shape. */
export async function decodeToIntermediate(input: Buffer | string, path: string, options: { maxPixels: number; name: string }): Promise<ImageShape> {
  const { pipeline } = await openInput(input, options);
  return writeIntermediate(pipeline, path).catch((error: unknown) => {
    throw inputErrorFrom(error, options.name);
  });
}

/** Encodes the last intermediate (sharp reads the .v file itself, row by row). */
export function encodeIntermediate(path: string, shape: ImageShape, options: EncodeOptions): Promise<Buffer> {
  return encodePipeline(sharp(path, { limitInputPixels: false }), shape, options);
}
