import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import type { InputFormat } from './decode.js';
import { hasAlpha, rawDescriptor, type RawImage } from './raw-image.js';
import { OutputError } from './errors.js';
import { exifWithoutGps } from './source-metadata.js';
import { maxEffort, outputDefaults, outputFormats, type OutputFormat, type OutputOptions } from '../protocol/output.js';

export interface EncodeOptions extends OutputOptions {
  format: OutputFormat;
  /** 1-100 for the lossy formats (JPEG, WebP, AVIF); PNG and TIFF are lossless and ignore it. */
  quality?: number;
  /** The input file (path or bytes), whose ICC profile and EXIF the metadata policy keeps. */
  source?: Buffer | string;
}

/** Quality used when none is given, per lossy format. */
const defaultQuality = { jpeg: 90, webp: 85, avif: 60 } as const;

const contentTypes: Record<OutputFormat, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  tiff: 'image/tiff',
  avif: 'image/avif',
};

const extensions: Record<OutputFormat, string> = { jpeg: 'jpg', png: 'png', webp: 'webp', tiff: 'tiff', avif: 'avif' };

export function contentTypeFor(format: OutputFormat): string {
  return contentTypes[format];
}

export function extensionFor(format: OutputFormat): string {
  return extensions[format];
}

/** The output format when the user names none: the input's own, except GIF, which becomes lossless PNG. */
export function outputFormatFor(input: InputFormat): OutputFormat {
  return input === 'gif' ? 'png' : input;
}

/**
 * Encoder settings, explicit so speed and size do not change with sharp's defaults. JPEG skips
 * optimiseCoding (30% slower and twice the memory on large images, a few % smaller files).
 */
function withEncoder(pipeline: Sharp, options: EncodeOptions): Sharp {
  const {
    format,
    quality,
    effort,
    progressive = outputDefaults.progressive,
    chromaSubsampling = outputDefaults.chromaSubsampling,
    lossless = outputDefaults.lossless,
  } = options;
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
async function iccProfileFile(icc: Buffer): Promise<string> {
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
async function withMetadataPolicy(pipeline: Sharp, options: EncodeOptions): Promise<Sharp> {
  const policy = options.metadata ?? outputDefaults.metadata;
  if (policy === 'strip' || options.source === undefined) return pipeline;
  const meta = await sharp(options.source, { limitInputPixels: false }).metadata();
  if (meta.icc) pipeline = pipeline.withIccProfile(await iccProfileFile(meta.icc));
  if (policy === 'exif' && meta.exif) {
    const exif = exifWithoutGps(meta.exif);
    if (exif) pipeline = pipeline.withExif(exif);
  }
  return pipeline;
}

/** Why `effort` does not suit the format (above its encoder's maximum), or undefined when it does. */
export function effortRefusal(format: OutputFormat, effort: number | undefined): string | undefined {
  if (effort === undefined || !(format in maxEffort)) return undefined;
  const most = maxEffort[format as keyof typeof maxEffort];
  return effort > most ? `effort ${effort} is above ${format.toUpperCase()}'s maximum of ${most}` : undefined;
}

/** An encoded result's size as its encoder reports it, and its bytes unless they went into a file. */
export interface Encoded {
  width: number;
  height: number;
  bytes: number;
  /** The encoded bytes; absent when the sink wrote them into a file. */
  data?: Buffer;
}

/** Where an encoding pipeline (withEncoding's) writes its result: memory, or a file (intoFile). */
export type Sink<E extends Encoded = Encoded> = (pipeline: Sharp) => Promise<E>;

/** The result in memory (to PUT, or to hand back). */
export const intoMemory: Sink<Encoded & { data: Buffer }> = async (pipeline) => {
  const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
  return { data, bytes: data.length, width: info.width, height: info.height };
};

/**
 * The result written by libvips into the file `target`, never half-written (writeInPlace): per 1.3 MP
 * photo 0.5 ms less CPU than the buffer written from JavaScript (docs/performance.md, fifteenth round).
 */
export const intoFile =
  (target: string): Sink =>
  (pipeline) =>
    writeInPlace(target, async (partial) => {
      const info = await pipeline.toFile(partial).catch((error: unknown) => {
        // libvips names the file when writing it failed ("<file>: unable to open for write", "<file>: write error").
        const message = error instanceof Error ? error.message : String(error);
        if (!message.startsWith(`${partial}: `)) throw error;
        const reason = message.slice(partial.length + 2).split('\n').slice(0, 2).join(': ');
        throw new OutputError(`${target}: ${reason}`, { cause: error });
      });
      return { bytes: info.size, width: info.width, height: info.height };
    });

/**
 * `write` makes a file beside `target` (its folder made first), renamed into place once whole and
 * removed if the write fails. The folder and the rename failing are the output's errors (OutputError),
 * whoever `write` is.
 */
export async function writeInPlace<T>(target: string, write: (partial: string) => Promise<T>): Promise<T> {
  const partial = `${target}.partial-${randomBytes(4).toString('hex')}`;
  const outputError = (error: unknown) => {
    throw new OutputError(`${target}: ${(error as Error).message}`, { cause: error });
  };
  await mkdir(path.dirname(target), { recursive: true }).catch(outputError);
  try {
    const written = await write(partial);
    await rename(partial, target).catch(outputError);
    return written;
  } catch (error) {
    // The write's error is the one to report, even when the partial file cannot be removed either (a name too long).
    await rm(partial, { force: true }).catch(() => undefined);
    throw error;
  }
}

/**
 * Encodes raw pixels. JPEG has no alpha channel: transparent images are flattened onto white first.
 * Grey images are written as grey.
 */
export async function encodeImage(image: RawImage, options: EncodeOptions): Promise<Buffer> {
  return encodePipeline(sharp(image.data, rawDescriptor(image)), image, options);
}

/** Encodes what a sharp pipeline yields, e.g. a large image streamed from disk, as encodeImage does. */
export async function encodePipeline(pipeline: Sharp, image: Pick<RawImage, 'channels'>, options: EncodeOptions): Promise<Buffer> {
  return (await withEncoding(pipeline, image, options)).toBuffer();
}

/**
 * The pipeline with encodePipeline's output settings, to run as the caller needs: e.g. toBuffer with
 * resolveWithObject, whose info gives the output's size without reading the encoded header again.
 */
export async function withEncoding(pipeline: Sharp, image: Pick<RawImage, 'channels'>, options: EncodeOptions): Promise<Sharp> {
  const { format, quality, effort } = options;
  if (!(outputFormats as readonly string[]).includes(format)) {
    throw new RangeError(`output format "${format}" is not one of ${outputFormats.join(', ')}`);
  }
  if (quality !== undefined && (!Number.isInteger(quality) || quality < 1 || quality > 100)) {
    throw new RangeError(`quality ${quality} must be an integer from 1 to 100`);
  }
  const refused = effortRefusal(format, effort);
  if (refused) throw new RangeError(refused);
  if (format === 'jpeg' && hasAlpha(image)) pipeline = pipeline.flatten({ background: '#ffffff' });
  if (image.channels <= 2) pipeline = pipeline.toColourspace('b-w');
  return withEncoder(await withMetadataPolicy(pipeline, options), options);
}
