import sharp, { type Sharp } from 'sharp';
import type { InputFormat } from './decode.js';
import { hasAlpha, rawDescriptor, type RawImage } from './raw-image.js';

export const outputFormats = ['jpeg', 'png', 'webp', 'tiff', 'avif'] as const;
export type OutputFormat = (typeof outputFormats)[number];

export interface EncodeOptions {
  format: OutputFormat;
  /** 1-100 for the lossy formats (JPEG, WebP, AVIF); PNG and TIFF are lossless and ignore it. */
  quality?: number;
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
function withEncoder(pipeline: Sharp, format: OutputFormat, quality: number | undefined): Sharp {
  switch (format) {
    case 'jpeg':
      return pipeline.jpeg({ quality: quality ?? defaultQuality.jpeg, optimiseCoding: false, chromaSubsampling: '4:2:0' });
    case 'png':
      return pipeline.png({ compressionLevel: 6, adaptiveFiltering: false, palette: false });
    case 'webp':
      return pipeline.webp({ quality: quality ?? defaultQuality.webp, effort: 4 });
    case 'tiff':
      return pipeline.tiff({ compression: 'lzw', predictor: 'horizontal' });
    case 'avif':
      return pipeline.avif({ quality: quality ?? defaultQuality.avif, effort: 2 });
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
  const { format, quality } = options;
  if (!(outputFormats as readonly string[]).includes(format)) {
    throw new RangeError(`output format "${format}" is not one of ${outputFormats.join(', ')}`);
  }
  if (quality !== undefined && (!Number.isInteger(quality) || quality < 1 || quality > 100)) {
    throw new RangeError(`quality ${quality} must be an integer from 1 to 100`);
  }
  if (format === 'jpeg' && hasAlpha(image)) pipeline = pipeline.flatten({ background: '#ffffff' });
  if (image.channels <= 2) pipeline = pipeline.toColourspace('b-w');
  return withEncoder(pipeline, format, quality).toBuffer();
}
