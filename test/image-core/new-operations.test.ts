import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { thumbHashToApproximateAspectRatio } from 'thumbhash';
import { beforeAll, describe, expect, it } from 'vitest';
import { findOperation } from '../../services/image-core/catalogue.js';
import { decodeImage } from '../../services/image-core/decode.js';
import { encodeImage } from '../../services/image-core/encode.js';
import type { StepContext } from '../../services/image-core/operation.js';
import { hammingDistance } from '../../services/image-core/perceptual-hash.js';
import { extractRect } from '../../services/image-core/pixel-move.js';
import type { RawImage } from '../../services/image-core/raw-image.js';
import { corpus } from '../helpers/api.js';

const decode = (input: string | Buffer) => decodeImage(input, { maxPixels: 50_000_000, name: 'test' });

async function run(image: RawImage, op: string, params: Record<string, unknown> = {}, context: StepContext = {}) {
  const declaration = findOperation(op)!;
  let annotation: unknown;
  const out = await declaration.apply(image, declaration.params.parse(params), { ...context, annotate: (v) => (annotation = v) });
  return { image: out, annotation };
}
const hashOf = async (input: string | Buffer) => (await run(await decode(input), 'phash')).annotation as string;
const digest = (image: RawImage) => createHash('sha256').update(image.data).digest('hex');
const watermark = `data:image/png;base64,${readFileSync(join(import.meta.dirname, '../fixtures/watermark.png')).toString('base64')}`;

let photo: RawImage;
beforeAll(async () => {
  photo = extractRect(await decode(corpus('ladybird.jpg')), { x: 300, y: 200, width: 400, height: 300 });
});

describe('phash', () => {
  const photos = ['aqua.jpg', 'dune.jpg', 'freshflower.jpg', 'ladybird.jpg', 'storm.jpg', 'wood.jpg'];
  it('is 16 hex digits, a few bits apart for re-encoded and resized copies, far apart for different photos', async () => {
    const hashes = await Promise.all(photos.map((name) => hashOf(corpus(name))));
    for (const hash of hashes) expect(hash).toMatch(/^[0-9a-f]{16}$/);
    for (const [i, name] of photos.entries()) {
      const reencoded = await sharp(corpus(name)).jpeg({ quality: 40 }).toBuffer();
      const resized = await sharp(corpus(name)).resize({ width: 700 }).png().toBuffer();
      expect(hammingDistance(hashes[i]!, await hashOf(reencoded))).toBeLessThanOrEqual(8);
      expect(hammingDistance(hashes[i]!, await hashOf(resized))).toBeLessThanOrEqual(8);
      for (const other of hashes.slice(i + 1)) expect(hammingDistance(hashes[i]!, other)).toBeGreaterThanOrEqual(16);
    }
  });
});

describe('thumbhash and metadata', () => {
  it('thumbhash decodes to the aspect ratio of the image; pixels untouched', async () => {
    const { image, annotation } = await run(photo, 'thumbhash');
    expect(image).toBe(photo);
    const ratio = thumbHashToApproximateAspectRatio(Buffer.from(annotation as string, 'base64'));
    expect(Math.abs(ratio - 400 / 300)).toBeLessThan(0.1); // ThumbHash stores the ratio coarsely
  });

  it('metadata flags GPS, names the ICC profile and lists EXIF tags', async () => {
    const file = await sharp(corpus('aqua.jpg'))
      .resize(64)
      .withIccProfile('p3')
      .withExif({ IFD0: { Make: 'DIPS' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1', GPSLongitudeRef: 'W', GPSLongitude: '0/1 7/1 30/1' } })
      .jpeg()
      .toBuffer();
    const { annotation } = await run(await decode(file), 'metadata', {}, { source: file });
    expect(annotation).toMatchObject({ format: 'jpeg', width: 64, gps: true, location: { latitude: 51.5, longitude: -0.125 }, exif: { Image: { Make: 'DIPS' } } });
    expect((annotation as { iccProfile: string }).iccProfile).toBeTruthy();
  });
});

describe('composite and text', () => {
  it('blends the watermark where its gravity puts it, leaves other pixels alone, same bytes on a repeat run', async () => {
    const params = { image: watermark, gravity: 'southeast', margin: 10, opacity: 1 };
    const first = (await run(photo, 'composite', params)).image;
    expect(digest((await run(photo, 'composite', params)).image)).toBe(digest(first));
    const changed = (x: number, y: number) => [0, 1, 2].some((c) => first.data[(y * 400 + x) * 3 + c] !== photo.data[(y * 400 + x) * 3 + c]);
    expect(changed(10, 10)).toBe(false);
    // The watermark's opaque yellow triangle: at overlay (62, 30), i.e. image (400-10-90+62, 300-10-54+30).
    const at = ((236 + 30) * 400 + 300 + 62) * 3;
    expect([...first.data.subarray(at, at + 3)]).toEqual([255, 208, 0]);
  });

  it('a tile that knows where it lies gets the pixels of the whole run', async () => {
    const params = { image: watermark, tile: true, opacity: 0.6 };
    const whole = (await run(photo, 'composite', params)).image;
    const region = { x: 130, y: 70, width: 111, height: 97 };
    const tile = (await run(extractRect(photo, region), 'composite', params, { region, imageSize: photo })).image;
    expect(digest(tile)).toBe(digest(extractRect(whole, region)));
  });

  it('text renders the same pixels on every run and machine (fonts ship with DIPS), grey stays grey', async () => {
    const params = { text: 'DIPS ©\nÄrger', size: 40, font: 'sans-bold', colour: '#ffcc00', gravity: 'northwest' };
    const first = (await run(photo, 'text', params)).image;
    expect(digest((await run(photo, 'text', params)).image)).toBe(digest(first));
    expect(digest(first)).not.toBe(digest(photo));
    const grey = { ...photo, channels: 1 as const, data: Buffer.alloc(400 * 300, 30) };
    const onGrey = (await run(grey, 'text', params)).image;
    expect(onGrey.channels).toBe(1);
    expect(Math.max(...onGrey.data)).toBeGreaterThan(150);
  });
});

describe('smartcrop, trim, extend', () => {
  it('smartcrop keeps a saturated subject on a plain background', async () => {
    const background = await sharp({ create: { width: 900, height: 300, channels: 3, background: '#777777' } }).png().toBuffer();
    const subject = await sharp(corpus('ladybird.jpg')).extract({ left: 560, top: 330, width: 200, height: 200 }).toBuffer();
    const scene = await decode(await sharp(background).composite([{ input: subject, left: 680, top: 50 }]).png().toBuffer());
    const { image } = await run(scene, 'smartcrop', { width: 300, height: 300 });
    expect([image.width, image.height]).toEqual([300, 300]);
    // The subject is the only colourful thing in the scene: nearly all of its colourful pixels survive.
    const colourful = (img: RawImage) => {
      let count = 0;
      for (let i = 0; i < img.data.length; i += 3) {
        const [r, g, b] = [img.data[i]!, img.data[i + 1]!, img.data[i + 2]!];
        if (Math.max(r, g, b) - Math.min(r, g, b) > 40) count += 1;
      }
      return count;
    };
    const inSubject = colourful(extractRect(scene, { x: 680, y: 50, width: 200, height: 200 }));
    expect(inSubject).toBeGreaterThan(5000);
    expect(colourful(image)).toBeGreaterThan(0.9 * inSubject);
  });

  it('extend pads with the colour and trim takes it off again, keeping a margin', async () => {
    const padded = (await run(photo, 'extend', { top: 7, right: 13, bottom: 5, left: 21, colour: '#ffffff' })).image;
    expect([padded.width, padded.height]).toEqual([434, 312]);
    expect([...padded.data.subarray(0, 3)]).toEqual([255, 255, 255]);
    expect(digest(extractRect(padded, { x: 21, y: 7, width: 400, height: 300 }))).toBe(digest(photo));
    const trimmed = (await run(padded, 'trim', { threshold: 0 })).image;
    expect(digest(trimmed)).toBe(digest(photo));
    const withMargin = (await run(padded, 'trim', { threshold: 0, margin: 4 })).image;
    expect([withMargin.width, withMargin.height]).toEqual([408, 308]);
  });
});

describe('output options', () => {
  it('keeps ICC and EXIF without GPS when asked, strips by default; progressive, 4:4:4, lossless WebP', async () => {
    const source = await sharp(corpus('aqua.jpg'))
      .resize(64)
      .withIccProfile('p3')
      .withExif({ IFD0: { Make: 'DIPS' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1' } })
      .jpeg()
      .toBuffer();
    const image = await decode(source);
    const stripped = await sharp(await encodeImage(image, { format: 'jpeg', source })).metadata();
    expect([stripped.icc, stripped.exif]).toEqual([undefined, undefined]);
    const icc = await sharp(await encodeImage(image, { format: 'jpeg', metadata: 'icc', source })).metadata();
    expect(icc.icc?.equals((await sharp(source).metadata()).icc!)).toBe(true);
    expect(icc.exif).toBeUndefined();
    const exifOut = await encodeImage(image, { format: 'jpeg', metadata: 'exif', source });
    const { exif } = await run(await decode(exifOut), 'metadata', {}, { source: exifOut }).then((r) => ({ exif: r.annotation as { gps: boolean; exif: { Image: { Make: string } } } }));
    expect(exif.gps).toBe(false);
    expect(exif.exif.Image.Make).toBe('DIPS');
    const jpeg = await sharp(await encodeImage(photo, { format: 'jpeg', progressive: true, chromaSubsampling: '4:4:4' })).metadata();
    expect([jpeg.isProgressive, jpeg.chromaSubsampling]).toEqual([true, '4:4:4']);
    const lossless = await decode(await encodeImage(photo, { format: 'webp', lossless: true }));
    expect(digest(lossless)).toBe(digest(photo));
    await expect(encodeImage(photo, { format: 'webp', effort: 9 })).rejects.toThrow(/maximum of 6/);
  });
});
