import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { hasAlpha } from '../raw-image.js';
/**
 * OpenCV's COLOR_RGB2GRAY in its own fixed point (Y = 0.299 R + 0.587 G + 0.114 B; for 8-bit input
 * OpenCV uses 15-bit weights, rounded), so grey-based operations agree with the OpenCV original.
 */
export function toGrey(image) {
    if (image.channels <= 2)
        return image;
    const { data, width, height } = image;
    const alpha = hasAlpha(image);
    const outChannels = alpha ? 2 : 1;
    const out = Buffer.allocUnsafe(width * height * outChannels);
    for (let i = 0, o = 0; i < data.length; i += image.channels, o += outChannels) {
        out[o] = (data[i] * 9798 + data[i + 1] * 19235 + data[i + 2] * 3735 + 16384) >> 15;
        if (alpha)
            out[o + 1] = data[i + 3];
    }
    return { data: out, width, height, channels: outChannels };
}
/** The channels toGrey gives: one grey channel, plus alpha if there was alpha. */
export const greyChannels = (input) => (input === 2 || input === 4 ? 2 : 1);
/** The grey samples alone (alpha dropped): what grey-based operations such as Canny read. */
export function greyChannel(image) {
    const grey = toGrey(image);
    if (grey.channels === 1)
        return grey;
    const out = Buffer.allocUnsafe(grey.width * grey.height);
    for (let i = 0; i < out.length; i++)
        out[i] = grey.data[2 * i];
    return { data: out, width: grey.width, height: grey.height, channels: 1 };
}
export const grayscale = defineOperation({
    name: 'grayscale',
    description: 'Converts to one grey channel (OpenCV weights 0.299 R + 0.587 G + 0.114 B); alpha is kept.',
    params: z.object({}).strict(),
    tiling: { kind: 'pointwise' },
    outputChannels: greyChannels,
    apply: async (image) => toGrey(image),
});
//# sourceMappingURL=grayscale.js.map