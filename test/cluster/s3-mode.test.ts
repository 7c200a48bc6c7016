import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { corpus, download, getJob, pixelsOf, submit, waitForJob, waitForWorker } from '../helpers/api.js';
import { exited, killAll, runDips, startDips } from '../helpers/processes.js';
import { startS3Server } from '../../bench/s3-server.js';

/* The cluster with DIPS_STORAGE=s3 against a real S3-protocol server on loopback. Workers get no AWS
   settings at all: they read and write through the URLs the master presigns. The photos are tiled
   (DIPS_TILE_SIZE below their size): workers decode them into intermediates in the bucket, read each
   strip's rows with a ranged GET, write each core as one part of a multipart upload, and encode. Whole
   images in S3 mode go through the same presigned GET/PUT as batch items (test/batch/s3-jobs.test.ts). */

const pipeline = JSON.stringify([{ op: 'blur', sigma: 2 }, { op: 'invert' }]);
const files = ['aqua.jpg', 'storm.jpg', 'wood.jpg', 'freshflower.jpg'].map(corpus);

let s3: Awaited<ReturnType<typeof startS3Server>>;
let tmp: string;
/** The environment without any AWS setting, as a worker without AWS permissions has it. */
const withoutAws = Object.fromEntries(Object.entries(process.env).map(([key, value]) => [key, key.startsWith('AWS_') ? '' : value]));
beforeAll(async () => {
  s3 = await startS3Server();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-s3-mode-'));
  const reference = await runDips(['process', ...files, '--pipeline', pipeline, '--out', path.join(tmp, 'reference'), '--format', 'png']);
  expect(reference.code, reference.stderr).toBe(0);
});
afterEach(killAll);
afterAll(() => s3.close());

describe('S3 mode', () => {
  it('a worker killed mid-task and the master killed mid-job: every image ends with the reference pixels, downloaded from the bucket', async () => {
    const dataDir = path.join(tmp, 'data');
    // 400² pixels of a 1400-wide photo: strips of 114 rows, 7-8 parts per intermediate.
    const masterEnv = { ...s3.env, DIPS_MAX_ACTIVE_IMAGES: '2', DIPS_TILE_SIZE: '400' };
    const master = await startDips(['master', '--port', '0', '--data-dir', dataDir], masterEnv);
    const port = new URL(master.url).port;
    const workers = await Promise.all([0, 1].map(() => startDips(['worker', '--port', '0', '--master', master.url], { ...withoutAws, DIPS_WORKER_SLOTS: '1' })));
    const id = await submit(master.url, files, { pipeline, format: 'png' });

    await waitForWorker(master.url, workers[0]!.url, 'busy', 60_000);
    workers[0]!.child.kill('SIGKILL');
    master.child.kill('SIGKILL');
    await exited(master.child);

    const restarted = await startDips(['master', '--port', port, '--data-dir', dataDir], masterEnv);
    const job = await waitForJob(restarted.url, id);
    expect(job.status, JSON.stringify(job) + restarted.log()).toBe('succeeded');
    expect((await getJob(restarted.url, id)).images.map((image) => image.status)).toEqual(files.map(() => 'succeeded'));

    for (const [index, file] of files.entries()) {
      const redirect = await fetch(`${restarted.url}/v1/jobs/${id}/images/${index}`, { redirect: 'manual' });
      expect(redirect.status).toBe(302);
      expect(redirect.headers.get('location')).toMatch(new RegExp(`^${s3.endpoint}/${s3.bucket}/jobs/${id}/out/${index}\\?`));
      const expected = await pixelsOf(path.join(tmp, 'reference', `${path.parse(file).name}.png`));
      const actual = await pixelsOf(await download(restarted.url, id, index));
      expect(actual.data.equals(expected.data), `${file} differs`).toBe(true);
    }
  });
});
