import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeOperations, findOperation } from '../../services/image-core/catalogue.js';
import { decodeImage } from '../../services/image-core/decode.js';
import { extractRect } from '../../services/image-core/pixel-move.js';
import { rawDescriptor, type RawImage } from '../../services/image-core/raw-image.js';
import { toRawImage } from '../../services/image-core/sharp-raw.js';
import { canny } from '../../services/image-core/operations/edges.js';
import { greyChannel, toGrey } from '../../services/image-core/operations/grayscale.js';
import { greyHistogram, otsuThreshold } from '../../services/image-core/operations/threshold.js';
import { corpus } from '../helpers/api.js';

let fullPhoto: RawImage; // the whole 1400x875 photo
let photo: RawImage; // 3 channels, a crop
let grey: RawImage; // 1 channel
let withAlpha: RawImage; // 4 channels, alpha varying
let greyAlpha: RawImage; // 2 channels

/** An image made of one channel of `from` per entry of `channels` (a source channel index). */
function pickChannels(from: RawImage, channels: number[]): RawImage {
  const pixels = from.width * from.height;
  const data = Buffer.allocUnsafe(pixels * channels.length);
  for (let p = 0; p < pixels; p++) {
    channels.forEach((source, c) => (data[p * channels.length + c] = from.data[p * from.channels + source]));
  }
  return { data, width: from.width, height: from.height, channels: channels.length as RawImage['channels'] };
}

beforeAll(async () => {
  const decoded = await decodeImage(corpus('ladybird.jpg'), { maxPixels: 10_000_000, name: 'ladybird.jpg' });
  fullPhoto = decoded;
  photo = extractRect(decoded, { x: 400, y: 250, width: 161, height: 117 });
  grey = toGrey(photo);
  // Alpha taken from the blue channel of another region, so it varies across the image.
  const other = extractRect(decoded, { x: 100, y: 40, width: 161, height: 117 });
  withAlpha = { ...photo, channels: 4, data: Buffer.alloc(photo.width * photo.height * 4) };
  for (let p = 0; p < photo.width * photo.height; p++) {
    photo.data.copy(withAlpha.data, p * 4, p * 3, p * 3 + 3);
    withAlpha.data[p * 4 + 3] = other.data[p * 3 + 2];
  }
  greyAlpha = toGrey(withAlpha);
});

async function run(image: RawImage, op: string, params: Record<string, unknown> = {}): Promise<RawImage> {
  const declaration = findOperation(op);
  if (!declaration) throw new Error(`no operation ${op}`);
  return declaration.apply(image, declaration.params.parse(params), {});
}

const sample = (image: RawImage, x: number, y: number, c = 0) => image.data[(y * image.width + x) * image.channels + c];

/** Brute-force min/max over the window [x - anchor, x - anchor + length) clipped to the image. */
function bruteForceExtreme(image: RawImage, pick: 'min' | 'max', length: number, anchor: number): RawImage {
  const out = Buffer.from(image.data);
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      for (let c = 0; c < image.channels; c++) {
        let best = pick === 'min' ? 255 : 0;
        for (let v = Math.max(0, y - anchor); v < Math.min(image.height, y - anchor + length); v++) {
          for (let u = Math.max(0, x - anchor); u < Math.min(image.width, x - anchor + length); u++) {
            best = Math[pick](best, sample(image, u, v, c));
          }
        }
        out[(y * image.width + x) * image.channels + c] = best;
      }
    }
  }
  return { ...image, data: out };
}

describe('erode and dilate', () => {
  it.each([
    ['erode', 'min', 5, 2],
    ['dilate', 'max', 5, 2],
    ['erode', 'min', 3, 1],
    ['dilate', 'max', 4, 3],
  ] as const)('%s (a %s filter) with size %i and %i iterations equals a brute-force filter', async (op, pick, size, iterations) => {
    // OpenCV folds iterations of a size×size rectangle into one larger rectangle with a scaled anchor.
    const length = size + (iterations - 1) * (size - 1);
    const anchor = Math.floor(size / 2) * iterations;
    expect((await run(photo, op, { size, iterations })).data.equals(bruteForceExtreme(photo, pick, length, anchor).data)).toBe(true);
  });

  it('iterating a 3x3 erosion twice equals one erosion with iterations 2', async () => {
    const twice = await run(await run(photo, 'erode', { size: 3, iterations: 1 }), 'erode', { size: 3, iterations: 1 });
    expect((await run(photo, 'erode', { size: 3, iterations: 2 })).data.equals(twice.data)).toBe(true);
  });

  it('keeps the alpha channel as it is', async () => {
    const out = await run(withAlpha, 'dilate');
    expect(pickChannels(out, [3]).data.equals(pickChannels(withAlpha, [3]).data)).toBe(true);
    expect(pickChannels(out, [0, 1, 2]).data.equals((await run(photo, 'dilate')).data)).toBe(true);
  });
});

describe('edges (Canny)', () => {
  it('outlines a bright square on a dark background and nothing else', () => {
    const size = 40;
    const data = Buffer.alloc(size * size, 20);
    for (let y = 10; y < 30; y++) data.fill(220, y * size + 10, y * size + 30);
    const edges = canny({ data, width: size, height: size, channels: 1 }, 100, 200);
    const edgeAt = (x: number, y: number) => edges.data[y * size + x] === 255;
    expect(new Set(edges.data)).toEqual(new Set([0, 255]));
    // Every edge pixel lies on the square's boundary (one pixel either side of it).
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const nearBoundary = (Math.abs(x - 9.5) <= 1 || Math.abs(x - 29.5) <= 1 || Math.abs(y - 9.5) <= 1 || Math.abs(y - 29.5) <= 1)
          && x >= 8 && x <= 31 && y >= 8 && y <= 31;
        if (edgeAt(x, y)) expect(nearBoundary, `edge at ${x},${y}`).toBe(true);
      }
    }
    // All four sides are found.
    expect([edgeAt(20, 9) || edgeAt(20, 10), edgeAt(20, 29) || edgeAt(20, 30), edgeAt(9, 20) || edgeAt(10, 20), edgeAt(29, 20) || edgeAt(30, 20)])
      .toEqual([true, true, true, true]);
  });

  it('finds fewer edges with higher thresholds, and the strict ones are a subset', async () => {
    const loose = await run(fullPhoto, 'edges', { low: 30, high: 60 });
    const strict = await run(fullPhoto, 'edges', { low: 100, high: 200 });
    const count = (image: RawImage) => image.data.filter((v) => v === 255).length;
    expect(count(strict)).toBeGreaterThan(0);
    expect(count(strict)).toBeLessThan(count(loose));
    expect(strict.data.findIndex((v, i) => v === 255 && loose.data[i] !== 255)).toBe(-1);
  });

  it('works on the grey of colour and alpha images alike, giving one channel', async () => {
    const fromColour = await run(photo, 'edges');
    const fromAlpha = await run(withAlpha, 'edges');
    expect(fromColour.channels).toBe(1);
    expect(fromAlpha.data.equals(fromColour.data)).toBe(true);
    expect(fromColour.data.equals(canny(greyChannel(photo), 100, 200).data)).toBe(true);
  });
});

describe('threshold', () => {
  it('makes grey > value white and the rest black', async () => {
    const out = await run(photo, 'threshold', { value: 100 });
    expect(out.channels).toBe(1);
    expect(out.data.equals(Buffer.from(grey.data.map((v) => (v > 100 ? 255 : 0))))).toBe(true);
  });

  it("otsu picks the level that maximises the between-class variance", async () => {
    const histogram = greyHistogram(grey);
    const total = grey.data.length;
    let best = -1;
    let bestVariance = -1;
    for (let t = 0; t < 255; t++) {
      let n0 = 0, s0 = 0, n1 = 0, s1 = 0;
      histogram.forEach((count, level) => (level <= t ? ((n0 += count), (s0 += count * level)) : ((n1 += count), (s1 += count * level))));
      if (!n0 || !n1) continue;
      const variance = (n0 / total) * (n1 / total) * (s0 / n0 - s1 / n1) ** 2;
      if (variance > bestVariance + 1e-9) [best, bestVariance] = [t, variance];
    }
    expect(otsuThreshold(histogram)).toBe(best);
    const out = await run(photo, 'threshold', { value: 'otsu' });
    expect(out.data.equals((await run(photo, 'threshold', { value: best })).data)).toBe(true);
  });

  it('keeps alpha', async () => {
    const out = await run(withAlpha, 'threshold');
    expect(out.channels).toBe(2);
    expect(pickChannels(out, [1]).data.equals(pickChannels(withAlpha, [3]).data)).toBe(true);
  });
});

describe('statistics operations run per tile with the whole-image histogram', () => {
  it.each([['equalize', {}], ['normalize', {}], ['threshold', { value: 'otsu' }]])(
    '%s on four tiles equals %s on the whole image',
    async (op, params) => {
      const declaration = findOperation(op)!;
      const parsed = declaration.params.parse(params);
      const whole = await declaration.apply(withAlpha, parsed, {});
      const halfWidth = Math.floor(withAlpha.width / 2);
      const halfHeight = Math.floor(withAlpha.height / 2);
      const tiles = [
        { x: 0, y: 0, width: halfWidth, height: halfHeight },
        { x: halfWidth, y: 0, width: withAlpha.width - halfWidth, height: halfHeight },
        { x: 0, y: halfHeight, width: halfWidth, height: withAlpha.height - halfHeight },
        { x: halfWidth, y: halfHeight, width: withAlpha.width - halfWidth, height: withAlpha.height - halfHeight },
      ];
      const statistics = declaration.tiling;
      if (statistics.kind !== 'statistics') throw new Error(`${op} is not a statistics operation`);
      const merged = new Uint32Array(statistics.histogram(withAlpha, parsed).length);
      for (const tile of tiles) statistics.histogram(extractRect(withAlpha, tile), parsed).forEach((count, i) => (merged[i] += count));
      for (const tile of tiles) {
        const out = statistics.applyWithHistogram(extractRect(withAlpha, tile), parsed, merged);
        expect(out.data.equals(extractRect(whole, tile).data)).toBe(true);
      }
    },
  );
});

describe('equalize and normalize', () => {
  it('equalize spreads a low-contrast grey image over the whole range, keeping the order of levels', async () => {
    const dull = { ...grey, data: Buffer.from(grey.data.map((v) => 100 + (v >> 3))) };
    const out = await run(dull, 'equalize');
    expect(Math.max(...out.data)).toBe(255);
    expect(Math.min(...out.data)).toBe(0);
    const outOfOrder = dull.data.findIndex((v, i) => i > 0 && v > dull.data[i - 1] && out.data[i] < out.data[i - 1]);
    expect(outOfOrder).toBe(-1);
  });

  it('normalize stretches the darkest sample to 0 and the brightest to 255, linearly', async () => {
    const dull = { ...photo, data: Buffer.from(photo.data.map((v) => 60 + (v >> 2))) };
    const low = Math.min(...dull.data);
    const high = Math.max(...dull.data);
    const out = await run(dull, 'normalize');
    expect(out.data.equals(Buffer.from(dull.data.map((v) => Math.round(((v - low) * 255) / (high - low)))))).toBe(true);
  });

  it('normalize leaves a flat image unchanged', async () => {
    const flat = { ...photo, data: Buffer.alloc(photo.data.length, 77) };
    expect((await run(flat, 'normalize')).data.equals(flat.data)).toBe(true);
  });
});

describe('pointwise operations', () => {
  it('invert twice gives the image back, and alpha is not inverted', async () => {
    const once = await run(withAlpha, 'invert');
    expect(sample(once, 3, 4, 0)).toBe(255 - sample(withAlpha, 3, 4, 0));
    expect(pickChannels(once, [3]).data.equals(pickChannels(withAlpha, [3]).data)).toBe(true);
    expect((await run(once, 'invert')).data.equals(withAlpha.data)).toBe(true);
  });

  it('gamma follows 255·(v/255)^(1/value) and 1 changes nothing', async () => {
    const out = await run(photo, 'gamma', { value: 2 });
    expect(out.data.equals(Buffer.from(photo.data.map((v) => Math.round(255 * Math.sqrt(v / 255)))))).toBe(true);
    expect((await run(photo, 'gamma', { value: 1 })).data.equals(photo.data)).toBe(true);
  });

  it('modulate with saturation 0 gives grey pixels; with defaults it changes almost nothing', async () => {
    const unsaturated = await run(photo, 'modulate', { saturation: 0 });
    let largestChroma = 0;
    for (let i = 0; i < unsaturated.data.length; i += 3) {
      const [r, g, b] = unsaturated.data.subarray(i, i + 3);
      largestChroma = Math.max(largestChroma, Math.max(r, g, b) - Math.min(r, g, b));
    }
    expect(largestChroma).toBeLessThanOrEqual(2);
    const unchanged = await run(photo, 'modulate');
    expect(Math.max(...unchanged.data.map((v, i) => Math.abs(v - photo.data[i])))).toBeLessThanOrEqual(2);
  });

  it('modulate brightness 1.5 brightens', async () => {
    const brighter = await run(photo, 'modulate', { brightness: 1.5 });
    const mean = (image: RawImage) => image.data.reduce((sum, v) => sum + v, 0) / image.data.length;
    expect(mean(brighter)).toBeGreaterThan(mean(photo) * 1.2);
  });

  it('identity returns the same pixels', async () => {
    expect((await run(withAlpha, 'identity')).data.equals(withAlpha.data)).toBe(true);
  });
});

describe('alpha', () => {
  it.each([
    ['sharpen', {}],
    ['sharpen', { sigma: 2 }],
    ['clahe', { width: 16, height: 16 }],
    ['modulate', { brightness: 1.2, hue: 40 }],
    ['gamma', { value: 1.8 }],
    ['normalize', {}],
    ['equalize', {}],
    ['erode', {}],
  ])('%s %j keeps the alpha channel unchanged', async (op, params) => {
    const out = await run(withAlpha, op, params);
    expect(out.channels).toBe(4);
    expect(pickChannels(out, [3]).data.equals(pickChannels(withAlpha, [3]).data)).toBe(true);
    expect(pickChannels(out, [0, 1, 2]).data.equals(pickChannels(withAlpha, [0, 1, 2]).data)).toBe(false);
  });
});

describe('neighbourhood operations on sharp', () => {
  /** Brute-force median of the size×size window with replicated borders. */
  function bruteForceMedian(image: RawImage, size: number, x: number, y: number, c: number): number {
    const r = Math.floor(size / 2);
    const values: number[] = [];
    for (let v = y - r; v <= y + r; v++) {
      for (let u = x - r; u <= x + r; u++) {
        values.push(sample(image, Math.min(Math.max(u, 0), image.width - 1), Math.min(Math.max(v, 0), image.height - 1), c));
      }
    }
    return values.sort((a, b) => a - b)[(values.length - 1) / 2];
  }

  it('median equals the brute-force median, borders included', async () => {
    const out = await run(photo, 'median', { size: 5 });
    for (const [x, y] of [[0, 0], [1, 50], [80, 60], [160, 116], [100, 0]]) {
      for (let c = 0; c < 3; c++) expect(sample(out, x, y, c), `at ${x},${y}`).toBe(bruteForceMedian(photo, 5, x, y, c));
    }
  });

  it('convolve with a centred unit kernel gives the image back; a box kernel gives local means', async () => {
    expect((await run(photo, 'convolve', { kernel: [[0, 0, 0], [0, 1, 0], [0, 0, 0]] })).data.equals(photo.data)).toBe(true);
    const box = await run(grey, 'convolve', { kernel: [[1, 1, 1], [1, 1, 1], [1, 1, 1]] });
    let sum = 0;
    for (let v = 49; v <= 51; v++) for (let u = 29; u <= 31; u++) sum += sample(grey, u, v);
    expect(Math.abs(sample(box, 30, 50) - sum / 9)).toBeLessThanOrEqual(0.5);
  });

  it('convolve honours a fractional scale (libvips alone would round it)', async () => {
    const kernel = [[1, 2, 1], [2, 4, 2], [1, 2, 1]];
    const out = await run(grey, 'convolve', { kernel, scale: 16.4 });
    for (const [x, y] of [[30, 50], [80, 60], [100, 20]]) {
      let sum = 0;
      for (let v = -1; v <= 1; v++) for (let u = -1; u <= 1; u++) sum += kernel[v + 1][u + 1] * sample(grey, x + u, y + v);
      // libvips approximates fractional weights in its integer convolution: within one level.
      expect(Math.abs(sample(out, x, y) - sum / 16.4), `at ${x},${y}`).toBeLessThanOrEqual(1);
    }
    const rounded = await run(grey, 'convolve', { kernel, scale: 16 });
    expect(out.data.equals(rounded.data), 'scale 16.4 gives what scale 16 gives').toBe(false);
  });

  it('sharpen raises local contrast', async () => {
    const laplacianEnergy = (image: RawImage) => {
      let energy = 0;
      for (let y = 1; y < image.height - 1; y++) {
        for (let x = 1; x < image.width - 1; x++) {
          const l = 4 * sample(image, x, y) - sample(image, x - 1, y) - sample(image, x + 1, y) - sample(image, x, y - 1) - sample(image, x, y + 1);
          energy += l * l;
        }
      }
      return energy;
    };
    expect(laplacianEnergy(await run(grey, 'sharpen'))).toBeGreaterThan(laplacianEnergy(grey) * 1.1);
    expect(laplacianEnergy(await run(grey, 'sharpen', { sigma: 2 }))).toBeGreaterThan(laplacianEnergy(grey) * 1.1);
  });

  it('clahe raises the contrast of a dull image, less so with a contrast limit', async () => {
    const dull = { ...grey, data: Buffer.from(grey.data.map((v) => 100 + (v >> 3))) };
    const deviation = (image: RawImage) => {
      const mean = image.data.reduce((sum, v) => sum + v, 0) / image.data.length;
      return Math.sqrt(image.data.reduce((sum, v) => sum + (v - mean) ** 2, 0) / image.data.length);
    };
    const unlimited = deviation(await run(dull, 'clahe', { width: 32, height: 32, maxSlope: 0 }));
    const limited = deviation(await run(dull, 'clahe', { width: 32, height: 32, maxSlope: 3 }));
    expect(unlimited).toBeGreaterThan(deviation(dull) * 3);
    expect(limited).toBeGreaterThan(deviation(dull));
    expect(limited).toBeLessThan(unlimited);
  });

  it('clahe gives what sharp gives, and also runs on images smaller than its window', async () => {
    const direct = await toRawImage(sharp(grey.data, rawDescriptor(grey)).clahe({ width: 32, height: 24, maxSlope: 3 }).extractChannel(0));
    expect((await run(grey, 'clahe', { width: 32, height: 24, maxSlope: 3 })).data.equals(direct.data)).toBe(true);
    const tiny = extractRect(photo, { x: 10, y: 10, width: 20, height: 9 });
    const out = await run(tiny, 'clahe', { width: 64, height: 64 });
    expect([out.width, out.height, out.channels]).toEqual([20, 9, 3]);
  });

  it.each([
    ['blur', { sigma: 2 }],
    ['sharpen', {}],
    ['median', { size: 3 }],
    ['convolve', {}],
    ['clahe', { width: 16, height: 16 }],
    ['modulate', { brightness: 1.2 }],
  ])('%s keeps grey images grey and keeps the channel count of images with alpha', async (op, params) => {
    expect((await run(grey, op, params)).channels).toBe(1);
    expect((await run(greyAlpha, op, params)).channels).toBe(2);
    expect((await run(withAlpha, op, params)).channels).toBe(4);
  });
});

describe('parameter ranges', () => {
  /** The operations of this module (geometric ones have ranges that depend on the image). */
  const filters = ['grayscale', 'invert', 'gamma', 'modulate', 'normalize', 'equalize', 'clahe', 'threshold', 'blur', 'sharpen', 'median', 'convolve', 'erode', 'dilate', 'edges', 'identity'];
  const extremes = describeOperations()
    .filter((op) => filters.includes(op.name))
    .flatMap((op) =>
      Object.entries((op.params as { properties?: Record<string, { minimum?: number; maximum?: number }> }).properties ?? {})
        .filter(([, schema]) => schema.minimum !== undefined && schema.maximum !== undefined)
        .flatMap(([param, schema]) => [schema.minimum!, schema.maximum!].map((value) => ({ op: op.name, params: { [param]: value } }))),
    );

  it.each(extremes)('$op runs with $params', async ({ op, params }) => {
    // edges needs low <= high; pair an extreme low or high with a compatible partner.
    const paired = op === 'edges' ? { low: 0, high: 2040, ...params } : params;
    const small = extractRect(photo, { x: 0, y: 0, width: 40, height: 30 });
    const out = await run(small, op, paired);
    expect(out.data.length).toBe(out.width * out.height * out.channels);
  });
});
