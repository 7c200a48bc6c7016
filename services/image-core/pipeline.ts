import { MAX_NAME_CHARS, unrecognizedKeys } from '../protocol/strict-body.js';
import { didYouMean } from '../shared/suggest.js';
import { findOperation, operations } from './catalogue.js';
import { PipelineError } from './errors.js';
import { mergeAnnotation, pixelMoveOf, type Annotations, type OperationDeclaration } from './operation.js';
import type { Size } from './pixel-move.js';
import type { RawImage, Rect } from './raw-image.js';

export { PipelineError };

/** One validated step: the declaration and its parameters with defaults filled in. */
export interface Step {
  op: OperationDeclaration;
  params: Record<string, unknown>;
}

const MAX_PIPELINE_STEPS = 32;

/** Parses a pipeline given as JSON text or as already-parsed JSON. */
export function parsePipeline(input: unknown, maxSteps = MAX_PIPELINE_STEPS): Step[] {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (error) {
      throw new PipelineError(`pipeline is not valid JSON: ${(error as Error).message}`);
    }
  }
  if (!Array.isArray(value)) throw new PipelineError('pipeline must be a JSON array of steps such as [{"op":"blur","sigma":2}]');
  if (value.length > maxSteps) throw new PipelineError(`pipeline has ${value.length} steps; at most ${maxSteps} are allowed`);
  return value.map((raw, index) => parseStep(raw, index));
}

function parseStep(raw: unknown, index: number): Step {
  const where = `pipeline step ${index + 1}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new PipelineError(`${where} must be an object such as {"op":"blur","sigma":2}`);
  }
  const { op: name, ...rest } = raw as Record<string, unknown>;
  if (typeof name !== 'string') throw new PipelineError(`${where} has no "op" name`);
  const op = findOperation(name);
  if (!op) {
    const names = operations.map((o) => o.name);
    throw new PipelineError(`${where}: unknown operation "${name.slice(0, MAX_NAME_CHARS)}"${didYouMean(name, names)}; known: ${names.join(', ')}`);
  }
  const parsed = op.params.safeParse(rest);
  if (!parsed.success) {
    const known = Object.keys(op.params.shape);
    const issues = parsed.error.issues
      .map((issue) => `${issue.path.length ? issue.path.join('.') : 'parameters'}: ${issue.code === 'unrecognized_keys' ? unknownParameters(issue.keys, known) : issue.message}`)
      .join('; ');
    throw new PipelineError(`${where} (${name}): ${issues}`);
  }
  return { op, params: parsed.data as Record<string, unknown> };
}

/** Parameters the operation does not have: the ones likely meant, and what it has. */
function unknownParameters(keys: readonly string[], known: readonly string[]): string {
  return `${unrecognizedKeys(keys, known)}; ${known.length > 0 ? `its parameters: ${known.join(', ')}` : 'it takes no parameters'}`;
}

/** The canonical JSON form of validated steps (defaults filled in), for storage and for workers. */
export function serializePipeline(steps: readonly Step[]): Array<Record<string, unknown>> {
  return steps.map((step) => ({ op: step.op.name, ...step.params }));
}

/** Where a tile lies: its rectangle (halo included) in an image of `imageSize`. */
export interface TilePlace {
  region: Rect;
  imageSize: Size;
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Set when `image` is a tile: pixel moves then move it and track where it lies. */
  tile?: TilePlace;
  /** The histogram merged over all tiles, for the first step (a statistics step on a tile). */
  histogram?: Uint32Array;
  /** The encoded input file, for steps that read it (see StepContext.source). */
  source?: Buffer | string;
}

/**
 * The one step loop, for whole images and for tiles alike: applies the steps in order, checking
 * cancellation before each, and collects the annotations of analysis steps under their op's name.
 */
export async function runSteps(
  image: RawImage,
  steps: readonly Step[],
  options: RunOptions = {},
): Promise<{ image: RawImage; annotations: Annotations; place: TilePlace }> {
  const annotations: Annotations = {};
  let current = image;
  let place = options.tile ?? wholePlace(image);
  for (const [index, { op, params }] of steps.entries()) {
    options.signal?.throwIfAborted();
    const move = options.tile && pixelMoveOf(op.tiling, params);
    if (index === 0 && options.histogram) {
      if (op.tiling.kind !== 'statistics') throw new PipelineError(`${op.name} is not a statistics operation`);
      current = op.tiling.applyWithHistogram(current, params, options.histogram);
    } else if (move) {
      current = await move.applyToTile(current, place.region, place.imageSize);
      place = { region: move.forward(place.region, place.imageSize), imageSize: outputSizeOf({ op, params }, place.imageSize) };
    } else {
      const annotate = (value: unknown) => mergeAnnotation(annotations, op.name, value);
      current = await op.apply(current, params, { ...place, signal: options.signal, source: options.source, annotate });
      if (!options.tile) place = wholePlace(current);
    }
  }
  return { image: current, annotations, place };
}

const wholePlace = ({ width, height }: Size): TilePlace => ({ region: { x: 0, y: 0, width, height }, imageSize: { width, height } });

/** A step's output size for an input of `input` size (see OperationDeclaration.outputSize). */
export function outputSizeOf({ op, params }: Step, input: Size): Size {
  return op.outputSize?.(input, params) ?? { width: input.width, height: input.height };
}
