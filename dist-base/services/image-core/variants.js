import sharp from 'sharp';
import { decodeImage } from './decode.js';
import { encodePipeline, outputFormatFor } from './encode.js';
import { runSteps } from './pipeline.js';
import { processImage } from './process-image.js';
import { rawDescriptor } from './raw-image.js';
/**
 * Several results from one decode (responsive images): the image is decoded and the pipeline run
 * once, then each variant is resized (Lanczos 3, aspect kept, never enlarged) and encoded with the
 * same output options (`output`; the input's metadata kept as they say). A single variant at full
 * size is the whole-image path itself (processImage), so its sharp-native steps fuse with the decode
 * and encode as they do for `dips process`. `opened` is openInput's answer for `input` when the caller
 * has read the header already.
 */
export async function processVariants(input, steps, variants, options) {
    const [only] = variants;
    if (variants.length === 1 && only.width === undefined) {
        const { output, ...decoding } = options;
        const result = await processImage(input, steps, { ...output, ...(only.format ? { format: only.format } : {}), ...(only.quality ? { quality: only.quality } : {}) }, decoding);
        return { width: result.width, height: result.height, annotations: result.annotations, variants: [{ data: result.data, format: result.format, width: result.width, height: result.height }] };
    }
    const decoded = await decodeImage(input, options);
    const { image, annotations } = await runSteps(decoded, steps, { signal: options.signal, source: input });
    const results = [];
    for (const variant of variants) {
        options.signal?.throwIfAborted();
        const format = variant.format ?? outputFormatFor(decoded.format);
        const width = variant.width === undefined ? image.width : Math.min(variant.width, image.width);
        const height = width === image.width ? image.height : Math.max(1, Math.round((image.height * width) / image.width));
        let pipeline = sharp(image.data, rawDescriptor(image));
        if (width !== image.width)
            pipeline = pipeline.resize({ width, height, fit: 'fill', kernel: 'lanczos3' });
        const data = await encodePipeline(pipeline, image, { ...options.output, format, ...(variant.quality ? { quality: variant.quality } : {}), source: input });
        results.push({ data, format, width, height });
    }
    return { width: image.width, height: image.height, annotations, variants: results };
}
//# sourceMappingURL=variants.js.map