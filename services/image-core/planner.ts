import { haloOf, pixelMoveOf, type TilingKind } from './operation.js';
import { intersect, type PixelMove, type Size } from './pixel-move.js';
import { outputSizeOf, type Step } from './pipeline.js';
import type { Rect } from './raw-image.js';

/** Memory of the smallest worker we plan for (an AWS micro instance). */
const DEFAULT_WORKER_MEMORY_BYTES = 1024 ** 3;
/** Share of a worker's memory one image's pixels may use; the rest is Node, sharp and a second task. */
const PIXEL_MEMORY_SHARE = 0.75;
/** Bytes per sample a step needs while it runs: its input, its output and sharp's working copies. */
const WORKING_BYTES_PER_SAMPLE = 8;
/** Tasks a worker runs at once (sharp's throughput comes from images in flight; see sharp-facts.md). */
const TASKS_PER_WORKER = 2;
/** Images up to this size go whole to one worker: tiling pays off only when several workers share one image. */
const WHOLE_IMAGE_MAX_PIXELS = 4096 * 4096;
/** Aim for about this many tiles per image, within the edge bounds below. */
const TARGET_TILES = 16;
const MIN_TILE_EDGE = 512;
const MAX_TILE_EDGE = 2048;

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
}

export type Plan =
  /** Encoded in, encoded out, on one worker; the master does no pixel work. */
  | { mode: 'whole' }
  | { mode: 'tiled'; tileSize: number; stages: Stage[] };

export type TiledPlan = Extract<Plan, { mode: 'tiled' }>;

export interface PlanOptions {
  /** Tile edge in pixels (DIPS_TILE_SIZE): tiles any image larger than one tile. */
  tileSize?: number;
  workerMemoryBytes?: number;
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

/** The plan for an image of this size: whole on one worker, or stages of tiles. */
export function planImage(
  info: { width: number; height: number; channels: number },
  steps: readonly Step[],
  options: PlanOptions = {},
): Plan {
  const pixels = info.width * info.height;
  const memory = (options.workerMemoryBytes ?? DEFAULT_WORKER_MEMORY_BYTES) * PIXEL_MEMORY_SHARE;
  // Steps may add channels (grey to RGB, alpha), so budget for four.
  const bytesPerPixel = 4 * WORKING_BYTES_PER_SAMPLE;
  const stages = planStages(steps);
  if (options.tileSize !== undefined) {
    const fits = info.width <= options.tileSize && info.height <= options.tileSize;
    return fits ? { mode: 'whole' } : { mode: 'tiled', tileSize: options.tileSize, stages };
  }
  if (pixels <= Math.min(WHOLE_IMAGE_MAX_PIXELS, memory / bytesPerPixel)) return { mode: 'whole' };
  const halo = Math.max(0, ...stages.map((stage) => stage.halo));
  const memoryEdge = Math.sqrt(memory / TASKS_PER_WORKER / bytesPerPixel) - 2 * halo;
  const wantedEdge = 2 ** Math.floor(Math.log2(Math.sqrt(pixels / TARGET_TILES)));
  const tileSize = Math.max(MIN_TILE_EDGE, Math.min(MAX_TILE_EDGE, wantedEdge, Math.floor(memoryEdge)));
  return { mode: 'tiled', tileSize, stages };
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
 * than half a tile joins the one before: slivers would give filters less input than their window.
 */
function cuts(length: number, tileSize: number): Array<[number, number]> {
  const pieces: Array<[number, number]> = [];
  for (let start = 0; start < length; start += tileSize) pieces.push([start, Math.min(tileSize, length - start)]);
  const last = pieces.at(-1)!;
  if (pieces.length > 1 && last[1] < tileSize / 2) {
    pieces.pop();
    pieces.at(-1)![1] += last[1];
  }
  return pieces;
}

/** Cuts a stage's output into cores of `tileSize` and maps each back to the input it needs. */
export function planStageTiles(stage: Stage, input: Size, tileSize: number): StageTile[] {
  const output = stageOutputSize(stage, input);
  if (!output) return [{ index: 0, source: { x: 0, y: 0, width: input.width, height: input.height } }];
  const sizes: Size[] = [input];
  for (const step of stage.steps) sizes.push(outputSizeOf(step, sizes.at(-1)!));
  const tiles: StageTile[] = [];
  for (const [y, height] of cuts(output.height, tileSize)) {
    for (const [x, width] of cuts(output.width, tileSize)) {
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
