import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openPresets, type Presets } from '../../services/master/presets.js';
import { validateSubmission } from '../../services/master/submission.js';
import { HttpError } from '../../services/shared/http-error.js';
import { corpus } from '../helpers/api.js';

/** The master's defaults (services/shared/config.ts). */
const config = { maxPipelineSteps: 32, maxPixels: 268_402_689, workerMemoryBytes: 512 * 1024 * 1024, tileSize: undefined };

let dir: string;
let tinyJpeg: string;
let presets: Presets;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dips-submission-'));
  presets = openPresets({ dataDir: dir, presetsOnly: false, presetsFile: undefined, maxPipelineSteps: config.maxPipelineSteps });
  tinyJpeg = join(dir, 'tiny.jpg');
  await writeFile(tinyJpeg, await sharp(corpus('ladybird.jpg')).resize(32, 32).jpeg({ quality: 50 }).toBuffer());
});
afterAll(async () => {
  presets.close();
  await rm(dir, { recursive: true, force: true });
});

async function submit(path: string, pipeline: unknown) {
  const file = { name: path.split('/').at(-1)!, header: async () => path, bytes: (await stat(path)).size };
  return validateSubmission(config, presets, [file], { pipeline: JSON.stringify(pipeline) });
}

async function refusal(path: string, pipeline: unknown): Promise<HttpError> {
  const error = await submit(path, pipeline).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof HttpError)) throw new Error(`expected an HttpError, got ${String(error)}`);
  return error;
}

describe('steps are checked against the image header at submission', () => {
  test('a crop 100,000 px wide on a 1400x875 photo gets 422 naming the image and the step', async () => {
    const error = await refusal(corpus('ladybird.jpg'), [{ op: 'crop', left: 0, top: 0, width: 100_000, height: 10 }]);
    expect(error.status).toBe(422);
    expect(error.message).toMatch(/ladybird\.jpg.*step 1.*crop.*100000x10.*1400x875/);
  });

  test('a crop that fits after an earlier step changed the size is accepted; one that no longer fits is not', async () => {
    await expect(submit(corpus('ladybird.jpg'), [{ op: 'rotate', angle: 90 }, { op: 'crop', left: 0, top: 0, width: 875, height: 1400 }])).resolves.toBeDefined();
    const error = await refusal(corpus('ladybird.jpg'), [{ op: 'resize', width: 700 }, { op: 'crop', left: 0, top: 0, width: 800, height: 10 }]);
    expect(error.message).toMatch(/step 2.*crop/);
  });

  test('a tiny JPEG resized to 16383x16383 is refused at once: no worker could hold it (#17)', async () => {
    const error = await refusal(tinyJpeg, [{ op: 'resize', width: 16_383, height: 16_383 }]);
    expect(error.status).toBe(422);
    expect(error.message).toMatch(/resize run on the whole image.*MiB/);
  });

  test('an absurd resize factor is refused by the pixel limit', async () => {
    const error = await refusal(corpus('ladybird.jpg'), [{ op: 'resize', scale: 16 }]);
    expect(error.status).toBe(422);
    expect(error.message).toMatch(/resize/);
  });

  test('a 2x upscale of a photo is accepted, and so is an empty pipeline (format conversion)', async () => {
    await expect(submit(corpus('ladybird.jpg'), [{ op: 'resize', scale: 2 }])).resolves.toBeDefined();
    const job = await submit(corpus('ladybird.jpg'), []);
    expect(job.pipeline).toEqual([]);
  });
});
