import { decodeImage, type DecodeOptions } from './decode.js';
import { encodeImage, outputFormatFor, type OutputFormat, type OutputOptions } from './encode.js';
import type { Annotations } from './operation.js';
import { runSteps, type Step } from './pipeline.js';

export interface ProcessedImage {
  /** The encoded result. */
  data: Buffer;
  width: number;
  height: number;
  format: OutputFormat;
  annotations: Annotations;
}

/**
 * The whole-image path: decode, run every step in order (cancellation checked between steps),
 * encode. Used by `dips process` and by workers for images that are not tiled.
 */
export async function processImage(
  input: Buffer | string,
  steps: readonly Step[],
  output: { format?: OutputFormat; quality?: number } & Partial<OutputOptions>,
  options: DecodeOptions & { signal?: AbortSignal },
): Promise<ProcessedImage> {
  options.signal?.throwIfAborted();
  const decoded = await decodeImage(input, options);
  const { image, annotations } = await runSteps(decoded, steps, { signal: options.signal, source: input });
  options.signal?.throwIfAborted();
  const format = output.format ?? outputFormatFor(decoded.format);
  const data = await encodeImage(image, { ...output, format, source: input });
  return { data, width: image.width, height: image.height, format, annotations };
}
