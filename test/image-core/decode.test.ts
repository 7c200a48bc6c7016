import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, InputError, inputErrorFrom, openInput } from '../../services/image-core/decode.js';
import type { RawImage } from '../../services/image-core/raw-image.js';
import { toRawImage } from '../../services/image-core/sharp-raw.js';
import { corpus, meanDifference } from '../helpers/api.js';
import { pngDeclaring } from '../helpers/hostile-corpus.js';

const options = (name: string, maxPixels = 10_000_000) => ({ maxPixels, name });

let dir: string;
let source: RawImage; // a 3-channel crop of a photo
const sourcePipeline = () =>
  sharp(source.data, { raw: { width: source.width, height: source.height, channels: source.channels } });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dips-decode-'));
  source = await toRawImage(sharp(corpus('freshflower.jpg')).extract({ left: 500, top: 300, width: 120, height: 80 }));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function imageDifference(a: RawImage, b: RawImage): number {
  expect([a.width, a.height, a.channels]).toEqual([b.width, b.height, b.channels]);
  return meanDifference(a.data, b.data);
}

async function rejection(promise: Promise<unknown>): Promise<InputError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(InputError);
  return error as InputError;
}

describe('supported formats', () => {
  it.each([
    ['png', true, {}],
    ['tiff', true, { compression: 'lzw' }],
    ['webp', false, {}],
    ['jpeg', false, {}],
    ['avif', false, {}],
    ['gif', false, {}],
  ] as const)('decodes %s to the 8-bit pixels it holds', async (format, lossless, encoderOptions) => {
    const encoded = await sourcePipeline().toFormat(format, encoderOptions).toBuffer();
    const decoded = await decodeImage(encoded, options(`photo.${format}`));
    expect(decoded.format).toBe(format);
    expect([decoded.width, decoded.height, decoded.channels]).toEqual([source.width, source.height, 3]);
    if (lossless) expect(decoded.data.equals(source.data)).toBe(true);
    else expect(imageDifference(decoded, source)).toBeLessThan(format === 'gif' ? 12 : 6);
  });

  it('decodes from a file path as from a buffer', async () => {
    const path = join(dir, 'photo.png');
    await sourcePipeline().png().toFile(path);
    expect((await decodeImage(path, options('photo.png'))).data.equals(source.data)).toBe(true);
  });
});

describe('normalisation to upright 8-bit sRGB', () => {
  it('applies the EXIF orientation and reports the upright size', async () => {
    const rotatedTag = await sourcePipeline().jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const opened = await openInput(rotatedTag, options('rotated.jpg'));
    expect([opened.width, opened.height]).toEqual([source.height, source.width]);
    const decoded = await decodeImage(rotatedTag, options('rotated.jpg'));
    // Orientation 6 means "rotate 90° clockwise to display"; compare with the stored pixels turned so.
    const stored = await toRawImage(sharp(rotatedTag, { autoOrient: false }).rotate(90));
    expect(decoded.data.equals(stored.data)).toBe(true);
  });

  it('converts CMYK to sRGB', async () => {
    const cmyk = await sourcePipeline().toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
    const decoded = await decodeImage(cmyk, options('cmyk.jpg'));
    expect(decoded.channels).toBe(3);
    expect(imageDifference(decoded, source)).toBeLessThan(12);
  });

  it('scales 16-bit samples to 8 bits instead of clipping them', async () => {
    const deep = await sourcePipeline().toColourspace('rgb16').png().toBuffer();
    expect((await sharp(deep).metadata()).depth).toBe('ushort');
    const decoded = await decodeImage(deep, options('deep.png'));
    expect(decoded.channels).toBe(3);
    expect(imageDifference(decoded, source)).toBeLessThan(1);
  });

  it('keeps one channel for grey images', async () => {
    const grey = await sourcePipeline().toColourspace('b-w').png().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const decoded = await decodeImage(grey, options('grey.png'));
    expect(decoded.channels).toBe(1);
    expect(decoded.data.equals((await toRawImage(sharp(grey).extractChannel(0))).data)).toBe(true);
  });

  it('keeps alpha, and reads grey + alpha as sRGB + alpha', async () => {
    const alpha = Buffer.from(Array.from({ length: source.width * source.height }, (_, i) => (i * 7) % 256));
    const rgba = await sourcePipeline().joinChannel(alpha, { raw: { width: source.width, height: source.height, channels: 1 } }).png().toBuffer();
    const decoded = await decodeImage(rgba, options('rgba.png'));
    expect(decoded.channels).toBe(4);
    for (let p = 0; p < alpha.length; p += 17) expect(decoded.data[p * 4 + 3]).toBe(alpha[p]);

    const greyAlpha = await sharp(rgba).toColourspace('b-w').png().toBuffer();
    expect((await sharp(greyAlpha).metadata()).channels).toBe(2);
    const opened = await openInput(greyAlpha, options('grey-alpha.png'));
    const decodedGrey = await decodeImage(greyAlpha, options('grey-alpha.png'));
    expect([opened.channels, decodedGrey.channels]).toEqual([4, 4]);
    for (let p = 0; p < alpha.length; p += 17) {
      expect(decodedGrey.data[p * 4 + 3]).toBe(alpha[p]);
      expect(decodedGrey.data[p * 4]).toBe(decodedGrey.data[p * 4 + 2]);
    }
  });

  it('takes the first frame of an animated GIF', async () => {
    const frame = (colour: string) => sharp({ create: { width: 30, height: 20, channels: 3, background: colour } }).png().toBuffer();
    const animated = await sharp([await frame('#ff0000'), await frame('#0000ff')], { join: { animated: true } }).gif().toBuffer();
    expect((await sharp(animated).metadata()).pages).toBe(2);
    const decoded = await decodeImage(animated, options('animated.gif'));
    expect([decoded.width, decoded.height]).toEqual([30, 20]);
    expect([...decoded.data.subarray(0, 3)]).toEqual([255, 0, 0]);
  });

  it('strips metadata from what the pipeline writes', async () => {
    const tagged = await sourcePipeline().jpeg().withMetadata({ orientation: 3 }).toBuffer();
    expect((await sharp(tagged).metadata()).exif).toBeDefined();
    const { pipeline } = await openInput(tagged, options('tagged.jpg'));
    const written = await sharp(await pipeline.jpeg().toBuffer()).metadata();
    expect(written.exif).toBeUndefined();
    expect(written.orientation).toBeUndefined();
  });
});

describe('bad input', () => {
  it('rejects an image larger than maxPixels before decoding it', async () => {
    const encoded = await sourcePipeline().png().toBuffer();
    const error = await rejection(openInput(encoded, options('big.png', source.width * source.height - 1)));
    expect(error.code).toBe('too_many_pixels');
    expect(error.message).toContain('big.png');
    expect(error.message).toContain(`${source.width}x${source.height}`);
    await expect(openInput(encoded, options('big.png', source.width * source.height))).resolves.toBeDefined();
  });

  it('refuses, from its header, a decode that holds more than a worker has; the same pixels saved baseline pass', async () => {
    const crop = sharp(corpus('freshflower.jpg')).extract({ left: 0, top: 0, width: 600, height: 400 });
    const progressive = await crop.clone().jpeg({ progressive: true, chromaSubsampling: '4:4:4' }).toBuffer();
    const baseline = await crop.clone().jpeg({ chromaSubsampling: '4:4:4' }).toBuffer();
    const worker = { ...options('wide.jpg'), maxDecodeBytes: 2 ** 20 };
    const error = await rejection(openInput(progressive, worker));
    expect(error.code).toBe('too_many_pixels');
    expect(error.message).toBe('wide.jpg: decoding a progressive JPEG of 600x400 holds about 2 MiB at once, more than the 1 MiB a worker has (DIPS_WORKER_MEMORY_BYTES); a baseline (sequential) JPEG decodes row by row');
    await expect(openInput(baseline, worker)).resolves.toMatchObject({ progressive: false, frameBytes: 0 });
    // `dips process` sets no such bound: the machine it runs on is the user's.
    await expect(openInput(progressive, options('wide.jpg'))).resolves.toMatchObject({ progressive: true, frameBytes: 600 * 400 * 6 });
  });

  it('refuses a JPEG turned whole by its EXIF orientation that would hold more than a worker has; upright or mirrored it streams', async () => {
    const crop = sharp(corpus('freshflower.jpg')).extract({ left: 0, top: 0, width: 1200, height: 800 });
    const tagged = (orientation: number) => crop.clone().jpeg().withMetadata({ orientation }).toBuffer();
    const worker = { ...options('turned.jpg'), maxDecodeBytes: 2 * 2 ** 20 };
    const error = await rejection(openInput(await tagged(6), worker));
    expect(error.code).toBe('too_many_pixels');
    expect(error.message).toBe('turned.jpg: decoding JPEG of 800x1200 turned by its EXIF orientation 6 holds about 3 MiB at once, more than the 2 MiB a worker has (DIPS_WORKER_MEMORY_BYTES); saved upright it decodes row by row');
    await expect(openInput(await tagged(1), worker)).resolves.toMatchObject({ turned: false, frameBytes: 0 });
    await expect(openInput(await tagged(2), worker)).resolves.toMatchObject({ turned: false, frameBytes: 0 });
  });

  it('rejects a decompression bomb from its header alone', async () => {
    const bomb = pngDeclaring(100_000, 100_000);
    expect(bomb.length).toBeLessThan(1000);
    const error = await rejection(decodeImage(bomb, options('bomb.png', 100_000_000)));
    expect(error.code).toBe('too_many_pixels');
    expect(error.message).toMatch(/bomb\.png: 100000x100000/);
  });

  it('rejects data that is not an image, and formats it does not support', async () => {
    const text = await rejection(decodeImage(Buffer.from('hello, not an image'), options('notes.txt')));
    expect([text.code, text.message]).toEqual(['unsupported_format', expect.stringContaining('notes.txt')]);
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    const vector = await rejection(decodeImage(svg, options('drawing.svg')));
    expect(vector.code).toBe('unsupported_format');
    expect(vector.message).toMatch(/drawing\.svg: svg images are not supported/);
  });

  it('reports a truncated image as corrupt, naming the file', async () => {
    const encoded = await sourcePipeline().jpeg().toBuffer();
    const error = await rejection(decodeImage(encoded.subarray(0, Math.floor(encoded.length / 2)), options('cut.jpg')));
    expect(error.code).toBe('corrupt_image');
    expect(error.message).toMatch(/^cut\.jpg: /);
  });

  it('reports an empty file, and a header cut short, in one line', async () => {
    const empty = await rejection(decodeImage(Buffer.alloc(0), options('empty.png')));
    expect([empty.code, empty.message]).toEqual(['corrupt_image', 'empty.png: the file is empty']);
    const cut = await rejection(decodeImage(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]), options('stub.jpg')));
    expect(cut.code).toBe('corrupt_image');
    expect(cut.message).toMatch(/^stub\.jpg: cannot decode the image \(.*\)$/);
    expect(cut.message).not.toContain('\n');
  });

  it('reports a missing file', async () => {
    const error = await rejection(decodeImage(join(dir, 'nowhere.png'), options('nowhere.png')));
    expect(error.code).toBe('missing_file');
    expect(error.message).toContain('nowhere.png');
  });
});

describe('writing a decoded image straight to a file', () => {
  it('openInput yields a plain sharp pipeline with the size and channels it announced', async () => {
    const path = join(dir, 'out.png');
    const rotated = await sourcePipeline().webp({ lossless: true }).withMetadata({ orientation: 8 }).toBuffer();
    const opened = await openInput(rotated, options('photo.webp'));
    const info = await opened.pipeline.png().toFile(path);
    expect([info.width, info.height, info.channels]).toEqual([opened.width, opened.height, opened.channels]);
    expect((await decodeImage(path, options('out.png'))).data.equals((await decodeImage(rotated, options('photo.webp'))).data)).toBe(true);
  });
});

describe('decode failures', () => {
  // libvips' error buffer is shared by the process: a JPEG failing beside a PNG can be handed the PNG's complaint.
  it("keeps libvips' words for the file's own format, and gives another format's complaint as a generic reason", () => {
    const failure = (message: string, format: 'jpeg' | 'png') => inputErrorFrom(new Error(message), `cut.${format === 'jpeg' ? 'jpg' : 'png'}`, format).message;
    expect(failure('VipsJpeg: Premature end of JPEG file\nVipsJpeg: out of order read', 'jpeg')).toBe('cut.jpg: cannot decode the image (VipsJpeg: Premature end of JPEG file)');
    expect(failure('vipspng: libpng read error', 'jpeg')).toBe('cut.jpg: cannot decode the image (the data is truncated or corrupt)');
    expect(failure('vipspng: libpng read error', 'png')).toBe('cut.png: cannot decode the image (vipspng: libpng read error)');
    expect(failure('VipsJpeg: Premature end of JPEG file', 'png')).toBe('cut.png: cannot decode the image (the data is truncated or corrupt)');
    expect(inputErrorFrom(new Error('vipspng: libpng read error'), 'cut.jpg').message).toBe('cut.jpg: cannot decode the image (vipspng: libpng read error)');
  });
});
