import { z } from 'zod';
import { defineStatisticsOperation } from '../operation.js';
import { greyHistogram } from './threshold.js';
/** Rounds half to even, as OpenCV's saturate_cast from float does. */
function roundHalfEven(value) {
    const rounded = Math.round(value);
    return value - Math.floor(value) === 0.5 && rounded % 2 !== 0 ? rounded - 1 : rounded;
}
/** OpenCV equalizeHist's table, in its single-precision arithmetic so levels round the same way. */
function equalizationTable(histogram) {
    const table = new Uint8Array(256);
    let first = 0;
    while (first < 255 && histogram[first] === 0)
        first++;
    let total = 0;
    for (const count of histogram)
        total += count;
    if (histogram[first] === total)
        return table.fill(first);
    const scale = Math.fround(255 / (total - histogram[first]));
    let sum = 0;
    for (let level = first + 1; level < 256; level++) {
        sum += histogram[level];
        table[level] = Math.min(255, roundHalfEven(Math.fround(Math.fround(sum) * scale)));
    }
    return table;
}
/** OpenCV's 8-bit YCrCb conversion (RGB2YCrCb_i / YCrCb2RGB_i): 14-bit fixed point, rounded. */
const YCC_SHIFT = 14;
const YCC_HALF = 1 << (YCC_SHIFT - 1);
const descale = (value) => (value + YCC_HALF) >> YCC_SHIFT;
const saturate = (value) => (value < 0 ? 0 : value > 255 ? 255 : value);
/** The samples equalisation looks at: grey as it is, or Y of OpenCV's YCrCb for colour. */
function lumaHistogram(image) {
    if (image.channels <= 2)
        return greyHistogram(image);
    const histogram = new Uint32Array(256);
    const { data, channels } = image;
    for (let i = 0; i < data.length; i += channels) {
        histogram[descale(data[i] * 4899 + data[i + 1] * 9617 + data[i + 2] * 1868)]++;
    }
    return histogram;
}
/**
 * Grey images: the table maps every sample. Colour images: as OpenCV users do it, convert to YCrCb,
 * equalise Y, convert back, all in OpenCV's integer arithmetic so the pixels match.
 */
function equalizeWith(image, table) {
    const out = Buffer.from(image.data);
    const step = image.channels;
    if (image.channels <= 2) {
        for (let i = 0; i < out.length; i += step)
            out[i] = table[out[i]];
        return { ...image, data: out };
    }
    for (let i = 0; i < out.length; i += step) {
        const r = out[i];
        const g = out[i + 1];
        const b = out[i + 2];
        const y = descale(r * 4899 + g * 9617 + b * 1868);
        const cr = saturate(descale((r - y) * 11682 + (128 << YCC_SHIFT))) - 128;
        const cb = saturate(descale((b - y) * 9241 + (128 << YCC_SHIFT))) - 128;
        const equalised = table[y];
        out[i] = saturate(equalised + descale(cr * 22987));
        out[i + 1] = saturate(equalised + descale(cb * -5636 + cr * -11698));
        out[i + 2] = saturate(equalised + descale(cb * 29049));
    }
    return { ...image, data: out };
}
export const equalize = defineStatisticsOperation({
    name: 'equalize',
    description: 'Histogram equalisation of the whole image (OpenCV equalizeHist on grey; on colour, equalizeHist of Y ' +
        'in OpenCV\'s YCrCb, converted back); alpha is kept.',
    params: z.object({}).strict(),
    statistics: {
        histogram: (image) => lumaHistogram(image),
        applyWithHistogram: (image, _params, histogram) => equalizeWith(image, equalizationTable(histogram)),
    },
});
//# sourceMappingURL=equalize.js.map