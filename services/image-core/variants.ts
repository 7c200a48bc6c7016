import sharp from 'sharp';
import { decodeImage, type DecodeOptions, type OpenedInput } from './decode.js';
import { intoMemory, outputFormatFor, withEncoding, type Encoded, type Sink } from './encode.js';
import { type OutputFormat, type OutputOptions } from '../protocol/output.js';
import type { Annotations } from './operation.js';
import { runSteps, type Step } from './pipeline.js';
import { processImageInto } from './process-image.js';
import { rawDescriptor } from './raw-image.js';

export interface VariantSpec {
  format?: OutputFormat;
  quality?: number;
  /** Largest width in pixels; a narrower image is not enlarged. */
  width?: number;
  /** Where its encoded bytes go: memory unless given (e.g. a file, intoFile). */
  sink?: Sink;
}

/** One variant's result: Encoded (its bytes, or the file its sink wrote) and its format. */
export interface Variant extends Encoded {
  format: OutputFormat;
}

/**
 * Several results from one decode (responsive images): the image is decoded and the pipeline run
 * once, then each variant is resized (Lanczos 3, aspect kept, never enlarged) and encoded with the
 * same output options (`output`; the input's metadata kept as they say), into its sink (memory unless
 * it names one). A single variant at full size is the whole-image path itself (processImageInto), so its
 * sharp-native steps fuse with the decode and encode as they do for `dips process`. `opened` is openInput's answer for `input` when the caller
 * has read the header already.
 */
export async function processVariants(
  input: Buffer | string,
  steps: readonly Step[],
  variants: readonly VariantSpec[],
  options: DecodeOptions & { signal?: AbortSignal; output?: OutputOptions; opened?: OpenedInput },
): Promise<{ width: number; height: number; annotations: Annotations; variants: Variant[] }> {
  const [only] = variants;
  if (variants.length === 1 && only!.width === undefined) {
    const { output, ...decoding } = options;
    const { annotations, ...result } = await processImageInto(input, steps, { ...output, ...(only!.format ? { format: only!.format } : {}), ...(only!.quality ? { quality: only!.quality } : {}) }, decoding, only!.sink ?? intoMemory);
    return { width: result.width, height: result.height, annotations, variants: [result] };
  }
  const decoded = await decodeImage(input, options);
  const { image, annotations } = await runSteps(decoded, steps, { signal: options.signal, source: input });
  const results: Variant[] = [];
  for (const variant of variants) {
    options.signal?.throwIfAborted();
    const format = variant.format ?? outputFormatFor(decoded.format);
    const width = variant.width === undefined ? image.width : Math.min(variant.width, image.width);
    const height = width === image.width ? image.height : Math.max(1, Math.round((image.height * width) / image.width));
    let pipeline = sharp(image.data, rawDescriptor(image));
    if (width !== image.width) pipeline = pipeline.resize({ width, height, fit: 'fill', kernel: 'lanczos3' });
    const encoding = { ...options.output, format, ...(variant.quality ? { quality: variant.quality } : {}), source: input };
    const encoded = await (variant.sink ?? intoMemory)(await withEncoding(pipeline, image, encoding));
    results.push({ ...encoded, format });
  }
  return { width: image.width, height: image.height, annotations, variants: results };
}
