import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { corpus, getJob, pixelsOf } from '../helpers/api.js';
import { killAll, runDips, startCluster, startDips } from '../helpers/processes.js';

const files = ['garden-odd.png', 'storm.jpg', 'qr-on-photo.jpg'].map(corpus);
// A local step (blur, halo), a statistics step (equalize: merged histograms), a pixel move (flop),
// another local step, and a whole-image step (qr) in front: every kind of stage the planner makes.
const pipeline = JSON.stringify([{ op: 'qr' }, { op: 'blur', sigma: 1.5 }, { op: 'equalize' }, { op: 'flop' }, { op: 'sharpen' }]);

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-exact-'));
});
afterEach(killAll);

describe('a job on 3 workers with a small DIPS_TILE_SIZE, one of them reaching storage only through the master', () => {
  it('matches `dips process` pixel for pixel and reports the QR text', async () => {
    const reference = await runDips(['process', ...files, '--pipeline', pipeline, '--out', path.join(tmp, 'reference'), '--format', 'png']);
    expect(reference.code, reference.stderr).toBe(0);

    const { master, workers } = await startCluster({ workers: 2, dataDir: path.join(tmp, 'data'), env: { DIPS_TILE_SIZE: '256' } });
    // As a worker on another machine: it reads its rows and writes its cores as master-served blobs.
    await startDips(['worker', '--port', '0', '--master', master.url], { DIPS_WORKER_FILE_ACCESS: 'off' });
    const submitted = await runDips(['submit', ...files, '--pipeline', pipeline, '--out', path.join(tmp, 'cluster'), '--format', 'png', '--master', master.url]);
    expect(submitted.code, submitted.stderr + master.log()).toBe(0);

    for (const file of files) {
      const name = `${path.parse(file).name}.png`;
      const expected = await pixelsOf(path.join(tmp, 'reference', name));
      const actual = await pixelsOf(path.join(tmp, 'cluster', name));
      expect({ ...actual, data: undefined }).toEqual({ ...expected, data: undefined });
      expect(actual.data.equals(expected.data), `${name} differs from dips process`).toBe(true);
    }
    // JPEG out: the last stage's strips encode their bands in restart intervals and a worker joins them;
    // decoded, the file has the pixels of the one-piece encode of `dips process`. Only the worker that
    // reaches storage through the master is left, so it joins the segments the master serves as one blob.
    await Promise.all(workers.map((worker) => worker.stop()));
    const referenceJpeg = await runDips(['process', ...files, '--pipeline', pipeline, '--out', path.join(tmp, 'reference-jpeg'), '--format', 'jpeg']);
    expect(referenceJpeg.code, referenceJpeg.stderr).toBe(0);
    const submittedJpeg = await runDips(['submit', ...files, '--pipeline', pipeline, '--out', path.join(tmp, 'cluster-jpeg'), '--format', 'jpeg', '--master', master.url]);
    expect(submittedJpeg.code, submittedJpeg.stderr + master.log()).toBe(0);
    for (const file of files) {
      const name = `${path.parse(file).name}.jpg`;
      const jpeg = await fs.readFile(path.join(tmp, 'cluster-jpeg', name));
      expect(jpeg.includes(Buffer.from([0xff, 0xdd])), `${name} has restart intervals`).toBe(true);
      const expected = await pixelsOf(path.join(tmp, 'reference-jpeg', name));
      const actual = await pixelsOf(path.join(tmp, 'cluster-jpeg', name));
      expect({ ...actual, data: undefined }).toEqual({ ...expected, data: undefined });
      expect(actual.data.equals(expected.data), `${name} differs from dips process`).toBe(true);
    }
    const id = submitted.stderr.match(/job ([0-9a-f-]{36}) accepted/)![1]!;
    const job = await getJob(master.url, id);
    expect(job.images.find((image) => image.name === 'qr-on-photo.jpg')?.qr).toEqual(['DIPS test: tile 42 of 100']);
    // The images really were tiled: far more units than images went to the workers.
    const metrics = await (await fetch(`${master.url}/metrics`)).text();
    const tiles = Number(metrics.match(/dips_units_completed_total\{kind="tile"\} (\d+)/)?.[1] ?? 0);
    expect(tiles).toBeGreaterThan(3 * 10);
  });
});

describe('an upload turned by its EXIF orientation, tiled', () => {
  it('is decoded upright once by a decode task, its strips read rows of that, and it matches `dips process`', async () => {
    // A phone photo held sideways: stored landscape, shown portrait. libvips turns such a file whole, so
    // strips that decoded the upload would each decode and turn all of it.
    const turned = path.join(tmp, 'sideways.jpg');
    await sharp(corpus('storm.jpg')).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toFile(turned);
    const blur = JSON.stringify([{ op: 'blur', sigma: 2 }, { op: 'invert' }]);
    const reference = await runDips(['process', turned, '--pipeline', blur, '--out', path.join(tmp, 'turned-reference'), '--format', 'png']);
    expect(reference.code, reference.stderr).toBe(0);
    const { master } = await startCluster({ workers: 2, dataDir: path.join(tmp, 'turned-data'), env: { DIPS_TILE_SIZE: '256' } });
    const submitted = await runDips(['submit', turned, '--pipeline', blur, '--out', path.join(tmp, 'turned-cluster'), '--format', 'png', '--master', master.url]);
    expect(submitted.code, submitted.stderr + master.log()).toBe(0);
    const expected = await pixelsOf(path.join(tmp, 'turned-reference', 'sideways.png'));
    const actual = await pixelsOf(path.join(tmp, 'turned-cluster', 'sideways.png'));
    const { width, height } = await sharp(corpus('storm.jpg')).metadata();
    expect([actual.width, actual.height]).toEqual([height, width]);
    expect(actual.data.equals(expected.data), 'sideways.png differs from dips process').toBe(true);
    const metrics = await (await fetch(`${master.url}/metrics`)).text();
    const units = (kind: string) => Number(metrics.match(new RegExp(`dips_units_completed_total\\{kind="${kind}"\\} (\\d+)`))?.[1] ?? 0);
    expect({ decode: units('decode'), tiledInStrips: units('tile') > 2 }).toEqual({ decode: 1, tiledInStrips: true });
  });
});
