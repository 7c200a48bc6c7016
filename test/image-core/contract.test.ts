import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { operations } from '../../services/image-core/catalogue.js';
import { decodeImage } from '../../services/image-core/decode.js';
import { toGrey } from '../../services/image-core/operations/grayscale.js';
import { extractRect } from '../../services/image-core/pixel-move.js';
import { outputSizeOf, parsePipeline, runSteps } from '../../services/image-core/pipeline.js';
import type { Channels, RawImage } from '../../services/image-core/raw-image.js';
import { corpus, sampleParams } from './tiling-support.js';

/** One image per channel layout: grey, grey + alpha, RGB, RGB + alpha (alpha varying). */
const inputs = new Map<Channels, RawImage>();

beforeAll(async () => {
  const photo = extractRect(await decodeImage(corpus('ladybird.jpg'), { maxPixels: 10_000_000, name: 'ladybird.jpg' }), {
    x: 380,
    y: 240,
    width: 261,
    height: 233,
  });
  const withAlpha: RawImage = { ...photo, channels: 4, data: Buffer.alloc(photo.width * photo.height * 4) };
  for (let p = 0; p < photo.width * photo.height; p++) {
    photo.data.copy(withAlpha.data, p * 4, p * 3, p * 3 + 3);
    withAlpha.data[p * 4 + 3] = (p * 7) % 256;
  }
  inputs.set(3, photo);
  inputs.set(4, withAlpha);
  inputs.set(1, toGrey(photo));
  inputs.set(2, toGrey(withAlpha));
});

const everyStep = operations.flatMap((op) =>
  (sampleParams[op.name] ?? [{}]).flatMap((params) =>
    ([1, 2, 3, 4] as const).map((channels) => ({ label: `${op.name} ${JSON.stringify(params)}`, step: { op: op.name, ...params }, channels })),
  ),
);

describe('every operation keeps what its declaration says it keeps', () => {
  test.each(everyStep)('$label on $channels channels: channels and size as declared', async ({ step, channels }) => {
    const input = inputs.get(channels)!;
    const [parsed] = parsePipeline([step]);
    const { image } = await runSteps(input, [parsed]);
    const declared = parsed.op.outputChannels?.(channels, parsed.params) ?? channels;
    expect(image.channels, 'channels').toBe(declared);
    const declaredSize = outputSizeOf(parsed, input);
    if (parsed.op.tiling.kind !== 'whole') {
      // Tiled runs cut and stitch by the declared size: it must be exact.
      expect({ width: image.width, height: image.height }, 'size').toEqual(declaredSize);
    } else {
      // Whole ops whose size depends on the content (trim) declare a bound, which budgets memory.
      expect(image.width, 'width').toBeLessThanOrEqual(declaredSize.width);
      expect(image.height, 'height').toBeLessThanOrEqual(declaredSize.height);
    }
  });

  test('an operation that changes the channels says so in its description', () => {
    for (const op of operations) {
      const changes = ([1, 2, 3, 4] as const).some((c) => (op.outputChannels?.(c, op.params.parse({})) ?? c) !== c);
      if (changes) expect(op.description, op.name).toMatch(/grey|RGB|alpha is dropped/);
    }
  });

  test('no operation calls sharp itself: raw <-> sharp goes through sharp-raw.ts', async () => {
    const folder = join(import.meta.dirname, '..', '..', 'services', 'image-core', 'operations');
    for (const file of await readdir(folder)) {
      expect(await readFile(join(folder, file), 'utf8'), file).not.toMatch(/from 'sharp'/);
    }
  });
});
