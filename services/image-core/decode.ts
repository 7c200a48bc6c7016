import sharp, { type Metadata, type Sharp } from 'sharp';
import { InputError, type InputErrorCode } from './errors.js';
import type { Channels, RawImage } from './raw-image.js';
import { toRawImage } from './sharp-raw.js';

const inputFormats = ['jpeg', 'png', 'webp', 'tiff', 'avif', 'gif'] as const;
export type InputFormat = (typeof inputFormats)[number];

export { InputError, type InputErrorCode };

export interface DecodeOptions {
  /** Largest accepted width × height, checked from the header before any pixel is decoded. */
  maxPixels: number;
  /** The file's name as the user knows it, for error messages. */
  name: string;
  /**
   * The most a decode may hold (OpenedInput.frameBytes): a worker's memory (DIPS_WORKER_MEMORY_BYTES).
   * A larger one is refused from the header, as no worker could decode it; none for `dips process`.
   */
  maxDecodeBytes?: number;
}

export interface OpenedInput {
  /** A sharp pipeline yielding the upright, 8-bit sRGB (or grey) first frame, alpha kept, no metadata. */
  pipeline: Sharp;
  /** Size after EXIF orientation is applied. */
  width: number;
  height: number;
  /** Channels the pipeline yields: 1 grey, 3 sRGB, 4 sRGB+alpha (grey with alpha included). */
  channels: Channels;
  format: InputFormat;
  /**
   * The file already holds upright 8-bit sRGB (or grey) without an ICC profile, so the pipeline's
   * conversions change nothing and sharp operations may be added to it with the same result as on the
   * decoded pixels (the fusion in process-image.ts).
   */
  plain: boolean;
  /**
   * A progressive JPEG or an Adam7-interlaced PNG (sharp's isProgressive reports both): libvips decodes
   * all of it before it yields the first row, so decoding only the top rows costs a whole decode.
   */
  progressive: boolean;
  /**
   * The file's EXIF orientation is a half or quarter turn or a vertical flip (3-8): libvips turns the
   * decoded frame whole in memory, so its first upright row, as a progressive file's, comes only after
   * the whole decode. (2, a mirror, turns row by row.)
   */
  turned: boolean;
  /**
   * Memory the decode itself holds beyond the rows it streams (decodeHoldBytes): a whole frame's for GIF,
   * WebP, AVIF, interlaced PNG and a turned file, the coefficients of a progressive JPEG, nothing for the rest.
   */
  frameBytes: number;
}

function formatOf(metadata: Metadata): InputFormat | undefined {
  if (metadata.format === 'heif') return metadata.compression === 'av1' ? 'avif' : undefined;
  return (inputFormats as readonly string[]).includes(metadata.format) ? (metadata.format as InputFormat) : undefined;
}

/** The words libvips' loaders sign their complaints with (vipsjpeg, pngload, VipsForeignLoadTiff...). */
const loaderWords: Record<InputFormat, RegExp> = {
  jpeg: /\b(vips)?jpeg|jpegload|ForeignLoadJpeg/i,
  png: /\b(vips)?s?png|pngload|ForeignLoadPng/i,
  webp: /webp/i,
  tiff: /tiff/i,
  avif: /heif|avif/i,
  gif: /\bgif|gifload|ForeignLoadGif/i,
};

/**
 * Turns what sharp throws while reading an input into an InputError naming the file. `format`, when the
 * header was read: a complaint signed by another format's loader is another decode's.
 */
export function inputErrorFrom(error: unknown, name: string, format?: InputFormat): InputError {
  if (error instanceof InputError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  if (/unsupported image format/i.test(reason)) {
    return new InputError('unsupported_format', `${name}: not an image in a supported format (${inputFormats.join(', ')})`);
  }
  if (/input file is missing/i.test(reason)) return new InputError('missing_file', `${name}: file not found`);
  if (/pixel limit/i.test(reason)) return new InputError('too_many_pixels', `${name}: ${reason}`);
  if (/buffer is empty/i.test(reason)) return new InputError('corrupt_image', `${name}: the file is empty`);
  // libvips repeats its decoder's complaints line after line; the first says what is wrong. Its error
  // buffer is shared by the whole process, so with several decodes failing at once the detail can be
  // gone and only the generic fail-on line is left, or be another decode's (signed by another format's
  // loader): then say what the failure means.
  const detail = reason.trim().split('\n')[0]!;
  const foreign = format !== undefined && inputFormats.some((other) => other !== format && loaderWords[other].test(detail) && !loaderWords[format].test(detail));
  const described = foreign || /warning treated as error/i.test(detail) ? 'the data is truncated or corrupt' : detail;
  return new InputError('corrupt_image', `${name}: cannot decode the image (${described})`);
}

/**
 * libvips decodes GIF, WebP and AVIF frames whole instead of streaming rows, so a tiny file declaring
 * a large frame takes the whole frame's memory: a 38-byte lossless WebP declaring 12000x10000 peaks at
 * 1 GB while decoding, a 2 kB AVIF at 2.2 GB. These formats get a lower limit (25 MP: 6000x4000 photos
 * still pass, decoding peaks at about 270 MB for WebP and 540 MB for AVIF).
 */
const maxWholeFramePixels = 25_000_000;
export const decodedWhole: ReadonlySet<InputFormat> = new Set(['gif', 'webp', 'avif']);
/**
 * Bytes per pixel a whole-frame decode takes, measured on 25 MP of noise decoded and inverted, over a bare
 * process (GIF 211 MiB, WebP 262, AVIF 461); a worker lends them from its memory gate like a whole stage.
 */
const wholeFrameDecodeBytesPerPixel: Readonly<Partial<Record<InputFormat, number>>> = { gif: 9, webp: 11, avif: 20 };

/** EXIF orientations that libvips turns whole in memory (OpenedInput.turned). */
const turnsWhole = (metadata: Metadata): boolean => (metadata.orientation ?? 1) >= 3;

/**
 * What a decode holds beyond the rows it streams. A progressive JPEG's decoder keeps every DCT coefficient
 * (2 bytes each) until its last scan has arrived: one per pixel for the first component, and for each
 * other one a half where chroma is subsampled (sharp names 4:2:2 and 4:4:0 "4:2:0" too, which keep a half)
 * or a whole one where it is not. An interlaced PNG is decoded into a whole frame, since Adam7's passes
 * fill it. Measured at 25 MP, the peak of a blur over the same file saved sequential: 4:2:0 JPEG 2.8
 * bytes per pixel (counted 4), 4:4:4 5.8 (6), 8-bit PNG 2.6 (3), 16-bit 5.2 (6). A turned file (EXIF
 * orientation 3-8) adds its decoded frame, which libvips turns in memory: at 12 MP, orientations 3-8 of a
 * baseline JPEG 35.0-36.1 MB over orientations 1 and 2 (counted 36.0), a 16-bit PNG 58 (72), a progressive
 * JPEG 71 over the same photo baseline and upright (84).
 */
function decodeHoldBytes(metadata: Metadata, format: InputFormat, pixels: number): number {
  const channels = metadata.channels ?? 4;
  const frame = pixels * channels * (metadata.depth === 'ushort' ? 2 : 1);
  const turning = turnsWhole(metadata) ? frame : 0;
  if (metadata.isProgressive && format === 'jpeg') {
    const others = metadata.chromaSubsampling?.startsWith('4:4:4') ? 1 : 0.5;
    return pixels * 2 * (1 + (channels - 1) * others) + turning;
  }
  if (metadata.isProgressive && format === 'png') return frame + turning;
  return pixels * (wholeFrameDecodeBytesPerPixel[format] ?? 0) + turning;
}

/**
 * Reads the header of an image and returns a pipeline that decodes it. Images whose declared size
 * exceeds maxPixels (or maxWholeFramePixels for formats decoded whole) are rejected here, before a
 * single pixel is decoded (decompression bombs).
 */
export async function openInput(input: Buffer | string, options: DecodeOptions): Promise<OpenedInput> {
  const { maxPixels, name } = options;
  let metadata: Metadata;
  try {
    metadata = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw inputErrorFrom(error, name);
  }
  const format = formatOf(metadata);
  if (!format) {
    const found = metadata.format === 'heif' ? `HEIF/${metadata.compression ?? 'unknown'}` : metadata.format;
    throw new InputError('unsupported_format', `${name}: ${found} images are not supported; use ${inputFormats.join(', ')}`);
  }
  const { width, height } = metadata.autoOrient;
  if (!width || !height) throw new InputError('corrupt_image', `${name}: the header declares no image size`);
  const limit = decodedWhole.has(format) ? Math.min(maxPixels, maxWholeFramePixels) : maxPixels;
  if (width * height > limit) {
    const why = limit < maxPixels ? ` for ${format.toUpperCase()}, which is decoded whole in memory` : '';
    throw new InputError(
      'too_many_pixels',
      `${name}: ${width}x${height} is ${width * height} pixels; at most ${limit} are accepted${why}`,
    );
  }
  // Grey with alpha is read as sRGB + alpha: sharp's raw output cannot carry grey + alpha.
  const grey = (metadata.space === 'b-w' || metadata.space === 'grey16') && !metadata.hasAlpha;
  const pipeline = sharp(input, { limitInputPixels: maxPixels, page: 0, pages: 1 })
    .autoOrient()
    // 16-bit and CMYK inputs come out as 8-bit sRGB (or grey), scaled rather than clipped.
    .toColourspace(grey ? 'b-w' : 'srgb');
  const plain =
    metadata.depth === 'uchar' &&
    !metadata.hasProfile &&
    (metadata.orientation ?? 1) === 1 &&
    (metadata.space === 'srgb' || metadata.space === 'b-w') &&
    (metadata.pages ?? 1) === 1;
  const progressive = metadata.isProgressive === true;
  const turned = turnsWhole(metadata);
  const frameBytes = decodeHoldBytes(metadata, format, width * height);
  if (options.maxDecodeBytes !== undefined && frameBytes > options.maxDecodeBytes) {
    const kind = progressive ? (format === 'jpeg' ? 'a progressive JPEG' : 'an interlaced PNG') : format.toUpperCase();
    const rotation = turned ? ` turned by its EXIF orientation ${metadata.orientation}` : '';
    const instead = progressive ? (format === 'jpeg' ? '; a baseline (sequential) JPEG decodes row by row' : '; a non-interlaced PNG decodes row by row') : turned ? '; saved upright it decodes row by row' : '';
    throw new InputError(
      'too_many_pixels',
      `${name}: decoding ${kind} of ${width}x${height}${rotation} holds about ${Math.ceil(frameBytes / 2 ** 20)} MiB at once, more than the ${Math.floor(options.maxDecodeBytes / 2 ** 20)} MiB a worker has (DIPS_WORKER_MEMORY_BYTES)${instead}`,
    );
  }
  return { pipeline, width, height, channels: grey ? 1 : metadata.hasAlpha ? 4 : 3, format, plain, progressive, turned, frameBytes };
}

/**
 * Decodes a whole image to raw pixels (upright, 8-bit, first frame, alpha kept), as openInput describes;
 * `opened` when the caller has read the header already (its pipeline is then used up).
 */
export async function decodeImage(input: Buffer | string, options: DecodeOptions & { opened?: OpenedInput }): Promise<RawImage & { format: InputFormat }> {
  const { pipeline, format } = options.opened ?? (await openInput(input, options));
  try {
    return { ...(await toRawImage(pipeline)), format };
  } catch (error) {
    throw inputErrorFrom(error, options.name, format);
  }
}
