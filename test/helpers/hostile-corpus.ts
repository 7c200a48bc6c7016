import fs from 'node:fs/promises';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { corpus } from './api.js';

/*
 * Hostile and awkward inputs, made in code at test time so no binary fixtures live in the repository.
 * Each maker returns the bytes a client would upload.
 */

export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** A small, lossless crop of a corpus photograph: real pixels at a size that processes in milliseconds. */
export async function photoCrop(name: string, region: Region): Promise<Buffer> {
  return sharp(corpus(name)).extract(region).png({ compressionLevel: 1 }).toBuffer();
}

/** `count` distinct small crops (64-200 px edges) cut from the corpus photographs at varied places. */
export async function smallCrops(count: number): Promise<Array<{ name: string; data: Buffer }>> {
  const photos = ['aqua.jpg', 'dune.jpg', 'freshflower.jpg', 'ladybird.jpg', 'storm.jpg', 'wood.jpg'];
  const sizes = await Promise.all(photos.map(async (photo) => sharp(corpus(photo)).metadata()));
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const photo = i % photos.length;
      const { width, height } = sizes[photo]!;
      const cropWidth = 64 + ((i * 37) % 137);
      const cropHeight = 64 + ((i * 53) % 137);
      const region = { left: (i * 97) % (width - cropWidth), top: (i * 61) % (height - cropHeight), width: cropWidth, height: cropHeight };
      return { name: `crop-${i}.png`, data: await photoCrop(photos[photo]!, region) };
    }),
  );
}

function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A valid-looking PNG whose header declares width x height RGB pixels; its data is 1 KiB of zeros (a decompression bomb's shape). */
export function pngDeclaring(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(Buffer.alloc(1024))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A GIF of a few dozen bytes whose logical screen and only frame declare width x height (at most 65535 each). */
export function gifDeclaring(width: number, height: number): Buffer {
  const size = Buffer.alloc(4);
  size.writeUInt16LE(width, 0);
  size.writeUInt16LE(height, 2);
  return Buffer.concat([
    Buffer.from('GIF89a', 'ascii'),
    size,
    Buffer.from([0x80, 0x00, 0x00]), // global colour table of 2 entries
    Buffer.from([0, 0, 0, 255, 255, 255]),
    Buffer.from([0x2c, 0, 0, 0, 0]), // image descriptor at 0,0 ...
    size, // ... covering the whole screen
    Buffer.from([0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b]), // a 2-byte LZW stream, then the trailer
  ]);
}

/**
 * A 38-byte lossless WebP declaring width x height (at most 16384 each) that really decodes to that
 * size: a flat colour costs no bits per pixel, so a tiny image's stream stays valid with larger
 * dimensions patched into its header.
 */
export async function webpDeclaring(width: number, height: number): Promise<Buffer> {
  const webp = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#336699' } }).webp({ lossless: true, effort: 0 }).toBuffer();
  // VP8L header: the chunk's 8-byte head, a signature byte, then 14 bits width-1, 14 bits height-1, 4 more bits.
  const at = webp.indexOf('VP8L') + 9;
  webp.writeUInt32LE(((webp.readUInt32LE(at) & 0xf0000000) | (width - 1) | ((height - 1) << 14)) >>> 0, at);
  return webp;
}

/**
 * A progressive 4:4:4 JPEG of a few hundred bytes whose frame header (SOF2) declares width x height (at
 * most 65535 each): a 16x16 image's with larger dimensions patched in, so its header reads true.
 */
export async function progressiveJpegDeclaring(width: number, height: number): Promise<Buffer> {
  const jpeg = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#336699' } }).jpeg({ progressive: true, chromaSubsampling: '4:4:4' }).toBuffer();
  // SOF2: the marker, a 2-byte length, the sample precision, then height and width.
  const at = jpeg.indexOf(Buffer.from([0xff, 0xc2])) + 5;
  jpeg.writeUInt16BE(height, at);
  jpeg.writeUInt16BE(width, at + 2);
  return jpeg;
}

/** The first `fraction` of a file's bytes: a download or upload cut short. */
export const truncated = (data: Buffer, fraction: number): Buffer => data.subarray(0, Math.floor(data.length * fraction));

/** A GIF of `frames.length` frames, each a flat colour: only the first frame may show in a result. */
export async function animatedGif(width: number, height: number, frames: Array<[number, number, number]>): Promise<Buffer> {
  const pages = await Promise.all(
    frames.map((background) => sharp({ create: { width, height, channels: 3, background: { r: background[0], g: background[1], b: background[2] } } }).png().toBuffer()),
  );
  return sharp(pages, { join: { animated: true } }).gif({ delay: 100 }).toBuffer();
}

/** The same photograph crop stored as CMYK JPEG (as print workflows produce). */
export async function cmykJpeg(source: Buffer): Promise<Buffer> {
  return sharp(source).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
}

/** The same pixels as a 16-bit-per-channel PNG. */
export async function png16(source: Buffer): Promise<Buffer> {
  return sharp(source).toColourspace('rgb16').png().toBuffer();
}

/** A JPEG stored sideways with EXIF orientation 6 (display rotated 90° clockwise), as phones save them. */
export async function exifRotatedJpeg(source: Buffer): Promise<Buffer> {
  return sharp(source).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
}

/** Bytes of a corpus file. */
export const corpusBytes = (name: string): Promise<Buffer> => fs.readFile(corpus(name));
