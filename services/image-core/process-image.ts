import type { Sharp } from 'sharp';
import { openInput, inputErrorFrom, type DecodeOptions, type OpenedInput } from './decode.js';
import { encodeImage, outputFormatFor, withEncoding, type EncodeOptions } from './encode.js';
import { type OutputFormat, type OutputOptions } from '../protocol/output.js';
import type { Annotations } from './operation.js';
import { runSteps, type Step } from './pipeline.js';
import { shapesThrough } from './planner.js';
import type { Channels } from './raw-image.js';
import { fusable, rawPipeline, rawResult, toRawImage } from './sharp-raw.js';

export interface ProcessedImage {
  /** The encoded result. */
  data: Buffer;
  width: number;
  height: number;
  format: OutputFormat;
  annotations: Annotations;
}

/**
 * Which steps run inside the decode and the encode call. A sharp pipeline applies its operations in
 * sharp's own fixed order, whatever order they are added in, so each call takes at most one step: the
 * first (with decode, when the file is `plain`: see OpenedInput) and the last (with encode). The steps
 * between run on raw pixels. Everything else gives the same pixels as running every step on raw pixels.
 */
export function fusionOf(steps: readonly Step[], input: OpenedInput): { withDecode: number; withEncode: number } {
  const shapes = shapesThrough(steps, input);
  const withDecode = input.plain && fusable(steps[0], input.channels) ? 1 : 0;
  const last = steps.length - 1;
  const withEncode = last >= withDecode && fusable(steps[last], shapes[last].channels) ? 1 : 0;
  return { withDecode, withEncode };
}

/**
 * The whole-image path: decode, run every step in order (cancellation checked between steps),
 * encode; sharp-native steps at either end run inside the decode or encode call (fusionOf), so a
 * one-step pipeline such as a blur or a resize (with JPEG shrink-on-load) is one libvips pipeline.
 * Used by `dips process` and by workers for images that are not tiled. `opened` is openInput's answer
 * for `input` when the caller has it (its pipeline is then used up).
 */
export async function processImage(
  input: Buffer | string,
  steps: readonly Step[],
  output: { format?: OutputFormat; quality?: number } & Partial<OutputOptions>,
  options: DecodeOptions & { signal?: AbortSignal; opened?: OpenedInput },
): Promise<ProcessedImage> {
  const { signal, name } = options;
  signal?.throwIfAborted();
  // The caller may have read the header already (a worker checks the plan first): read it once.
  const opened = options.opened ?? (await openInput(input, options));
  const format = output.format ?? outputFormatFor(opened.format);
  const encoding = { ...output, format, source: input };
  const { withDecode, withEncode } = fusionOf(steps, opened);
  const channelsOut = shapesThrough(steps, opened).at(-1)!.channels;
  const decodeFailure = (error: unknown) => {
    throw inputErrorFrom(error, name, opened.format);
  };

  if (opened.plain && withDecode === steps.length) {
    // Nothing left for raw pixels: one sharp call from the file to the encoded output.
    const pipeline = withDecode ? steps[0].op.sharp!.build(opened.pipeline, steps[0].params, opened) : opened.pipeline;
    const { data, width, height } = await encodeWithSize(pipeline, channelsOut, encoding).catch(decodeFailure);
    return { data, width, height, format, annotations: {} };
  }
  const decoded = withDecode
    ? await rawResult(steps[0].op.sharp!.build(opened.pipeline, steps[0].params, opened), opened.channels).catch(decodeFailure)
    : await toRawImage(opened.pipeline).catch(decodeFailure);
  const middle = steps.slice(withDecode, steps.length - withEncode);
  const { image, annotations } = await runSteps(decoded, middle, { signal, source: input });
  signal?.throwIfAborted();
  if (!withEncode) {
    const data = await encodeImage(image, encoding);
    return { data, width: image.width, height: image.height, format, annotations };
  }
  const last = steps.at(-1)!;
  const { data, width, height } = await encodeWithSize(last.op.sharp!.build(rawPipeline(image), last.params, image), channelsOut, encoding);
  return { data, width, height, format, annotations };
}

/** Encodes a pipeline whose last step may change the size: the encoder's own report gives the output's size. */
async function encodeWithSize(pipeline: Sharp, channels: Channels, encoding: EncodeOptions): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await (await withEncoding(pipeline, { channels }, encoding)).toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}
