import { z } from 'zod';
import { hasAlpha } from './raw-image.js';
/** Any raw image as RGBA (grey spread to R = G = B, opaque where it has no alpha). */
export function rgbaOf(image) {
    const { data, width, height, channels } = image;
    if (channels === 4)
        return { data, width, height };
    const out = Buffer.allocUnsafe(width * height * 4);
    const alpha = hasAlpha(image);
    for (let i = 0, o = 0; o < out.length; i += channels, o += 4) {
        const colour = channels >= 3;
        out[o] = data[i];
        out[o + 1] = data[colour ? i + 1 : i];
        out[o + 2] = data[colour ? i + 2 : i];
        out[o + 3] = alpha ? data[i + channels - 1] : 255;
    }
    return { data: out, width, height };
}
export const gravities = ['northwest', 'north', 'northeast', 'west', 'centre', 'east', 'southwest', 'south', 'southeast'];
/** The placement parameters composite and text share. */
export const placementParams = {
    gravity: z.enum(gravities).default('southeast').describe('where the overlay sits when left/top are not given'),
    margin: z.number().int().min(0).max(10_000).default(16).describe('distance in pixels from the edges gravity names'),
    left: z.number().int().min(-100_000).max(100_000).optional().describe('x of the overlay\'s top-left corner (overrides gravity)'),
    top: z.number().int().min(-100_000).max(100_000).optional().describe('y of the overlay\'s top-left corner (overrides gravity)'),
    opacity: z.number().min(0).max(1).default(1).describe('0 transparent to 1 as the overlay is'),
};
/** Top-left corner of an overlay of `size` on an image of `image` size. */
export function overlayOrigin(image, size, placement) {
    const { gravity, margin } = placement;
    const along = (free, start, end) => start ? margin : end ? free - margin : Math.floor(free / 2);
    const x = along(image.width - size.width, gravity.endsWith('west'), gravity.endsWith('east'));
    const y = along(image.height - size.height, gravity.startsWith('north'), gravity.startsWith('south'));
    return { x: placement.left ?? x, y: placement.top ?? y };
}
/**
 * Blends copies of `overlay` with their top-left corners at `origins` (image coordinates) "over" the
 * pixels of `base`, whose own rectangle in the image is `region` (a tile's; the whole image's otherwise).
 * Integer arithmetic, so exact and the same on every machine. Grey bases take the overlay's grey (the
 * grayscale operation's weights); a base with alpha gets the union of both coverages.
 */
export function blendOver(base, region, overlay, origins, opacity) {
    const out = Buffer.from(base.data);
    const { channels, width } = base;
    const colours = channels >= 3 ? 3 : 1;
    const baseHasAlpha = hasAlpha(base);
    const strength = Math.round(opacity * 255); // 0..255
    for (const origin of origins) {
        const x0 = Math.max(0, origin.x - region.x);
        const y0 = Math.max(0, origin.y - region.y);
        const x1 = Math.min(base.width, origin.x + overlay.width - region.x);
        const y1 = Math.min(base.height, origin.y + overlay.height - region.y);
        for (let y = y0; y < y1; y++) {
            const overlayRow = (y + region.y - origin.y) * overlay.width;
            for (let x = x0; x < x1; x++) {
                const o = (overlayRow + x + region.x - origin.x) * 4;
                const a = overlay.data[o + 3] * strength; // overlay coverage, 0..65025
                if (a === 0)
                    continue;
                const i = (y * width + x) * channels;
                const r = overlay.data[o];
                const g = overlay.data[o + 1];
                const b = overlay.data[o + 2];
                const grey = (r * 9798 + g * 19235 + b * 3735 + 16384) >> 15;
                if (!baseHasAlpha) {
                    if (colours === 1)
                        out[i] = Math.floor((grey * a + out[i] * (65025 - a) + 32512) / 65025);
                    else {
                        out[i] = Math.floor((r * a + out[i] * (65025 - a) + 32512) / 65025);
                        out[i + 1] = Math.floor((g * a + out[i + 1] * (65025 - a) + 32512) / 65025);
                        out[i + 2] = Math.floor((b * a + out[i + 2] * (65025 - a) + 32512) / 65025);
                    }
                    continue;
                }
                // "over" with straight alpha: outA = a + baseA(1 - a); outC = (C·a + baseC·baseA(1 - a)) / outA.
                const below = Math.floor((out[i + colours] * 255 * (65025 - a) + 32512) / 65025);
                const outA = a + below;
                const mix = (top, under) => Math.floor((top * a + under * below + Math.floor(outA / 2)) / outA);
                if (colours === 1)
                    out[i] = mix(grey, out[i]);
                else {
                    out[i] = mix(r, out[i]);
                    out[i + 1] = mix(g, out[i + 1]);
                    out[i + 2] = mix(b, out[i + 2]);
                }
                out[i + colours] = Math.floor((outA + 127) / 255);
            }
        }
    }
    return { ...base, data: out };
}
/** Origins of copies of a `size` overlay repeated from `first` so that they cover `region`. */
export function repeatedOrigins(first, size, region) {
    const startX = first.x - Math.ceil((first.x - region.x) / size.width) * size.width;
    const startY = first.y - Math.ceil((first.y - region.y) / size.height) * size.height;
    const origins = [];
    for (let y = startY; y < region.y + region.height; y += size.height) {
        for (let x = startX; x < region.x + region.width; x += size.width)
            origins.push({ x, y });
    }
    return origins;
}
/**
 * `make` memoised by key in a map of at most `limit` entries (oldest dropped first), so the tiles of one
 * image decode or render their overlay once; a failed promise is forgotten so a later call retries.
 */
export function memoised(limit, make) {
    const cache = new Map();
    return (key) => {
        let value = cache.get(key);
        if (!value) {
            if (cache.size >= limit)
                cache.delete(cache.keys().next().value);
            value = make(key);
            value.catch(() => cache.delete(key));
            cache.set(key, value);
        }
        return value;
    };
}
//# sourceMappingURL=overlay.js.map