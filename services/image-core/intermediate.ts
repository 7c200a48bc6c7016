import { readSync, writeSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import sharp, { type Sharp } from 'sharp';
import type { Size } from './pixel-move.js';
import type { Channels, RawImage, Rect } from './raw-image.js';

/** libvips' .v header: magic, width, height, bands, (unused), band format, coding, ... (64 bytes). */
const HEADER_BYTES = 64;
/** The magic number as read little-endian from a file written on a little-endian machine. */
const MAGIC_LITTLE_ENDIAN = 0x08f2a6b6;
const BAND_FORMAT_UCHAR = 0;
const CODING_NONE = 0;

/**
 * An uncompressed image on disk in libvips' native .v format: a 64-byte header, then rows of 8-bit
 * interleaved pixels (libvips' XML metadata may follow; it is optional). Tiles are cut with positioned
 * reads of rows and cores stitched in with positioned writes, so the master never holds a whole image
 * in memory; sharp reads the file back for the final encode.
 */
export class Intermediate implements Size {
  private constructor(
    readonly path: string,
    private readonly file: FileHandle,
    readonly width: number,
    readonly height: number,
    readonly channels: Channels,
  ) {}

  /** Opens an existing .v file for reading and writing, checking it holds 8-bit uncoded pixels. */
  static async open(path: string): Promise<Intermediate> {
    const file = await open(path, 'r+');
    try {
      const header = Buffer.alloc(HEADER_BYTES);
      await file.read(header, 0, HEADER_BYTES, 0);
      const [magic, width, height, bands] = [0, 4, 8, 12].map((at) => header.readUInt32LE(at));
      const [format, coding] = [20, 24].map((at) => header.readInt32LE(at));
      if (magic !== MAGIC_LITTLE_ENDIAN) throw new Error(`${path} is not a little-endian libvips .v file`);
      if (format !== BAND_FORMAT_UCHAR || coding !== CODING_NONE || bands < 1 || bands > 4) {
        throw new Error(
          `${path} holds band format ${format}, coding ${coding}, ${bands} bands; expected 8-bit, uncoded, 1-4 bands`,
        );
      }
      return new Intermediate(path, file, width, height, bands as Channels);
    } catch (error) {
      await file.close();
      throw error;
    }
  }

  /** Writes what a sharp pipeline produces (e.g. the decoded upload) as a .v file and opens it. */
  static async fromPipeline(pipeline: Sharp, path: string): Promise<Intermediate> {
    const partial = `${path}.partial.v`;
    await pipeline.toFile(partial);
    await rename(partial, path);
    return Intermediate.open(path);
  }

  /**
   * A new image of this size to be filled with positioned writes: the header of a 1x1 image sharp
   * makes with these channels, resized, then a sparse file of the right length (no pixels written).
   */
  static async create(path: string, size: Size, channels: Channels): Promise<Intermediate> {
    const template = `${path}.template.v`;
    const pixel = sharp({ create: { width: 1, height: 1, channels: channels % 2 === 0 ? 4 : 3, background: '#000000' } });
    // sharp creates only RGB(A); one grey band (plus alpha) comes from converting to b-w.
    await (channels <= 2 ? pixel.toColourspace('b-w') : pixel).toFile(template);
    const header = Buffer.alloc(HEADER_BYTES);
    const source = await open(template, 'r');
    await source.read(header, 0, HEADER_BYTES, 0).finally(() => source.close());
    await rm(template);
    header.writeUInt32LE(size.width, 4);
    header.writeUInt32LE(size.height, 8);
    const partial = `${path}.partial.v`;
    const file = await open(partial, 'w');
    try {
      await file.write(header, 0, HEADER_BYTES, 0);
      await file.truncate(HEADER_BYTES + size.width * size.height * channels);
    } finally {
      await file.close();
    }
    await rename(partial, path);
    return Intermediate.open(path);
  }

  /** The pixels of `rect`, read row by row. */
  async read(rect: Rect): Promise<RawImage> {
    this.checkInside(rect);
    const rowBytes = rect.width * this.channels;
    const data = Buffer.allocUnsafe(rowBytes * rect.height);
    if (rect.width === this.width) {
      await this.file.read(data, 0, data.length, this.offset(rect.x, rect.y));
    } else {
      // One positioned read per row: synchronous, because a promise per row cost the master's event loop
      // about ten times the system call itself (measured: docs/performance.md).
      for (let row = 0; row < rect.height; row++) {
        readSync(this.file.fd, data, row * rowBytes, rowBytes, this.offset(rect.x, rect.y + row));
      }
    }
    return { data, width: rect.width, height: rect.height, channels: this.channels };
  }

  /** Writes an image's pixels with its top-left corner at `at`. */
  async write(image: RawImage, at: { x: number; y: number }): Promise<void> {
    if (image.channels !== this.channels) {
      throw new Error(
        `cannot write ${image.channels}-channel pixels into the ${this.channels}-channel image ${this.path}`,
      );
    }
    this.checkInside({ ...at, width: image.width, height: image.height });
    const rowBytes = image.width * this.channels;
    if (image.width === this.width) {
      await this.file.write(image.data, 0, image.data.length, this.offset(at.x, at.y));
      return;
    }
    // Synchronous per row, as in read().
    for (let row = 0; row < image.height; row++) {
      writeSync(this.file.fd, image.data, row * rowBytes, rowBytes, this.offset(at.x, at.y + row));
    }
  }

  close(): Promise<void> {
    return this.file.close();
  }

  private offset(x: number, y: number): number {
    return HEADER_BYTES + (y * this.width + x) * this.channels;
  }

  private checkInside(rect: Rect): void {
    if (rect.x < 0 || rect.y < 0 || rect.x + rect.width > this.width || rect.y + rect.height > this.height) {
      throw new Error(
        `rectangle ${rect.width}x${rect.height} at ${rect.x},${rect.y} is outside ` +
          `the ${this.width}x${this.height} image ${this.path}`,
      );
    }
  }
}
