import { z } from 'zod';
import { defineOperation } from '../operation.js';
import { extractRect } from '../pixel-move.js';
/**
 * The smallest rectangle holding every pixel that differs from the background (the top-left pixel) by
 * more than `threshold` in any sample, alpha included; undefined when every pixel is background.
 */
export function contentBox(image, threshold) {
    const { data, width, height, channels } = image;
    const background = data.subarray(0, channels);
    let left = width;
    let right = -1;
    let top = height;
    let bottom = -1;
    for (let y = 0; y < height; y++) {
        for (let x = 0, i = y * width * channels; x < width; x++, i += channels) {
            let differs = false;
            for (let c = 0; c < channels && !differs; c++)
                differs = Math.abs(data[i + c] - background[c]) > threshold;
            if (!differs)
                continue;
            if (x < left)
                left = x;
            if (x > right)
                right = x;
            if (y < top)
                top = y;
            bottom = y;
        }
    }
    return right < 0 ? undefined : { x: left, y: top, width: right - left + 1, height: bottom - top + 1 };
}
export const trim = defineOperation({
    name: 'trim',
    description: 'Cuts away the border of the background colour (the top-left pixel\'s): rows and columns in which no sample ' +
        'differs from it by more than threshold, keeping margin pixels of it around the content; an image that ' +
        'is all background is left as it is. Channels and alpha are kept.',
    params: z
        .object({
        threshold: z.number().int().min(0).max(255).default(10).describe('largest difference still counted as background'),
        margin: z.number().int().min(0).max(10_000).default(0).describe('background pixels kept around the content'),
    })
        .strict(),
    tiling: { kind: 'whole', reason: 'the border is found by scanning the whole image' },
    // Content-dependent: at most the input size, which is what the planner budgets by.
    outputSize: (input) => input,
    apply: async (image, { threshold, margin }) => {
        const box = contentBox(image, threshold);
        if (!box)
            return image;
        const x = Math.max(0, box.x - margin);
        const y = Math.max(0, box.y - margin);
        const right = Math.min(image.width, box.x + box.width + margin);
        const bottom = Math.min(image.height, box.y + box.height + margin);
        return extractRect(image, { x, y, width: right - x, height: bottom - y });
    },
});
//# sourceMappingURL=trim.js.map