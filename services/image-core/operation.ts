import type { Sharp } from 'sharp';
import type { z } from 'zod';
import type { PixelMove, Size } from './pixel-move.js';
import type { Channels, RawImage, Rect } from './raw-image.js';

/**
 * How a step behaves when the image is cut into tiles; the planner reads nothing else. One union, so
 * a declaration cannot say two contradicting things.
 * - pointwise: an output pixel depends on the input pixel at the same place (and on `StepContext`).
 * - neighbourhood: an output pixel depends on the input within `halo(params)` pixels of it.
 * - statistics: pointwise given a whole-image histogram: tiles report the histogram of their core,
 *   the master adds them up, every tile then applies the same mapping. Exact, no halo.
 * - move: pixels only travel (crop, flip, quarter turns); `pixelMove(params)` maps rectangles, or is
 *   undefined for parameters that resample (rotate by 33°): then the step runs whole, for `otherwise`.
 * - whole: needs every pixel at once (Canny hysteresis, QR decoding, resampling); `reason` says why.
 */
export type Tiling<Params> =
  | { readonly kind: 'pointwise' }
  | { readonly kind: 'neighbourhood'; halo(params: Params): number }
  | ({ readonly kind: 'statistics' } & StatisticsDeclaration<Params>)
  | { readonly kind: 'move'; pixelMove(params: Params): PixelMove | undefined; readonly otherwise: string }
  | { readonly kind: 'whole'; readonly reason: string };

export type TilingKind = Tiling<unknown>['kind'];

export interface StatisticsDeclaration<Params> {
  /** Histogram (any fixed length, summed element-wise across tiles) of the op's input pixels. */
  histogram(image: RawImage, params: Params): Uint32Array;
  /** Pointwise transform given the whole image's histogram. */
  applyWithHistogram(image: RawImage, params: Params, histogram: Uint32Array): RawImage;
}

/**
 * What the step loop tells a step besides its pixels. Every field is optional, so an operation can be
 * called on its own with `{}` (tests do): then the image is a whole image and annotations go nowhere.
 */
export interface StepContext {
  /**
   * For a tile: its rectangle (halo included) in the image as it is at this step, so position-dependent
   * pointwise ops (an overlay at a gravity) tile exactly. Absent: the image is the whole image.
   */
  region?: Rect;
  /** Size of the whole image at this step (absent: the image's own size). */
  imageSize?: Size;
  signal?: AbortSignal;
  /** The encoded input file (path or bytes) on the whole-image path; absent on tiles (the metadata op reads it). */
  source?: Buffer | string;
  /** Reports this step's annotation (annotations.<op name>); analysis ops call it once. */
  annotate?(value: unknown): void;
}

/** Where the pixels given to a step lie, filling in the whole-image defaults of StepContext. */
export function placeOf(image: RawImage, context: StepContext): { region: Rect; imageSize: Size } {
  return {
    region: context.region ?? { x: 0, y: 0, width: image.width, height: image.height },
    imageSize: context.imageSize ?? { width: image.width, height: image.height },
  };
}

/**
 * What analysis steps report besides pixels, one entry per operation name: the API serves it as
 * images[].annotations.<op>. Values are JSON. When an op runs more than once (or on several tiles),
 * arrays are concatenated and other values replaced (see mergeAnnotation).
 */
export interface Annotations {
  qr?: string[];
  phash?: string;
  thumbhash?: string;
  metadata?: unknown;
  [op: string]: unknown;
}

export interface OperationDeclaration<Schema extends z.ZodObject = z.ZodObject> {
  /** The name used in pipelines: {"op": name, ...params}. Also the key of its annotation. */
  readonly name: string;
  /** One sentence for the catalogue, CLI, console and README; says when channels or alpha change. */
  readonly description: string;
  /** Parameters with types, ranges and defaults; the single source of validation. */
  readonly params: Schema;
  readonly tiling: Tiling<z.output<Schema>>;
  /**
   * The output size for an input of `input` size (absent: unchanged). Throws PipelineError when the
   * parameters do not fit the image (a crop outside it), which the master reports at submission.
   * Exact for every op that tiles; for whole ops it may be an upper bound (a trim depends on the
   * content), which is what the planner budgets memory by.
   */
  outputSize?(input: Size, params: z.output<Schema>): Size;
  /** The output's channel count for an input with `input` channels (absent: unchanged). */
  outputChannels?(input: Channels, params: z.output<Schema>): Channels;
  /**
   * Present when the op is one sharp call (declare it with defineSharpOperation, which derives apply):
   * the executor may then run it inside the decode or encode call instead of on raw pixels.
   */
  readonly sharp?: SharpNative<z.output<Schema>>;
  /** The implementation, on a whole image or on a tile (see StepContext). */
  apply(image: RawImage, params: z.output<Schema>, context: StepContext): Promise<RawImage>;
}

/** An operation libvips does in one sharp call on 8-bit pixels. */
export interface SharpNative<Params> {
  /** Adds the operation to a sharp pipeline whose image has size `input`. */
  build(pipeline: Sharp, params: Params, input: Size): Sharp;
  /** 'process': sharp treats alpha as it does; 'keep': the op sees the colour only, alpha is put back. */
  alpha: 'process' | 'keep';
}

/** Identity helper that keeps the parameter type of each declaration precise. */
export function defineOperation<Schema extends z.ZodObject>(
  declaration: OperationDeclaration<Schema>,
): OperationDeclaration<Schema> {
  return declaration;
}

type Basics<Schema extends z.ZodObject> = Pick<
  OperationDeclaration<Schema>,
  'name' | 'description' | 'params' | 'outputChannels'
>;

/**
 * A statistics operation: its whole-image apply is derived (histogram of the image, then the mapping),
 * the same two functions the tiled path runs, so both paths agree by construction.
 */
export function defineStatisticsOperation<Schema extends z.ZodObject>(
  declaration: Basics<Schema> & { statistics: StatisticsDeclaration<z.output<Schema>> },
): OperationDeclaration<Schema> {
  const { statistics, ...rest } = declaration;
  return {
    ...rest,
    tiling: { kind: 'statistics', ...statistics },
    apply: async (image, params) => statistics.applyWithHistogram(image, params, statistics.histogram(image, params)),
  };
}

/**
 * An analysis operation: leaves the pixels alone and reports `analyse(...)` as annotations.<name>.
 * It runs on the whole image unless it declares another tiling (and then its annotations are merged
 * across tiles by mergeAnnotation).
 */
export function defineAnalysisOperation<Schema extends z.ZodObject>(
  declaration: Omit<Basics<Schema>, 'outputChannels'> & {
    tiling?: Tiling<z.output<Schema>>;
    analyse(image: RawImage, params: z.output<Schema>, context: StepContext): Promise<unknown>;
  },
): OperationDeclaration<Schema> {
  const { analyse, tiling, ...rest } = declaration;
  return {
    ...rest,
    tiling: tiling ?? { kind: 'whole', reason: 'its result describes the whole image' },
    apply: async (image, params, context) => {
      context.annotate?.(await analyse(image, params, context));
      return image;
    },
  };
}

/** Adds one operation's annotation: arrays are concatenated, anything else replaces what was there. */
export function mergeAnnotation(into: Annotations, op: string, value: unknown): void {
  const previous = into[op];
  into[op] = Array.isArray(previous) && Array.isArray(value) ? [...previous, ...value] : value;
}

/** Adds every annotation of `from` (e.g. a tile's) to `into`. */
export function mergeAnnotations(into: Annotations, from: Annotations): void {
  for (const [op, value] of Object.entries(from)) mergeAnnotation(into, op, value);
}

/** The halo a step's tiles need on every side (0 unless it is a neighbourhood op). */
export function haloOf<P>(tiling: Tiling<P>, params: P): number {
  return tiling.kind === 'neighbourhood' ? tiling.halo(params) : 0;
}

/** The pixel move of a step that tiles as a move with these parameters, else undefined. */
export function pixelMoveOf<P>(tiling: Tiling<P>, params: P): PixelMove | undefined {
  return tiling.kind === 'move' ? tiling.pixelMove(params) : undefined;
}
