import { decodedWhole, type InputFormat } from './decode.js';
import type { EncodeOptions } from './encode.js';
import { encodesByRestartIntervals, mcuSize, restartPieceRows } from './jpeg-restart.js';
import { PipelineError } from './errors.js';
import { haloOf, pixelMoveOf, type TilingKind } from './operation.js';
import { intersect, type PixelMove, type Size } from './pixel-move.js';
import { outputSizeOf, type Step } from './pipeline.js';
import type { Channels, Rect } from './raw-image.js';
import { PIXEL_MEMORY_SHARE } from './pixel-memory.js';
import { fusable } from './sharp-raw.js';

/** Memory of the smallest worker we plan for (an AWS micro instance). */
const DEFAULT_WORKER_MEMORY_BYTES = 1024 ** 3;
/** Bytes per sample a step needs while it runs: its input, its output and sharp's working copies. */
const WORKING_BYTES_PER_SAMPLE = 8;
/**
 * Bytes per output sample of a step in a whole stage, measured (#17): resize of a tiny JPEG to
 * 16383x16383 (805 M output samples) took the worker from 331 MB to 1,869 MB, ~1.9 bytes per sample (the
 * raw result plus libvips' output buffer). Its input is held too, one byte per sample.
 */
const WHOLE_STAGE_BYTES_PER_OUTPUT_SAMPLE = 2;
/** Tasks a worker runs at once (sharp's throughput comes from images in flight; see sharp-facts.md). */
const TASKS_PER_WORKER = 2;
/** Images up to this size go whole to one worker: tiling pays off only when several workers share one image. */
const WHOLE_IMAGE_MAX_PIXELS = 4096 * 4096;
/** Aim for about this many tiles per image, within the edge bounds below. */
const TARGET_TILES = 16;
const MIN_TILE_EDGE = 512;
const MAX_TILE_EDGE = 2048;
/**
 * Bytes per output sample of a strip that decodes its own rows and runs one step on them, measured
 * (bench, docs/tiling.md): a 10000x5005 strip of the 100 MP JPEG, decoded and blurred in one sharp call,
 * took a worker to 373 MB (60 MB idle), 2.1 bytes per sample (libvips' output buffer and the raw result).
 * Each further step of the stage holds its input and output as a raw-pixel step does.
 */
const DECODING_STRIP_BYTES_PER_SAMPLE = 2.5;
/**
 * Bytes per output sample of a decoding strip that streams its one step into a scratch file and encodes
 * its band of the JPEG from there (runsThroughFile): the step's input once. Measured on the 100 MP JPEG,
 * blur σ2, one strip per process over one whose decoder had started (83 MiB): 5000 rows peaked at
 * 251-257 MiB (1.19 bytes per sample), 6240 rows at 288 (1.15), 7488 at 326 (1.13).
 */
const DECODING_STRIP_THROUGH_FILE_BYTES_PER_SAMPLE = 1.2;
/**
 * A decoding stage has at least this many strips, so two workers share the decode. More cost more: each
 * strip decodes the upload from its first row to its last row (libvips decodes sequentially), so n strips
 * decode about (n + 1) / 2 images' worth.
 */
const MIN_DECODING_STRIPS = 2;

/**
 * A run of steps that tasks execute without talking to each other. A tiled stage cuts its input into
 * tiles (core plus the halo its local steps need) and runs on each; a whole stage is one task on the
 * whole image. Statistics steps start a new stage: the previous stage returns per-tile histograms.
 */
export interface Stage {
  steps: Step[];
  whole: boolean;
  /** The first step is a statistics step, applied with the histogram merged from the previous stage. */
  leadingStatistics: boolean;
  /** The next stage's leading statistics step: tasks return the histogram of their core for it. */
  histogramFor?: Step;
  /** Pixels of context every tile needs around its core: the sum of the local steps' halos. */
  halo: number;
  /**
   * The stage's tiles decode their rows from the upload themselves (the first stage, when it tiles and
   * writes pixels): no decode task runs before it, and no intermediate 0 is written.
   */
  decodes?: boolean;
  /** The stage's own tile edge where it differs from the plan's: a decoding stage's strips are fewer and larger. */
  tileSize?: number;
  /**
   * The last stage's strips encode the output JPEG themselves, in restart intervals of `pieceRows` rows
   * (jpeg-restart.ts), each strip `stripRows` rows (a multiple of pieceRows, but the last): no encode task
   * runs after it, only the concatenation of the strips' bytes.
   */
  restart?: { pieceRows: number; stripRows: number };
}

export type Plan =
  /** Encoded in, encoded out, on one worker; the master does no pixel work. */
  | { mode: 'whole' }
  | { mode: 'tiled'; tileSize: number; stages: Stage[]; input: ImageShape };

export type TiledPlan = Extract<Plan, { mode: 'tiled' }>;

export interface PlanOptions {
  /** Tile edge in pixels (DIPS_TILE_SIZE): tiles any image larger than one tile. */
  tileSize?: number;
  workerMemoryBytes?: number;
  /** Largest image (width × height) any step may produce (DIPS_MAX_PIXELS); default: no limit. */
  maxPixels?: number;
  /**
   * The upload's format: the first stage decodes its own rows unless libvips decodes such files whole
   * (GIF, WebP, AVIF: every strip would decode the whole frame). Unknown: a decode task runs first.
   */
  inputFormat?: InputFormat;
  /** The upload is progressive or interlaced (OpenedInput.progressive): decoded whole too, so a decode task runs first. */
  inputProgressive?: boolean;
  /** The upload is turned whole by its EXIF orientation (OpenedInput.turned): every strip would decode and turn all of it, so a decode task runs first. */
  inputTurned?: boolean;
  /**
   * The upload is plain (OpenedInput.plain): a decoding strip runs a sharp-native first step in its
   * decode call (processImage's fusion), which lets it stream through a scratch file (runsThroughFile).
   */
  inputPlain?: boolean;
  /** The output's encoding: a baseline JPEG is encoded by the last stage's strips (Stage.restart). */
  output?: Pick<EncodeOptions, 'format' | 'progressive' | 'chromaSubsampling'>;
}

/** An image's size and channel count, as it is before and after each step. */
export interface ImageShape extends Size {
  channels: Channels;
}

/**
 * The shape of the image before the first step and after each step, from the declarations alone
 * (outputSize, outputChannels). Throws PipelineError, naming the step, when one does not fit the image
 * it gets (a crop outside it), so the master can refuse the job at submission.
 */
export function shapesThrough(steps: readonly Step[], input: ImageShape): ImageShape[] {
  const shapes = [input];
  for (const [index, step] of steps.entries()) {
    const before = shapes.at(-1)!;
    try {
      const size = outputSizeOf(step, before);
      shapes.push({ ...size, channels: step.op.outputChannels?.(before.channels, step.params) ?? before.channels });
    } catch (error) {
      if (error instanceof PipelineError) throw new PipelineError(`pipeline step ${index + 1} (${error.message})`);
      throw error;
    }
  }
  return shapes;
}

/** The pixel move of a step that tiles as a move with its parameters, or undefined. */
export function stepMove(step: Step): PixelMove | undefined {
  return pixelMoveOf(step.op.tiling, step.params);
}

/** How a step runs under tiling: its declared kind, except a move whose parameters resample runs whole. */
export function tilingOf(step: Step): TilingKind {
  const { kind } = step.op.tiling;
  return kind === 'move' && !stepMove(step) ? 'whole' : kind;
}

/** Cuts the steps into stages; see Stage. */
export function planStages(steps: readonly Step[]): Stage[] {
  const stages: Stage[] = [];
  const newStage = (first: Step[], whole: boolean, leadingStatistics = false): Stage => {
    const stage: Stage = { steps: first, whole, leadingStatistics, halo: 0 };
    stages.push(stage);
    return stage;
  };
  let current: Stage | undefined;
  for (const step of steps) {
    const tiling = tilingOf(step);
    if (tiling === 'whole' || (tiling === 'statistics' && current?.whole)) {
      // A whole stage sees every pixel, so a statistics step there needs no merged histogram.
      if (current?.whole) current.steps.push(step);
      else current = newStage([step], true);
    } else if (tiling === 'statistics') {
      const previous = current ?? newStage([], false);
      previous.histogramFor = step;
      current = newStage([step], false, true);
    } else {
      if (!current || current.whole) current = newStage([], false);
      current.steps.push(step);
      current.halo += haloOf(step.op.tiling, step.params);
    }
  }
  return stages;
}

/**
 * The plan for an image of this size: whole on one worker, or stages of tiles. Decided by the largest
 * image the pipeline makes (an upscale of a small upload is budgeted by its output), not by the upload.
 * Throws PipelineError when a step's image exceeds maxPixels, or a stage that must run whole would not fit
 * a worker's memory: such a job can never run, and the master refuses it with 422 at submission.
 */
export function planImage(
  info: { width: number; height: number; channels: number },
  steps: readonly Step[],
  options: PlanOptions = {},
): Plan {
  const shapes = shapesThrough(steps, { ...info, channels: info.channels as Channels });
  const memory = (options.workerMemoryBytes ?? DEFAULT_WORKER_MEMORY_BYTES) * PIXEL_MEMORY_SHARE;
  const area = ({ width, height }: Size) => width * height;
  const largest = shapes.reduce((big, shape) => (area(shape) > area(big) ? shape : big));
  if (options.maxPixels !== undefined && area(largest) > options.maxPixels) {
    const index = shapes.indexOf(largest);
    throw new PipelineError(
      `pipeline step ${index} (${steps[index - 1].op.name}) makes a ${largest.width}x${largest.height} image, ` +
        `${area(largest)} pixels; at most ${options.maxPixels} are allowed`,
    );
  }
  const stages = planStages(steps);
  const staged = stageShapes(stages, shapes);
  checkWholeStagesFit(staged, memory);
  const channels = Math.max(...shapes.map((shape) => shape.channels));
  const bytesPerPixel = channels * WORKING_BYTES_PER_SAMPLE;
  // An empty pipeline (a plain conversion) has no stage at all.
  const first = stages[0];
  const decodesRowsInOrder = options.inputFormat !== undefined && !decodedWhole.has(options.inputFormat) && options.inputProgressive !== true && options.inputTurned !== true;
  const decoding = first !== undefined && !first.whole && first.steps.length > 0 && decodesRowsInOrder;
  const tiled = (tileSize: number, decodingTileSize = tileSize): Plan => {
    if (decoding && decodesInBands(first, shapes[0], decodingTileSize)) {
      first.decodes = true;
      if (decodingTileSize !== tileSize) first.tileSize = decodingTileSize;
    }
    const last = stages.at(-1)!;
    if (options.output && encodesByRestartIntervals(options.output)) {
      const restart = restartStrips(last, staged.at(-1)!.shapes, last.tileSize ?? tileSize, options.output.chromaSubsampling);
      if (restart) last.restart = restart;
    }
    return { mode: 'tiled', tileSize, stages, input: shapes[0] };
  };
  if (options.tileSize !== undefined) {
    const fits = shapes.every(({ width, height }) => width <= options.tileSize! && height <= options.tileSize!);
    return fits ? { mode: 'whole' } : tiled(options.tileSize);
  }
  const pixels = area(largest);
  // Whole stages were checked to fit one worker; tiling pays only if a stage that can tile handles an
  // image too large for one (a 100 MP photo resized to 2 MP, then sharpened, runs whole).
  const tiledPixels = Math.max(0, ...staged.flatMap(({ stage, shapes: own }) => (stage.whole ? [] : own.map(area))));
  if (tiledPixels <= Math.min(WHOLE_IMAGE_MAX_PIXELS, memory / bytesPerPixel)) return { mode: 'whole' };
  const halo = Math.max(0, ...stages.map((stage) => stage.halo));
  const memoryEdge = Math.sqrt(memory / TASKS_PER_WORKER / bytesPerPixel) - 2 * halo;
  const wantedEdge = 2 ** Math.floor(Math.log2(Math.sqrt(pixels / TARGET_TILES)));
  const tileSize = Math.max(MIN_TILE_EDGE, Math.min(MAX_TILE_EDGE, wantedEdge, Math.floor(memoryEdge)));
  if (!decoding) return tiled(tileSize);
  // A lone decoding stage of one fused step whose strips encode the JPEG holds each strip once.
  const own = staged[0].shapes;
  const general = DECODING_STRIP_BYTES_PER_SAMPLE + WORKING_BYTES_PER_SAMPLE * (first.steps.length - 1);
  const lean = options.inputPlain === true && stages.length === 1 && options.output !== undefined && encodesByRestartIntervals(options.output) && runsThroughFile(first.steps, shapes[0].channels);
  const leanEdge = lean ? decodingTileSize(own, memory, channels, DECODING_STRIP_THROUGH_FILE_BYTES_PER_SAMPLE) : undefined;
  const chroma = options.output?.chromaSubsampling;
  const edge = leanEdge && restartStrips(first, own, leanEdge, chroma) ? leanEdge : decodingTileSize(own, memory, channels, general);
  return tiled(tileSize, Math.max(tileSize, edge));
}

/**
 * Whether a decoding strip of these steps, on a plain upload, runs them in its decode call (fusionOf:
 * one sharp-native step, which keeps pixels in place), so that one encoding its band of the JPEG streams
 * them into a scratch file (tile-task.ts) and holds its pixels once (DECODING_STRIP_THROUGH_FILE_BYTES_PER_SAMPLE).
 */
function runsThroughFile(steps: readonly Step[], channels: Channels): boolean {
  return steps.length === 1 && fusable(steps[0], channels) && tilingOf(steps[0]) !== 'move';
}

/**
 * Whether the stage's tiles read bands of rows, so that decoding down to each one's last row costs
 * about (n + 1) / 2 decodes for n strips. After a quarter turn every strip maps to columns of all rows:
 * each would decode the whole upload, and one decode task costs less.
 */
function decodesInBands(stage: Stage, input: Size, tileSize: number): boolean {
  const reachingBottom = planStageTiles(stage, input, tileSize).filter(({ source }) => source.y + source.height === input.height);
  return reachingBottom.length <= 1;
}

/**
 * The tile edge of a decoding stage: the fewest strips (at least MIN_DECODING_STRIPS) whose tasks, at
 * `bytesPerSample` of output, fit a worker's share of memory. Fewer strips decode less (each decodes
 * from the top of the image down to its last row); the strips after the first still let the other
 * workers start at once, where a decode task had them wait for the whole image.
 */
function decodingTileSize(own: readonly ImageShape[], memory: number, channels: number, bytesPerSample: number): number {
  const pixels = Math.max(...own.map(({ width, height }) => width * height));
  const strips = Math.max(MIN_DECODING_STRIPS, Math.ceil((pixels * channels * bytesPerSample) / (memory / TASKS_PER_WORKER)));
  return Math.ceil(Math.sqrt(pixels / strips));
}

/**
 * Strips of the last stage that encode the JPEG by restart intervals, when it is tiled, writes pixels
 * and its strips are full-width bands at least an MCU tall: about as tall as the stage's own strips,
 * rounded to whole pieces (at least halo + 1 rows, as every strip). JPEG holds at most 65535 rows.
 */
function restartStrips(stage: Stage, own: readonly ImageShape[], tileSize: number, chromaSubsampling: EncodeOptions['chromaSubsampling']) {
  const output = own.at(-1)!;
  if (stage.whole || stage.steps.length === 0 || output.height > 0xffff) return undefined;
  const band = tileShape(output, tileSize, stage.halo);
  // JPEG has no alpha: the encoder flattens it, so the MCU is that of the colour (or grey) image.
  const pieceRows = band.width === output.width ? restartPieceRows(output.width, mcuSize(output.channels, chromaSubsampling), band.height) : undefined;
  if (!pieceRows) return undefined;
  const pieces = Math.max(Math.round(band.height / pieceRows), Math.ceil((stage.halo + 1) / pieceRows));
  return { pieceRows, stripRows: pieces * pieceRows };
}

/** A stage with the shapes of its input and of the output of each of its steps. */
interface StageShapes {
  stage: Stage;
  shapes: ImageShape[];
}

function stageShapes(stages: readonly Stage[], shapes: readonly ImageShape[]): StageShapes[] {
  let first = 0;
  return stages.map((stage) => {
    const own = shapes.slice(first, first + stage.steps.length + 1);
    first += stage.steps.length;
    return { stage, shapes: own };
  });
}

/** Bytes a whole stage needs at its largest step: the step's input held while its output is made. */
function wholeStageBytesOf(own: readonly ImageShape[]): number {
  const samples = own.map((shape) => shape.width * shape.height * shape.channels);
  return Math.max(0, ...samples.slice(1).map((out, i) => samples[i] + out * WHOLE_STAGE_BYTES_PER_OUTPUT_SAMPLE));
}

/** Refuses a plan whose whole stage (its input and output on one worker at once) exceeds `memory`. */
function checkWholeStagesFit(staged: readonly StageShapes[], memory: number): void {
  for (const { stage, shapes: own } of staged) {
    if (!stage.whole) continue;
    const bytes = wholeStageBytesOf(own);
    if (bytes > memory) {
      const names = stage.steps.map((step) => step.op.name).join(', ');
      throw new PipelineError(
        `the steps ${names} run on the whole image (they cannot be tiled), and for this image they need about ` +
          `${Math.ceil(bytes / 2 ** 20)} MiB, more than the ${Math.floor(memory / 2 ** 20)} MiB a worker has for one image (DIPS_WORKER_MEMORY_BYTES)`,
      );
    }
  }
}

/**
 * Memory the largest whole stage of these steps needs on this image, as checkWholeStagesFit counts it (0
 * when every stage tiles): what a worker holds of its pixel memory while it runs them
 * (services/worker/memory-gate.ts). Only whole stages need it: tiles are sized for TASKS_PER_WORKER at
 * once, and tileable steps run whole only on images the planner keeps small.
 */
export function wholeStageBytes(info: { width: number; height: number; channels: number }, steps: readonly Step[]): number {
  const shapes = shapesThrough(steps, { ...info, channels: info.channels as Channels });
  return Math.max(0, ...stageShapes(planStages(steps), shapes).map(({ stage, shapes: own }) => (stage.whole ? wholeStageBytesOf(own) : 0)));
}

/** One task of a stage: the input rectangle it reads and the output rectangle it produces. */
export interface StageTile {
  index: number;
  /** Rectangle of the stage's input the task receives: the core's preimage plus halos, clipped. */
  source: Rect;
  /** Rectangle of the stage's output the task returns; absent for a whole stage (all of it). */
  core?: Rect;
}

/** The stage's output size for this input size; undefined when only running it tells (whole stages). */
export function stageOutputSize(stage: Stage, input: Size): Size | undefined {
  if (stage.whole) return undefined;
  return stage.steps.reduce((size, step) => outputSizeOf(step, size), input);
}

const grow = ({ x, y, width, height }: Rect, by: number): Rect => ({
  x: x - by,
  y: y - by,
  width: width + 2 * by,
  height: height + 2 * by,
});

/**
 * Start and length of each piece when cutting `length` into pieces of `tileSize`. A last piece shorter
 * than half a piece, or than `least`, joins the one before: slivers would give filters less input than their window.
 */
function cuts(length: number, tileSize: number, least = 0): Array<[number, number]> {
  const pieces: Array<[number, number]> = [];
  for (let start = 0; start < length; start += tileSize) pieces.push([start, Math.min(tileSize, length - start)]);
  const last = pieces.at(-1)!;
  if (pieces.length > 1 && (last[1] < tileSize / 2 || last[1] < least)) {
    pieces.pop();
    pieces.at(-1)![1] += last[1];
  }
  return pieces;
}

/**
 * Tiles are full-width strips of the area of a `tileSize` square, so a tile's rows, and its core in the
 * next intermediate, are one contiguous byte range (a ranged read in, one positioned write or multipart
 * part out: docs/data-path.md). An image wider than that area is cut into single rows of that area,
 * contiguous too. A strip has at least `halo + 1` rows, so a strip at the image's top or bottom edge (its
 * halo clipped on one side) still gives every filter a window's worth of rows.
 */
export function tileShape(image: Size, tileSize: number, halo = 0): Size {
  const area = tileSize * tileSize;
  if (image.width > area) return { width: area, height: 1 };
  return { width: image.width, height: Math.max(1, halo + 1, Math.floor(area / image.width)) };
}

/** Cuts a stage's output into cores of `tileSize` and maps each back to the input it needs. */
export function planStageTiles(stage: Stage, input: Size, planTileSize: number): StageTile[] {
  const tileSize = stage.tileSize ?? planTileSize;
  const output = stageOutputSize(stage, input);
  if (!output) return [{ index: 0, source: { x: 0, y: 0, width: input.width, height: input.height } }];
  const sizes: Size[] = [input];
  for (const step of stage.steps) sizes.push(outputSizeOf(step, sizes.at(-1)!));
  const tiles: StageTile[] = [];
  const band = tileShape(output, tileSize, stage.halo);
  const { width: tileWidth, height: tileHeight } = stage.restart ? { width: output.width, height: stage.restart.stripRows } : band;
  for (const [y, height] of cuts(output.height, tileHeight, stage.halo + 1)) {
    for (const [x, width] of cuts(output.width, tileWidth)) {
      const core = { x, y, width, height };
      let rect: Rect = core;
      for (let i = stage.steps.length - 1; i >= 0; i--) {
        const step = stage.steps[i];
        const before = sizes[i];
        const move = stepMove(step);
        if (move) {
          rect = move.backward(rect, before);
        } else {
          rect = intersect(grow(rect, haloOf(step.op.tiling, step.params)), { x: 0, y: 0, ...before });
        }
      }
      tiles.push({ index: tiles.length, source: rect, core });
    }
  }
  return tiles;
}
