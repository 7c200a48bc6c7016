import { constants } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
/**
 * Intermediates of a tiled run are uncompressed images in libvips' native .v format: a 64-byte header,
 * then rows of 8-bit interleaved pixels (libvips' XML metadata may follow; it is optional). Workers read a
 * tile's rows as one byte range and write its core as another, so nobody holds a whole image in memory,
 * and sharp reads the file itself for the final encode.
 */
export const HEADER_BYTES = 64;
/** The magic number as read little-endian from a file written on a little-endian machine. */
const MAGIC_LITTLE_ENDIAN = 0x08f2a6b6;
const BAND_FORMAT_UCHAR = 0;
const CODING_NONE = 0;
/** The shape a .v header declares, checking it holds 8-bit uncoded pixels of 1-4 bands. */
export function parseHeader(header, name) {
    const [magic, width, height, bands] = [0, 4, 8, 12].map((at) => header.readUInt32LE(at));
    const [format, coding] = [20, 24].map((at) => header.readInt32LE(at));
    if (magic !== MAGIC_LITTLE_ENDIAN)
        throw new Error(`${name} is not a little-endian libvips .v file`);
    if (format !== BAND_FORMAT_UCHAR || coding !== CODING_NONE || bands < 1 || bands > 4) {
        throw new Error(`${name} holds band format ${format}, coding ${coding}, ${bands} bands; expected 8-bit, uncoded, 1-4 bands`);
    }
    return { width, height, channels: bands };
}
/** Reads and checks the header of a .v file. */
export async function readHeader(path) {
    const file = await open(path, 'r');
    try {
        const header = Buffer.alloc(HEADER_BYTES);
        await file.read(header, 0, HEADER_BYTES, 0);
        return parseHeader(header, path);
    }
    finally {
        await file.close();
    }
}
/** Headers of 1x1 images per channel count, made once by sharp (it writes .v only to files); only width and height differ after. */
const templates = new Map();
/** The .v header of an image of this shape: that of a 1x1 image sharp writes, resized. */
export async function headerFor(shape) {
    let template = templates.get(shape.channels);
    if (!template) {
        const pixel = sharp({ create: { width: 1, height: 1, channels: shape.channels % 2 === 0 ? 4 : 3, background: '#000000' } });
        // sharp creates only RGB(A); one grey band (plus alpha) comes from converting to b-w.
        const file = join(tmpdir(), `dips-header-${process.pid}-${shape.channels}-${Math.random().toString(36).slice(2)}.v`);
        template = (shape.channels <= 2 ? pixel.toColourspace('b-w') : pixel)
            .toFile(file)
            .then(() => readFile(file))
            .finally(() => rm(file, { force: true }));
        templates.set(shape.channels, template);
    }
    const header = Buffer.from((await template).subarray(0, HEADER_BYTES));
    header.writeUInt32LE(shape.width, 4);
    header.writeUInt32LE(shape.height, 8);
    return header;
}
const rowBytes = (shape) => shape.width * shape.channels;
/** The bytes of the full rows `rect` spans: one contiguous range, whatever the rectangle's columns. */
export function rowsRange(shape, rect) {
    const start = HEADER_BYTES + rect.y * rowBytes(shape);
    return { start, end: start + rect.height * rowBytes(shape) - 1 };
}
/**
 * Where a tile's core goes in the stage's output: contiguous because cores are full-width strips or
 * parts of one row (planner `tileShape`). The core at the origin also carries the header, so the ranges
 * of a stage's tiles, in order, make the whole file (an S3 multipart upload's parts).
 */
export function coreRange(shape, core) {
    if (core.width !== shape.width && core.height !== 1) {
        throw new Error(`core ${core.width}x${core.height} at ${core.x},${core.y} is not contiguous in a ${shape.width}-pixel-wide image`);
    }
    const first = HEADER_BYTES + (core.y * shape.width + core.x) * shape.channels;
    const end = first + core.width * core.height * shape.channels - 1;
    return { start: core.x === 0 && core.y === 0 ? 0 : first, end };
}
/** The pixels of `rect` out of the bytes of the full rows it spans (rowsRange). */
export function cutRows(rows, shape, rect) {
    const full = rowBytes(shape);
    if (rows.length !== rect.height * full) {
        throw new Error(`${rows.length} bytes are not the ${rect.height} rows of ${full} bytes the tile spans`);
    }
    if (rect.width === shape.width)
        return { data: rows, width: rect.width, height: rect.height, channels: shape.channels };
    const wanted = rect.width * shape.channels;
    const data = Buffer.allocUnsafe(wanted * rect.height);
    for (let row = 0; row < rect.height; row++) {
        rows.copy(data, row * wanted, row * full + rect.x * shape.channels, row * full + rect.x * shape.channels + wanted);
    }
    return { data, width: rect.width, height: rect.height, channels: shape.channels };
}
/**
 * Writes bytes (one buffer, or several in order) at `offset` of a file, creating it (sparse) if it does
 * not exist yet: tiles of a stage write in any order.
 */
export async function writeAt(path, offset, data) {
    const chunks = Buffer.isBuffer(data) ? [data] : data;
    const length = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    const file = await open(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    try {
        const { bytesWritten } = await file.writev(chunks, offset);
        if (bytesWritten !== length)
            throw new Error(`wrote ${bytesWritten} of ${length} bytes at ${offset} of ${path}`);
    }
    finally {
        await file.close();
    }
}
/** Writes what a sharp pipeline produces (the decoded upload) as a .v file, renamed into place, and checks it. */
export async function writeIntermediate(pipeline, path) {
    const partial = `${path}.partial-${process.pid}-${Math.random().toString(36).slice(2)}.v`;
    try {
        await pipeline.toFile(partial);
        const shape = await readHeader(partial);
        await rename(partial, path);
        return shape;
    }
    finally {
        await rm(partial, { force: true });
    }
}
//# sourceMappingURL=intermediate.js.map