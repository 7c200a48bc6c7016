import { copyFile, mkdtemp, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseContentDisposition } from 'content-disposition';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type RunningWorker } from '../../services/worker/server.js';
import { corpus, getJob, pixelsOf, postJob, submit, waitForJob } from '../helpers/api.js';
import { runDips } from '../helpers/processes.js';
import { closeMasters, hardenedMaster } from './master.js';
import { parseResponse } from '../../services/protocol/api.js';
import { errorBody } from '../../services/protocol/errors.js';

const pipeline = JSON.stringify([{ op: 'invert' }]);
const utf8Name = 'Café-写真.jpg';
let worker: RunningWorker;
let url: string;
beforeAll(async () => {
  ({ url } = await hardenedMaster());
  worker = await startWorker({ port: 0, masterUrl: url, heartbeatMs: 200, slots: 2 });
});
afterAll(async () => {
  await worker.drain();
  await closeMasters();
});

const errorOf = async (response: Response) => (await parseResponse(errorBody, response)).error;

describe('file names', () => {
  it(`keeps a UTF-8 name as sent (${utf8Name}) in the job and in the download`, async () => {
    const id = await submit(url, [{ name: utf8Name, data: await readFile(corpus('aqua.jpg')) }], { pipeline });
    const job = await waitForJob(url, id);
    expect(job.images[0]).toMatchObject({ name: utf8Name, status: 'succeeded' });
    const download = await fetch(`${url}/v1/jobs/${id}/images/0`);
    expect(parseContentDisposition(download.headers.get('content-disposition')!).parameters.filename).toBe(utf8Name);
  });

  it('removes control, bidi and zero-width characters from display names', async () => {
    const data = await readFile(corpus('aqua.jpg'));
    // "photo<RLO>gpj.exe" would show as "photoexe.jpg"; U+200B and U+2066 are invisible; U+009B is a terminal's escape.
    const id = await submit(url, [{ name: 'ph\u200Boto\u202Egpj.exe\u2066\u009b.jpg', data }], { pipeline });
    expect((await getJob(url, id)).images[0]!.name).toBe('photogpj.exe.jpg');
  });

  it(`dips submit writes ${utf8Name} under that name`, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dips-names-'));
    const input = path.join(dir, utf8Name);
    await copyFile(corpus('aqua.jpg'), input);
    const out = path.join(dir, 'out');
    const run = await runDips(['submit', input, '--pipeline', pipeline, '--out', out, '--master', url]);
    expect(run.code, run.stderr).toBe(0);
    expect(await readdir(out)).toEqual([utf8Name]);
    expect((await pixelsOf(path.join(out, utf8Name))).width).toBe(1400);
  });
});

describe('malformed requests', () => {
  it('answers a bad part header at once although 5 MB of body follow, and keeps serving', async () => {
    const boundary = 'dips-boundary';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="images"; filename="a.jpg"\r\nx-padding: ${'a'.repeat(20 * 1024)}\r\n\r\n`),
      Buffer.alloc(5 * 1024 * 1024, 1),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const started = Date.now();
    const response = await fetch(`${url}/v1/jobs`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).code).toBe('malformed_multipart');
    // It used to hang until a reset at about 66 s; draining 5 MB on loopback takes milliseconds.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('refuses a duplicate pipeline field with 400', async () => {
    const form = new FormData();
    form.append('pipeline', JSON.stringify([{ op: 'invert' }]));
    form.append('pipeline', JSON.stringify([{ op: 'grayscale' }]));
    form.append('images', new Blob([await readFile(corpus('aqua.jpg'))]), 'aqua.jpg');
    const response = await fetch(`${url}/v1/jobs`, { method: 'POST', body: form });
    expect(response.status).toBe(400);
    expect(await errorOf(response)).toMatchObject({ code: 'duplicate_field', message: expect.stringMatching(/"pipeline"/) });
  });
});

describe('/metrics', () => {
  it('needs the token by default', async () => {
    const { url: guarded } = await hardenedMaster({ token: 'sesame' });
    expect((await fetch(`${guarded}/metrics`)).status).toBe(401);
    const allowed = await fetch(`${guarded}/metrics`, { headers: { authorization: 'Bearer sesame' } });
    expect(allowed.status).toBe(200);
    expect(await allowed.text()).toMatch(/dips_pending_images 0/);
    expect((await fetch(`${guarded}/healthz`)).status).toBe(200);
  });

  it('is open to a scraper with DIPS_METRICS_PUBLIC=true, the API still is not', async () => {
    const { url: open } = await hardenedMaster({ token: 'sesame', metricsPublic: 'true' });
    expect((await fetch(`${open}/metrics`)).status).toBe(200);
    expect((await postJob(open, [corpus('aqua.jpg')], { pipeline })).status).toBe(401);
  });
});
