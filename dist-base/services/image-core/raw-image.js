export function hasAlpha(image) {
    return image.channels === 2 || image.channels === 4;
}
export function rawImage(data, width, height, channels) {
    if (channels < 1 || channels > 4)
        throw new Error(`unsupported channel count ${channels}`);
    if (data.length !== width * height * channels) {
        throw new Error(`raw buffer of ${data.length} bytes does not hold ${width}x${height}x${channels}`);
    }
    return { data, width, height, channels: channels };
}
/** sharp's raw input descriptor for this image. */
export function rawDescriptor(image) {
    return { raw: { width: image.width, height: image.height, channels: image.channels } };
}
/** Passes every colour sample through a 256-entry table; alpha is kept. */
export function mapColourSamples(image, table) {
    const { data, channels } = image;
    const out = Buffer.from(data);
    if (!hasAlpha(image)) {
        for (let i = 0; i < out.length; i++)
            out[i] = table[data[i]];
        return { ...image, data: out };
    }
    for (let i = 0; i < out.length; i += channels) {
        for (let c = 0; c < channels - 1; c++)
            out[i + c] = table[data[i + c]];
    }
    return { ...image, data: out };
}
/** A 256-entry lookup table from a function of the sample value; results are rounded and clamped to 0..255. */
export function lookupTable(map) {
    return Uint8Array.from({ length: 256 }, (_, value) => Math.min(255, Math.max(0, Math.round(map(value)))));
}
/** The colour channels of an image and, separately, its alpha samples (undefined without alpha). */
export function splitAlpha(image) {
    if (!hasAlpha(image))
        return { colour: image };
    const { data, width, height, channels } = image;
    const colourChannels = channels - 1;
    const colour = Buffer.allocUnsafe(width * height * colourChannels);
    const alpha = Buffer.allocUnsafe(width * height);
    for (let p = 0, i = 0, o = 0; p < alpha.length; p++, i += channels, o += colourChannels) {
        for (let c = 0; c < colourChannels; c++)
            colour[o + c] = data[i + c];
        alpha[p] = data[i + colourChannels];
    }
    return { colour: { data: colour, width, height, channels: colourChannels }, alpha };
}
/** The inverse of splitAlpha: colour channels with the alpha samples appended to every pixel. */
export function joinAlpha(colour, alpha) {
    if (!alpha)
        return colour;
    const { data, width, height, channels } = colour;
    const outChannels = channels + 1;
    const out = Buffer.allocUnsafe(width * height * outChannels);
    for (let p = 0, i = 0, o = 0; p < alpha.length; p++, i += channels, o += outChannels) {
        for (let c = 0; c < channels; c++)
            out[o + c] = data[i + c];
        out[o + channels] = alpha[p];
    }
    return { data: out, width, height, channels: outChannels };
}
/** Index `i` folded back into 0..length-1 by mirroring with the edge sample repeated (…1 0 | 0 1…). */
function mirrorIndex(i, length) {
    const period = 2 * length;
    const folded = ((i % period) + period) % period;
    return folded < length ? folded : period - 1 - folded;
}
/**
 * The image extended by `padX` columns and `padY` rows on every side with mirrored copies of itself
 * (edge sample repeated, as libvips' VIPS_EXTEND_MIRROR), folding again where the image is narrower.
 */
export function mirrorPad(image, padX, padY) {
    const { data, width, height, channels } = image;
    const outWidth = width + 2 * padX;
    const outHeight = height + 2 * padY;
    const out = Buffer.allocUnsafe(outWidth * outHeight * channels);
    const sourceX = Int32Array.from({ length: outWidth }, (_, x) => mirrorIndex(x - padX, width) * channels);
    for (let y = 0; y < outHeight; y++) {
        const sourceRow = mirrorIndex(y - padY, height) * width * channels;
        let o = y * outWidth * channels;
        for (let x = 0; x < outWidth; x++, o += channels)
            data.copy(out, o, sourceRow + sourceX[x], sourceRow + sourceX[x] + channels);
    }
    return { data: out, width: outWidth, height: outHeight, channels };
}
//# sourceMappingURL=raw-image.js.map