import type { z } from 'zod';
import type { PixelMove } from './pixel-move.js';
import type { RawImage } from './raw-image.js';

/**
 * How an operation behaves under tiling; the planner reads this.
 * - local: an output pixel depends on a bounded neighbourhood (halo) of the input.
 * - statistics: pointwise, but driven by a whole-image reduction (a histogram) computed first.
 * - geometric: moves pixels (resize, rotate, crop, flip); the output size differs or pixels travel.
 * - whole-image: needs all pixels at once (QR decoding, contours); never tiled.
 */
export type OperationKind = 'local' | 'statistics' | 'geometric' | 'whole-image';

/** Data an operation yields besides pixels; reported per image by the API. */
export interface Annotations {
  qr?: string[];
}

/**
 * Statistics operations are split so tiles can run them: each tile reports the histogram of its core,
 * the master adds them up, and every tile then applies the same pointwise mapping. Declare them with
 * defineStatisticsOperation, which derives the whole-image apply from these two, so both paths agree.
 */
export interface StatisticsDeclaration<Params> {
  /** Histogram (any fixed length, summed element-wise across tiles) of the op's input pixels. */
  histogram(image: RawImage, params: Params): Uint32Array;
  /** Pointwise transform given the whole image's histogram. */
  applyWithHistogram(image: RawImage, params: Params, histogram: Uint32Array): RawImage;
}

export interface OperationDeclaration<Schema extends z.ZodObject = z.ZodObject> {
  /** The name used in pipelines: {"op": name, ...params}. */
  readonly name: string;
  /** One sentence for the catalogue, CLI, console and README. */
  readonly description: string;
  /** Parameters with types, ranges and defaults; the single source of validation. */
  readonly params: Schema;
  readonly kind: OperationKind;
  /**
   * Whether a tiled run reproduces the whole-image result pixel for pixel. When false the planner
   * runs this step's stage on the whole image, and the catalogue says so.
   */
  readonly tileable: boolean;
  /** Pixels of input context needed on every side of a tile (local ops; 0 for pointwise ones). */
  halo(params: z.output<Schema>): number;
  /** The whole-image (or tile) implementation. May add annotations (e.g. decoded QR texts). */
  apply(image: RawImage, params: z.output<Schema>, annotations: Annotations): Promise<RawImage>;
  /** Present exactly for kind 'statistics'. */
  readonly statistics?: StatisticsDeclaration<z.output<Schema>>;
  /**
   * Geometric ops: how these parameters move pixels, when they only move them (then tiles run the step
   * exactly); undefined when the step resamples, and its stage runs on the whole image.
   */
  pixelMove?(params: z.output<Schema>): PixelMove | undefined;
}

/** Identity helper that keeps the parameter type of each declaration precise. */
export function defineOperation<Schema extends z.ZodObject>(
  declaration: OperationDeclaration<Schema>,
): OperationDeclaration<Schema> {
  return declaration;
}

/**
 * A statistics operation: pointwise given a whole-image histogram, so it tiles exactly with no halo. Its
 * whole-image apply is derived (histogram of the image, then the mapping), the same two functions the
 * tiled path runs.
 */
export function defineStatisticsOperation<Schema extends z.ZodObject>(
  declaration: Pick<OperationDeclaration<Schema>, 'name' | 'description' | 'params'> & {
    statistics: StatisticsDeclaration<z.output<Schema>>;
  },
): OperationDeclaration<Schema> {
  const { statistics } = declaration;
  return {
    ...declaration,
    kind: 'statistics',
    tileable: true,
    halo: () => 0,
    apply: async (image, params) => statistics.applyWithHistogram(image, params, statistics.histogram(image, params)),
  };
}
