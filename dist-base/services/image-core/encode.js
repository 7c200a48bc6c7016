import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { hasAlpha, rawDescriptor } from './raw-image.js';
import { exifWithoutGps } from './source-metadata.js';
import { maxEffort, outputDefaults, outputFormats } from '../protocol/output.js';
/** Quality used when none is given, per lossy format. */
const defaultQuality = { jpeg: 90, webp: 85, avif: 60 };
const contentTypes = {
    jpeg: 'image/jpeg',
    png: 'image/png',
    webp: 'image/webp',
    tiff: 'image/tiff',
    avif: 'image/avif',
};
const extensions = { jpeg: 'jpg', png: 'png', webp: 'webp', tiff: 'tiff', avif: 'avif' };
export function contentTypeFor(format) {
    return contentTypes[format];
}
export function extensionFor(format) {
    return extensions[format];
}
/** The output format when the user names none: the input's own, except GIF, which becomes lossless PNG. */
export function outputFormatFor(input) {
    return input === 'gif' ? 'png' : input;
}
/**
 * Encoder settings, explicit so speed and size do not change with sharp's defaults. JPEG skips
 * optimiseCoding (30% slower and twice the memory on large images, a few % smaller files).
 */
function withEncoder(pipeline, options) {
    const { format, quality, effort, progressive = outputDefaults.progressive, chromaSubsampling = outputDefaults.chromaSubsampling, lossless = outputDefaults.lossless, } = options;
    switch (format) {
        case 'jpeg':
            return pipeline.jpeg({ quality: quality ?? defaultQuality.jpeg, optimiseCoding: false, chromaSubsampling, progressive });
        case 'png':
            return pipeline.png({ compressionLevel: 6, adaptiveFiltering: false, palette: false, progressive });
        case 'webp':
            return pipeline.webp({ quality: quality ?? defaultQuality.webp, effort: effort ?? 4, lossless });
        case 'tiff':
            return pipeline.tiff({ compression: 'lzw', predictor: 'horizontal' });
        case 'avif':
            return pipeline.avif({ quality: quality ?? defaultQuality.avif, effort: effort ?? 2, lossless, chromaSubsampling });
    }
}
/**
 * libvips reads ICC profiles from files only: the input's profile is written once per content into the
 * temporary directory (a few kB; named by its hash, so concurrent writers write the same bytes).
 */
async function iccProfileFile(icc) {
    const file = path.join(os.tmpdir(), `dips-icc-${createHash('sha256').update(icc).digest('hex').slice(0, 32)}.icc`);
    if (!existsSync(file)) {
        const partial = `${file}.${process.pid}.${Date.now()}`;
        await writeFile(partial, icc);
        await rename(partial, file);
    }
    return file;
}
/**
 * The metadata policy. Pixels were converted to sRGB at decode, so keeping the ICC profile converts them
 * back into it (withIccProfile) and embeds it; EXIF is rewritten from the input's tags without the GPS
 * block, with orientation 1 (pixels are already upright).
 */
async function withMetadataPolicy(pipeline, options) {
    const policy = options.metadata ?? outputDefaults.metadata;
    if (policy === 'strip' || options.source === undefined)
        return pipeline;
    const meta = await sharp(options.source, { limitInputPixels: false }).metadata();
    if (meta.icc)
        pipeline = pipeline.withIccProfile(await iccProfileFile(meta.icc));
    if (policy === 'exif' && meta.exif) {
        const exif = exifWithoutGps(meta.exif);
        if (exif)
            pipeline = pipeline.withExif(exif);
    }
    return pipeline;
}
/** Why `effort` does not suit the format (above its encoder's maximum), or undefined when it does. */
export function effortRefusal(format, effort) {
    if (effort === undefined || !(format in maxEffort))
        return undefined;
    const most = maxEffort[format];
    return effort > most ? `effort ${effort} is above ${format.toUpperCase()}'s maximum of ${most}` : undefined;
}
/**
 * Encodes raw pixels. JPEG has no alpha channel: transparent images are flattened onto white first.
 * Grey images are written as grey.
 */
export async function encodeImage(image, options) {
    return encodePipeline(sharp(image.data, rawDescriptor(image)), image, options);
}
/** Encodes what a sharp pipeline yields, e.g. a large image streamed from disk, as encodeImage does. */
export async function encodePipeline(pipeline, image, options) {
    return (await withEncoding(pipeline, image, options)).toBuffer();
}
/**
 * The pipeline with encodePipeline's output settings, to run as the caller needs: e.g. toBuffer with
 * resolveWithObject, whose info gives the output's size without reading the encoded header again.
 */
export async function withEncoding(pipeline, image, options) {
    const { format, quality, effort } = options;
    if (!outputFormats.includes(format)) {
        throw new RangeError(`output format "${format}" is not one of ${outputFormats.join(', ')}`);
    }
    if (quality !== undefined && (!Number.isInteger(quality) || quality < 1 || quality > 100)) {
        throw new RangeError(`quality ${quality} must be an integer from 1 to 100`);
    }
    const refused = effortRefusal(format, effort);
    if (refused)
        throw new RangeError(refused);
    if (format === 'jpeg' && hasAlpha(image))
        pipeline = pipeline.flatten({ background: '#ffffff' });
    if (image.channels <= 2)
        pipeline = pipeline.toColourspace('b-w');
    return withEncoder(await withMetadataPolicy(pipeline, options), options);
}
//# sourceMappingURL=encode.js.map