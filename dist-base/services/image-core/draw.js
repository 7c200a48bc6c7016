import { hasAlpha } from './raw-image.js';
/** The channels colourCopy gives: RGB, plus alpha if there was alpha. */
export const colourChannels = (input) => (input === 2 || input === 4 ? 4 : 3);
/** The image with colour channels (grey becomes RGB, alpha kept), copied so marks can be drawn on it. */
export function colourCopy(image) {
    if (image.channels >= 3)
        return { ...image, data: Buffer.from(image.data) };
    const alpha = hasAlpha(image);
    const channels = alpha ? 4 : 3;
    const out = Buffer.allocUnsafe(image.width * image.height * channels);
    for (let i = 0, o = 0; i < image.data.length; i += image.channels, o += channels) {
        out[o] = out[o + 1] = out[o + 2] = image.data[i];
        if (alpha)
            out[o + 3] = image.data[i + 1];
    }
    return { data: out, width: image.width, height: image.height, channels };
}
/** The image as RGBA (grey expanded, opaque alpha added where there was none), e.g. for zxing. */
export function colourCopyWithAlpha(image) {
    if (image.channels === 4)
        return image;
    const colour = colourCopy(image);
    if (colour.channels === 4)
        return colour;
    const out = Buffer.allocUnsafe(image.width * image.height * 4);
    for (let i = 0, o = 0; o < out.length; i += 3, o += 4) {
        out[o] = colour.data[i];
        out[o + 1] = colour.data[i + 1];
        out[o + 2] = colour.data[i + 2];
        out[o + 3] = 255;
    }
    return { data: out, width: image.width, height: image.height, channels: 4 };
}
/** Paints one pixel of a colour image (opaque); points outside the image are ignored. */
export function paint(image, x, y, colour) {
    if (x < 0 || y < 0 || x >= image.width || y >= image.height)
        return;
    const at = (y * image.width + x) * image.channels;
    image.data[at] = colour[0];
    image.data[at + 1] = colour[1];
    image.data[at + 2] = colour[2];
    if (image.channels === 4)
        image.data[at + 3] = 255;
}
/** A straight line (Bresenham) drawn with a square pen `thickness` pixels wide. */
export function drawLine(image, from, to, colour, thickness = 1) {
    let x = Math.round(from.x);
    let y = Math.round(from.y);
    const x1 = Math.round(to.x);
    const y1 = Math.round(to.y);
    const dx = Math.abs(x1 - x);
    const dy = -Math.abs(y1 - y);
    const sx = x < x1 ? 1 : -1;
    const sy = y < y1 ? 1 : -1;
    const offset = Math.floor((thickness - 1) / 2);
    let error = dx + dy;
    for (;;) {
        for (let py = 0; py < thickness; py++) {
            for (let px = 0; px < thickness; px++)
                paint(image, x - offset + px, y - offset + py, colour);
        }
        if (x === x1 && y === y1)
            return;
        const doubled = 2 * error;
        if (doubled >= dy) {
            error += dy;
            x += sx;
        }
        if (doubled <= dx) {
            error += dx;
            y += sy;
        }
    }
}
//# sourceMappingURL=draw.js.map