import { describe, expect, test } from 'vitest';
import { paint } from '../../services/image-core/draw.js';
import { decodeImage } from '../../services/image-core/decode.js';
import { encodeImage } from '../../services/image-core/encode.js';
import { contours, findOuterContours } from '../../services/image-core/operations/contours.js';
import { edges } from '../../services/image-core/operations/edges.js';
import type { RawImage } from '../../services/image-core/raw-image.js';
import { outerContoursDrawn } from './opencv/reference.js';
import { corpus, difference } from './tiling-support.js';

/** OpenCV's drawing of the outer contours of `binary` over `canvas` (RGB), as PNG bytes, and the contour count. */
async function openCvContours(binary: RawImage, canvas: RawImage) {
  const { drawn, count } = await outerContoursDrawn(binary, canvas);
  return { drawn: await encodeImage(drawn, { format: 'png' }), count };
}

describe('contours', () => {
  test.each(['dune.jpg', 'ladybird.jpg', 'garden-odd.png'])('draws what OpenCV draws on %s', async (name) => {
    const image = await decodeImage(corpus(name), { maxPixels: 10_000_000, name });
    const params = contours.params.parse({});
    const edgeMap = await edges.apply(image, params, {});
    const reference = await openCvContours(edgeMap, image);
    expect(reference.count).toBeGreaterThan(10);
    expect(findOuterContours(edgeMap)).toHaveLength(reference.count);
    const drawn = await contours.apply(image, params, {});
    expect(await difference(await encodeImage(drawn, { format: 'png' }), reference.drawn)).toBe('identical');
  });

  test('follows only outer borders: a shape inside a hole is not drawn', async () => {
    // A 1-pixel square ring with a dot in its hole, a filled block, an L shape and a single pixel.
    const width = 40;
    const height = 30;
    const binary: RawImage = { data: Buffer.alloc(width * height), width, height, channels: 1 };
    const set = (x: number, y: number) => (binary.data[y * width + x] = 255);
    for (let i = 2; i <= 14; i++) for (const [x, y] of [[i, 2], [i, 14], [2, i], [14, i]]) set(x, y);
    set(8, 8);
    for (let y = 20; y < 26; y++) for (let x = 20; x < 30; x++) set(x, y);
    for (let i = 0; i < 8; i++) {
      set(33, 5 + i);
      set(33 + Math.min(i, 6), 12);
    }
    set(39, 29);
    const found = findOuterContours(binary);
    expect(found).toHaveLength(4);
    expect(found.flat()).not.toContainEqual({ x: 8, y: 8 });
    // The block's border is its 30 outer pixels, not its interior.
    expect(new Set(found.flat().map(({ x, y }) => `${x},${y}`))).not.toContain('24,22');
    const canvas: RawImage = { data: Buffer.alloc(width * height * 3, 90), width, height, channels: 3 };
    const reference = await openCvContours(binary, canvas);
    expect(reference.count).toBe(4);
    for (const { x, y } of found.flat()) paint(canvas, x, y, [0, 255, 0]);
    expect(await difference(await encodeImage(canvas, { format: 'png' }), reference.drawn)).toBe('identical');
  });

  test('a grey image without edges comes back as RGB with nothing drawn', async () => {
    const flat: RawImage = { data: Buffer.alloc(64 * 48, 128), width: 64, height: 48, channels: 1 };
    const drawn = await contours.apply(flat, contours.params.parse({}), {});
    expect(drawn.channels).toBe(3);
    expect(drawn.data.every((sample) => sample === 128)).toBe(true);
  });
});
