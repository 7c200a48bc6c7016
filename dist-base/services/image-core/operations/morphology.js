import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { hasAlpha } from '../raw-image.js';
/**
 * OpenCV turns `iterations` passes of a full size×size rectangle into one pass of a larger rectangle
 * with a scaled anchor; with borders ignored both give the same pixels, and one pass is cheaper.
 */
function morphologyWindow(size, iterations) {
    return { length: size + (iterations - 1) * (size - 1), anchor: Math.floor(size / 2) * iterations };
}
/*
 * Running minimum over windows of `length` samples starting `anchor` samples before each one, with
 * the van Herk/Gil-Werman algorithm: cut the (padded) line into blocks of `length`; a prefix minimum
 * running forward and a suffix minimum running backward within each block give any window's minimum
 * as min(backward[start], forward[end]), three comparisons per sample whatever the length. Samples
 * outside the image are ignored (padding with 255, neutral for min), which for min/max is the same
 * as replicating the border, OpenCV's default. Both passes work on whole rows of interleaved samples
 * so memory is read in order.
 */
/** Minimum along each row, over windows of `length` pixels; every channel. */
function minimumAlongRows(image, length, anchor) {
    const { data, width, height, channels } = image;
    const rowBytes = width * channels;
    const paddedBytes = (width + length - 1) * channels;
    const blockBytes = length * channels;
    const padded = new Uint8Array(paddedBytes).fill(255);
    const forward = new Uint8Array(paddedBytes);
    const backward = new Uint8Array(paddedBytes);
    const reach = (length - 1) * channels;
    const out = Buffer.allocUnsafe(data.length);
    for (let y = 0; y < height; y++) {
        padded.set(data.subarray(y * rowBytes, (y + 1) * rowBytes), anchor * channels);
        for (let blockStart = 0; blockStart < paddedBytes; blockStart += blockBytes) {
            const blockEnd = Math.min(blockStart + blockBytes, paddedBytes);
            for (let i = blockStart; i < blockStart + channels; i++)
                forward[i] = padded[i];
            for (let i = blockStart + channels; i < blockEnd; i++) {
                const a = forward[i - channels];
                const b = padded[i];
                forward[i] = a < b ? a : b;
            }
            for (let i = blockEnd - channels; i < blockEnd; i++)
                backward[i] = padded[i];
            for (let i = blockEnd - channels - 1; i >= blockStart; i--) {
                const a = backward[i + channels];
                const b = padded[i];
                backward[i] = a < b ? a : b;
            }
        }
        const rowStart = y * rowBytes;
        for (let i = 0; i < rowBytes; i++) {
            const a = backward[i];
            const b = forward[i + reach];
            out[rowStart + i] = a < b ? a : b;
        }
    }
    return out;
}
/** Element-wise minimum of two rows into `target`. */
function lowerOf(a, b, target) {
    for (let i = 0; i < target.length; i++)
        target[i] = a[i] < b[i] ? a[i] : b[i];
}
/**
 * Minimum down each column over windows of `length` rows, with whole rows as the vectors. Only two
 * blocks of rows are held: the backward minima of the block where output rows' windows start and the
 * forward minima of the next block, where they end.
 */
function minimumAlongColumns(data, rowBytes, height, length, anchor) {
    const out = Buffer.allocUnsafe(data.length);
    const neutral = new Uint8Array(rowBytes).fill(255);
    const paddedRows = height + length - 1;
    const row = (p) => (p < anchor || p >= anchor + height ? neutral : data.subarray((p - anchor) * rowBytes, (p - anchor + 1) * rowBytes));
    const backward = Array.from({ length }, () => new Uint8Array(rowBytes));
    const forward = Array.from({ length }, () => new Uint8Array(rowBytes));
    for (let blockStart = 0; blockStart < height; blockStart += length) {
        const blockEnd = Math.min(blockStart + length, paddedRows);
        backward[blockEnd - 1 - blockStart].set(row(blockEnd - 1));
        for (let p = blockEnd - 2; p >= blockStart; p--)
            lowerOf(backward[p + 1 - blockStart], row(p), backward[p - blockStart]);
        const nextStart = blockStart + length;
        const nextEnd = Math.min(nextStart + length - 1, paddedRows);
        if (nextStart < nextEnd)
            forward[0].set(row(nextStart));
        for (let p = nextStart + 1; p < nextEnd; p++)
            lowerOf(forward[p - 1 - nextStart], row(p), forward[p - nextStart]);
        for (let y = blockStart; y < Math.min(blockStart + length, height); y++) {
            const target = out.subarray(y * rowBytes, (y + 1) * rowBytes);
            // The window of output row y is padded rows y .. y+length-1: the rest of this block, then the next.
            if (y === blockStart)
                target.set(backward[0]);
            else
                lowerOf(backward[y - blockStart], forward[y - blockStart - 1], target);
        }
    }
    return out;
}
/**
 * Grey-level min (erode) or max (dilate) over a rectangle of `length` pixels with the given anchor,
 * per colour channel; alpha is kept. A maximum is 255 minus the minimum of 255 minus the samples.
 */
function rectangleFilter(image, extreme, length, anchor) {
    if (length <= 1)
        return image;
    const flipped = extreme === 'max' ? { ...image, data: invertAll(image.data) } : image;
    const rows = minimumAlongRows(flipped, length, anchor);
    const out = minimumAlongColumns(rows, image.width * image.channels, image.height, length, anchor);
    if (extreme === 'max')
        invertAll(out, out);
    if (hasAlpha(image)) {
        for (let i = image.channels - 1; i < out.length; i += image.channels)
            out[i] = image.data[i];
    }
    return { ...image, data: out };
}
function invertAll(source, target = Buffer.allocUnsafe(source.length)) {
    for (let i = 0; i < source.length; i++)
        target[i] = 255 - source[i];
    return target;
}
const morphologyParams = z
    .object({
    size: z.number().int().min(1).max(51).default(5).describe('edge of the square structuring element, in pixels'),
    iterations: z.number().int().min(1).max(20).default(2).describe('how many times the filter is applied'),
})
    .strict();
function morphology(name, extreme, effect) {
    return defineOperation({
        name,
        description: `Grey-level ${extreme}imum over a size×size square, repeated iterations times (OpenCV ${name} with a ` +
            `rectangular kernel, default anchor and border): ${effect}; per colour channel, alpha is kept.`,
        params: morphologyParams,
        tiling: {
            kind: 'neighbourhood',
            halo: ({ size, iterations }) => {
                const { length, anchor } = morphologyWindow(size, iterations);
                return Math.max(anchor, length - 1 - anchor);
            },
        },
        apply: async (image, { size, iterations }) => {
            const { length, anchor } = morphologyWindow(size, iterations);
            return rectangleFilter(image, extreme, length, anchor);
        },
    });
}
export const erode = morphology('erode', 'min', 'dark regions grow');
export const dilate = morphology('dilate', 'max', 'bright regions grow');
//# sourceMappingURL=morphology.js.map