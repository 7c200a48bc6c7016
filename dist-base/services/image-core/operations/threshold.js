import { z } from 'zod';
import { defineStatisticsOperation } from '../operation.js';
import { greyChannels, toGrey } from './grayscale.js';
/** Histogram of the grey samples (alpha ignored) of an image that is already grey. */
export function greyHistogram(grey) {
    const histogram = new Uint32Array(256);
    for (let i = 0; i < grey.data.length; i += grey.channels)
        histogram[grey.data[i]]++;
    return histogram;
}
/**
 * Otsu's threshold exactly as OpenCV computes it (getThreshVal_Otsu_8u): the level maximising the
 * between-class variance, in double precision and the same order of operations, including OpenCV's
 * skipping of levels where either class holds less than FLT_EPSILON of the pixels.
 */
export function otsuThreshold(histogram) {
    const FLT_EPSILON = 1.1920928955078125e-7;
    let total = 0;
    let mean = 0;
    for (let i = 0; i < histogram.length; i++) {
        total += histogram[i];
        mean += i * histogram[i];
    }
    const scale = 1 / total;
    mean *= scale;
    let q1 = 0;
    let mu1 = 0;
    let maxSigma = 0;
    let best = 0;
    for (let i = 0; i < histogram.length; i++) {
        const p = histogram[i] * scale;
        mu1 *= q1;
        q1 += p;
        const q2 = 1 - q1;
        if (Math.min(q1, q2) < FLT_EPSILON || Math.max(q1, q2) > 1 - FLT_EPSILON)
            continue;
        mu1 = (mu1 + i * p) / q1;
        const mu2 = (mean - q1 * mu1) / q2;
        const sigma = q1 * q2 * (mu1 - mu2) * (mu1 - mu2);
        if (sigma > maxSigma) {
            maxSigma = sigma;
            best = i;
        }
    }
    return best;
}
export const threshold = defineStatisticsOperation({
    name: 'threshold',
    description: 'Binary threshold of the grey image as OpenCV THRESH_BINARY: grey > value becomes 255, else 0; ' +
        'value "otsu" picks the level by Otsu\'s method over the whole image. Output is grey; alpha is kept.',
    params: z
        .object({
        value: z
            .union([z.number().int().min(0).max(255), z.literal('otsu')])
            .default(128)
            .describe('grey level 0-255 (samples above it become white), or "otsu" to choose it from the histogram'),
    })
        .strict(),
    outputChannels: greyChannels,
    statistics: {
        histogram: (image) => greyHistogram(toGrey(image)),
        applyWithHistogram: (image, params, histogram) => applyThreshold(toGrey(image), params.value === 'otsu' ? otsuThreshold(histogram) : params.value),
    },
});
function applyThreshold(grey, level) {
    const out = Buffer.from(grey.data);
    const step = grey.channels;
    for (let i = 0; i < out.length; i += step)
        out[i] = out[i] > level ? 255 : 0;
    return { ...grey, data: out };
}
//# sourceMappingURL=threshold.js.map