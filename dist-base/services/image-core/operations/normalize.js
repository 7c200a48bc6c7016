import { z } from 'zod';
import { defineStatisticsOperation } from '../operation.js';
import { hasAlpha, lookupTable, mapColourSamples } from '../raw-image.js';
/** Histogram of every colour sample (all colour channels together, alpha ignored). */
function colourSampleHistogram(image) {
    const histogram = new Uint32Array(256);
    const colourChannels = hasAlpha(image) ? image.channels - 1 : image.channels;
    for (let i = 0; i < image.data.length; i += image.channels) {
        for (let c = 0; c < colourChannels; c++)
            histogram[image.data[i + c]]++;
    }
    return histogram;
}
function stretch(image, histogram) {
    const low = histogram.findIndex((count) => count > 0);
    const high = histogram.findLastIndex((count) => count > 0);
    if (low < 0 || low === high)
        return image;
    return mapColourSamples(image, lookupTable((value) => ((value - low) * 255) / (high - low)));
}
export const normalize = defineStatisticsOperation({
    name: 'normalize',
    description: 'Stretches the colour samples linearly so the darkest becomes 0 and the brightest 255 (OpenCV normalize ' +
        'NORM_MINMAX over all colour channels together, so hues are kept); a flat image is left as it is; alpha is kept.',
    params: z.object({}).strict(),
    statistics: {
        histogram: (image) => colourSampleHistogram(image),
        applyWithHistogram: (image, _params, histogram) => stretch(image, histogram),
    },
});
//# sourceMappingURL=normalize.js.map