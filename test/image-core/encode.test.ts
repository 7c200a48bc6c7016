import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../services/image-core/decode.js';
import { contentTypeFor, encodeImage, extensionFor, outputFormatFor } from '../../services/image-core/encode.js';
import { outputFormats } from '../../services/protocol/output.js';
import type { RawImage } from '../../services/image-core/raw-image.js';
import { toRawImage } from '../../services/image-core/sharp-raw.js';
import { corpus, meanDifference } from '../helpers/api.js';

let photo: RawImage;
let withAlpha: RawImage;
let grey: RawImage;

beforeAll(async () => {
  photo = await toRawImage(sharp(corpus('storm.jpg')).extract({ left: 300, top: 200, width: 160, height: 120 }));
  withAlpha = { ...photo, channels: 4, data: Buffer.alloc(photo.width * photo.height * 4) };
  for (let p = 0; p < photo.width * photo.height; p++) {
    photo.data.copy(withAlpha.data, p * 4, p * 3, p * 3 + 3);
    withAlpha.data[p * 4 + 3] = p % photo.width < photo.width / 2 ? 0 : 255; // left half transparent
  }
  grey = { ...photo, channels: 1, data: Buffer.from(photo.data.filter((_, i) => i % 3 === 1)) };
});

const decode = (encoded: Buffer) => decodeImage(encoded, { maxPixels: 1_000_000, name: 'encoded' });

describe('encodeImage', () => {
  it.each(outputFormats)('writes %s that decodes to the same size with the right signature', async (format) => {
    const encoded = await encodeImage(photo, { format });
    const metadata = await sharp(encoded).metadata();
    expect(metadata.format === 'heif' ? 'avif' : metadata.format).toBe(format);
    expect([metadata.width, metadata.height]).toEqual([photo.width, photo.height]);
  });

  it.each(['png', 'tiff'] as const)('%s is lossless, alpha included', async (format) => {
    expect((await decode(await encodeImage(photo, { format }))).data.equals(photo.data)).toBe(true);
    expect((await decode(await encodeImage(withAlpha, { format }))).data.equals(withAlpha.data)).toBe(true);
  });

  it.each(['jpeg', 'webp', 'avif'] as const)('%s quality trades size for fidelity', async (format) => {
    const low = await encodeImage(photo, { format, quality: 20 });
    const high = await encodeImage(photo, { format, quality: 95 });
    expect(low.length).toBeLessThan(high.length);
    const error = async (encoded: Buffer) => meanDifference((await decode(encoded)).data, photo.data);
    expect(await error(high)).toBeLessThan(await error(low));
    expect(await error(high)).toBeLessThan(3);
  });

  it('JPEG flattens transparency onto white', async () => {
    const decoded = await decode(await encodeImage(withAlpha, { format: 'jpeg', quality: 95 }));
    expect(decoded.channels).toBe(3);
    const at = (x: number, y: number) => [...decoded.data.subarray((y * photo.width + x) * 3, (y * photo.width + x) * 3 + 3)];
    for (const value of at(20, 60)) expect(value).toBeGreaterThan(245);
    const right = (60 * photo.width + 140) * 3;
    expect(Math.abs(at(140, 60)[0] - photo.data[right])).toBeLessThan(12);
  });

  it('writes grey images as grey', async () => {
    const encoded = await encodeImage(grey, { format: 'png' });
    expect((await sharp(encoded).metadata()).channels).toBe(1);
    expect((await decode(encoded)).data.equals(grey.data)).toBe(true);
  });

  it('rejects a quality outside 1-100 and an unknown format, naming them', async () => {
    await expect(encodeImage(photo, { format: 'jpeg', quality: 0 })).rejects.toThrow(/quality 0 must be an integer from 1 to 100/);
    await expect(encodeImage(photo, { format: 'jpeg', quality: 50.5 })).rejects.toThrow(/quality 50.5/);
    await expect(encodeImage(photo, { format: 'bmp' as never })).rejects.toThrow(/output format "bmp" is not one of jpeg, png/);
  });
});

describe('format names', () => {
  it('maps every output format to its content type and file extension', () => {
    for (const format of outputFormats) {
      expect(contentTypeFor(format)).toBe(`image/${format}`);
      expect(extensionFor(format)).toBe(format === 'jpeg' ? 'jpg' : format);
    }
  });

  it('defaults to the input format, and GIF input to PNG', () => {
    for (const format of outputFormats) expect(outputFormatFor(format)).toBe(format);
    expect(outputFormatFor('gif')).toBe('png');
  });
});
