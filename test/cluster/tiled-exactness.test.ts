import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
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
