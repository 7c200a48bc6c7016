import type { Sharp } from 'sharp';
import { openInput, inputErrorFrom, type DecodeOptions, type OpenedInput } from './decode.js';
import { OutputError } from './errors.js';
import { intoMemory, outputFormatFor, withEncoding, type Encoded, type Sink } from './encode.js';
import { type OutputFormat, type OutputOptions } from '../protocol/output.js';
import type { Annotations } from './operation.js';
import { runSteps, type Step } from './pipeline.js';
import { shapesThrough } from './planner.js';
import type { Channels } from './raw-image.js';
import { fusable, rawPipeline, rawResult, toRawImage } from './sharp-raw.js';

/** What an image became: its encoded result (Encoded: its bytes, or the file its sink wrote), format and annotations. */
export interface ProcessedImage extends Encoded {
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
 * encode into `sink`; sharp-native steps at either end run inside the decode or encode call (fusionOf),
 * so a one-step pipeline such as a blur or a resize (with JPEG shrink-on-load) is one libvips pipeline.
 * Used by `dips process` and by workers for images that are not tiled. `opened` is openInput's answer
 * for `input` when the caller has it (its pipeline is then used up).
 */
export async function processImageInto<E extends Encoded>(
  input: Buffer | string,
  steps: readonly Step[],
  output: { format?: OutputFormat; quality?: number } & Partial<OutputOptions>,
  options: DecodeOptions & { signal?: AbortSignal; opened?: OpenedInput },
  sink: Sink<E>,
): Promise<E & ProcessedImage> {
  const { signal, name } = options;
  signal?.throwIfAborted();
  // The caller may have read the header already (a worker checks the plan first): read it once.
  const opened = options.opened ?? (await openInput(input, options));
  const format = output.format ?? outputFormatFor(opened.format);
  const encoding = { ...output, format, source: input };
  const { withDecode, withEncode } = fusionOf(steps, opened);
  const channelsOut = shapesThrough(steps, opened).at(-1)!.channels;
  const encode = async (pipeline: Sharp, channels: Channels) => sink(await withEncoding(pipeline, { channels }, encoding));
  const decodeFailure = (error: unknown) => {
    throw error instanceof OutputError ? error : inputErrorFrom(error, name, opened.format);
  };

  if (opened.plain && withDecode === steps.length) {
    // Nothing left for raw pixels: one sharp call from the file to the encoded output.
    const pipeline = withDecode ? steps[0].op.sharp!.build(opened.pipeline, steps[0].params, opened) : opened.pipeline;
    return { ...(await encode(pipeline, channelsOut).catch(decodeFailure)), format, annotations: {} };
  }
  const decoded = withDecode
    ? await rawResult(steps[0].op.sharp!.build(opened.pipeline, steps[0].params, opened), opened.channels).catch(decodeFailure)
    : await toRawImage(opened.pipeline).catch(decodeFailure);
  const middle = steps.slice(withDecode, steps.length - withEncode);
  const { image, annotations } = await runSteps(decoded, middle, { signal, source: input });
  signal?.throwIfAborted();
  const last = steps.at(-1)!;
  // The encoder reports the output's size, which a fused last step may change.
  const encoded = withEncode ? await encode(last.op.sharp!.build(rawPipeline(image), last.params, image), channelsOut) : await encode(rawPipeline(image), image.channels);
  return { ...encoded, format, annotations };
}

/** processImageInto memory: the encoded bytes in `data`. */
export function processImage(
  input: Buffer | string,
  steps: readonly Step[],
  output: { format?: OutputFormat; quality?: number } & Partial<OutputOptions>,
  options: DecodeOptions & { signal?: AbortSignal; opened?: OpenedInput },
): Promise<ProcessedImage & { data: Buffer }> {
  return processImageInto(input, steps, output, options, intoMemory);
}
