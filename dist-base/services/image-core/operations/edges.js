import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { greyChannel } from './grayscale.js';
/** tan(22.5°) in Q15, as OpenCV's Canny classifies gradient directions. */
const TAN_22_5_Q15 = 13573;
/** Largest L1 gradient of a 3x3 Sobel pair on 8-bit samples: 4*255 per axis. */
const MAX_L1_GRADIENT = 2040;
/** Values of the edge map, which becomes the output: weak candidates are cleared at the end. */
const NONE = 0;
const WEAK = 1;
const EDGE = 255;
/**
 * OpenCV's Canny (aperture 3, L1 gradient) on a one-channel grey image: 3x3 Sobel with replicated
 * borders, non-maximum suppression in four directions with OpenCV's tie rules, then hysteresis:
 * pixels above `high` are edges, pixels above `low` are edges when 8-connected to one.
 * Returns one grey channel, 255 on edges and 0 elsewhere.
 */
export function canny(grey, low, high) {
    if (grey.channels !== 1)
        throw new Error(`canny needs one grey channel, got ${grey.channels}`);
    if (low > high)
        [low, high] = [high, low];
    const lowLimit = Math.floor(low);
    const highLimit = Math.floor(high);
    const { width, height, data } = grey;
    // Memory stays near one byte per pixel (the output, which doubles as the edge map) plus the stack
    // of strong pixels: gradients live in three rolling rows, padded with a zero magnitude either side
    // as OpenCV pads them.
    const rows = Array.from({ length: 3 }, () => ({
        dx: new Int16Array(width),
        dy: new Int16Array(width),
        magnitude: new Int32Array(width + 2),
    }));
    const sobelRow = (y, into) => {
        const above = Math.max(y - 1, 0) * width;
        const row = y * width;
        const below = Math.min(y + 1, height - 1) * width;
        for (let x = 0; x < width; x++) {
            const left = x > 0 ? x - 1 : 0;
            const right = x < width - 1 ? x + 1 : width - 1;
            const gx = data[above + right] + 2 * data[row + right] + data[below + right] -
                (data[above + left] + 2 * data[row + left] + data[below + left]);
            const gy = data[below + left] + 2 * data[below + x] + data[below + right] -
                (data[above + left] + 2 * data[above + x] + data[above + right]);
            into.dx[x] = gx;
            into.dy[x] = gy;
            into.magnitude[x + 1] = Math.abs(gx) + Math.abs(gy);
        }
    };
    const zeroRow = new Int32Array(width + 2);
    const edgeMap = Buffer.alloc(width * height, NONE);
    let stack = new Int32Array(1024);
    let stackSize = 0;
    const push = (index) => {
        if (stackSize === stack.length) {
            const grown = new Int32Array(stack.length * 2);
            grown.set(stack);
            stack = grown;
        }
        stack[stackSize++] = index;
    };
    if (height > 0)
        sobelRow(0, rows[0]);
    for (let y = 0; y < height; y++) {
        const current = rows[y % 3];
        if (y + 1 < height)
            sobelRow(y + 1, rows[(y + 1) % 3]);
        const above = y > 0 ? rows[(y + 2) % 3].magnitude : zeroRow;
        const below = y + 1 < height ? rows[(y + 1) % 3].magnitude : zeroRow;
        const magnitude = current.magnitude;
        for (let x = 0; x < width; x++) {
            const m = magnitude[x + 1];
            if (m <= lowLimit)
                continue;
            const gx = current.dx[x];
            const gy = current.dy[x];
            const ax = Math.abs(gx);
            const ayQ15 = Math.abs(gy) * 32768;
            const tan22x = ax * TAN_22_5_Q15;
            let isMaximum;
            if (ayQ15 < tan22x) {
                isMaximum = m > magnitude[x] && m >= magnitude[x + 2];
            }
            else if (ayQ15 > tan22x + ax * 65536) {
                isMaximum = m > above[x + 1] && m >= below[x + 1];
            }
            else {
                const step = (gx < 0) !== (gy < 0) ? -1 : 1;
                isMaximum = m > above[x + 1 - step] && m > below[x + 1 + step];
            }
            if (!isMaximum)
                continue;
            const index = y * width + x;
            if (m > highLimit) {
                edgeMap[index] = EDGE;
                push(index);
            }
            else {
                edgeMap[index] = WEAK;
            }
        }
    }
    while (stackSize > 0) {
        const index = stack[--stackSize];
        const x = index % width;
        const y = (index - x) / width;
        for (let ny = Math.max(y - 1, 0); ny <= Math.min(y + 1, height - 1); ny++) {
            for (let nx = Math.max(x - 1, 0); nx <= Math.min(x + 1, width - 1); nx++) {
                const neighbour = ny * width + nx;
                if (edgeMap[neighbour] === WEAK) {
                    edgeMap[neighbour] = EDGE;
                    push(neighbour);
                }
            }
        }
    }
    for (let i = 0; i < edgeMap.length; i++)
        if (edgeMap[i] === WEAK)
            edgeMap[i] = NONE;
    return { data: edgeMap, width, height, channels: 1 };
}
const threshold = (which, fallback) => z
    .number()
    .min(0)
    .max(MAX_L1_GRADIENT)
    .default(fallback)
    .describe(`${which} hysteresis threshold on the L1 gradient |dx|+|dy| (0-${MAX_L1_GRADIENT})`);
export const edges = defineOperation({
    name: 'edges',
    description: 'Canny edge detection as OpenCV does it (grey image, 3x3 Sobel, L1 gradient, hysteresis low/high); ' +
        'output is one grey channel, 255 on edges; alpha is dropped.',
    params: z
        .object({ low: threshold('lower', 100), high: threshold('upper', 200) })
        .strict()
        .refine(({ low, high }) => low <= high, { message: 'low must not exceed high', path: ['low'] }),
    tiling: { kind: 'whole', reason: 'hysteresis follows edges across any distance' },
    outputChannels: () => 1,
    apply: async (image, { low, high }) => canny(greyChannel(image), low, high),
});
//# sourceMappingURL=edges.js.map