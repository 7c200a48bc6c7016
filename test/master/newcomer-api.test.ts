import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobView, parseResponse } from '../../services/protocol/api.js';
import { errorBody } from '../../services/protocol/errors.js';
import { signWebhook } from '../../services/master/webhooks.js';
import { corpus, getJob, pixelsOf, postJob, submit, waitForJob, waitUntil } from '../helpers/api.js';
import { killAll, runDips, startCluster, startDips, type DipsProcess } from '../helpers/processes.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';
import { clusterAnswer } from '../../services/protocol/newcomer.js';

const secret = 'webhook-secret-for-tests';
let work: string;
let master: DipsProcess;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'dips-newcomer-'));
  ({ master } = await startCluster({ workers: 1, dataDir: path.join(work, 'data'), env: { DIPS_WEBHOOK_SECRET: secret, DIPS_WEBHOOK_RETRY_MS: '100', DIPS_WEBHOOK_ALLOW_PRIVATE: 'true' } }));
  await waitUntil(async () => parseResponse(clusterAnswer, await fetch(`${master.url}/v1/cluster`)), (c) => c.workers.length === 1, 30_000, 'a worker');
});

afterAll(killAll);

const truncatedJpeg = async () => ({ name: 'broken.jpg', data: (await readFile(corpus('storm.jpg'))).subarray(0, 20_000) });

/** A schema of the served OpenAPI document, as zod reads it back. */
async function servedSchema(pointer: (doc: any) => unknown): Promise<z.ZodType> {
  const doc = await (await fetch(`${master.url}/v1/openapi.json`)).json();
  return z.fromJSONSchema(pointer(doc) as Parameters<typeof z.fromJSONSchema>[0]);
}

describe('statuses that tell the truth', () => {
  it('a job where some images fail is partial, and its other results download; one where all fail is failed', async () => {
    const id = await submit(master.url, [corpus('aqua.jpg'), await truncatedJpeg(), corpus('wood.jpg')], { pipeline: '[{"op":"invert"}]' });
    const job = await waitForJob(master.url, id);
    expect(job.status).toBe('partial');
    expect(job.images.map((image) => image.status)).toEqual(['succeeded', 'failed', 'succeeded']);
    expect((await fetch(`${master.url}/v1/jobs/${id}/images/0`)).status).toBe(200);
    const allBroken = await waitForJob(master.url, await submit(master.url, [await truncatedJpeg()], { pipeline: '[{"op":"invert"}]' }));
    expect(allBroken.status).toBe('failed');
  });
});

describe('POST /v1/process', () => {
  it('answers the processed image itself: the same pixels as dips process', async () => {
    const form = new FormData();
    form.set('image', new Blob([await readFile(corpus('garden-odd.png'))]), 'garden-odd.png');
    form.set('pipeline', '[{"op":"blur","sigma":1.5},{"op":"grayscale"}]');
    const response = await fetch(`${master.url}/v1/process`, { method: 'POST', body: form });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    const jobId = response.headers.get('x-dips-job');
    expect((await getJob(master.url, jobId!)).status).toBe('succeeded');
    const out = path.join(work, 'reference');
    const reference = await runDips(['process', corpus('garden-odd.png'), '--pipeline', '[{"op":"blur","sigma":1.5},{"op":"grayscale"}]', '--out', out]);
    expect(reference.code, reference.stderr).toBe(0);
    const served = await pixelsOf(Buffer.from(await response.arrayBuffer()));
    const expected = await pixelsOf(path.join(out, 'garden-odd.png'));
    expect([served.width, served.height, served.channels]).toEqual([1001, 667, expected.channels]);
    expect(served.data.equals(expected.data)).toBe(true);
  });

  it('returns QR texts in a header, and refuses bad input as jobs do, naming what is wrong', async () => {
    const form = new FormData();
    form.set('image', new Blob([await readFile(corpus('qr-on-photo.jpg'))]), 'qr.jpg');
    form.set('pipeline', '[{"op":"qr"}]');
    form.set('format', 'webp');
    const qr = await fetch(`${master.url}/v1/process`, { method: 'POST', body: form });
    expect(qr.status).toBe(200);
    expect(qr.headers.get('content-type')).toBe('image/webp');
    expect(JSON.parse(qr.headers.get('x-dips-qr')!)).toEqual(['DIPS test: tile 42 of 100']);

    const cases: Array<[Record<string, string | Blob>, number, RegExp]> = [
      [{ pipeline: '[{"op":"invert"}]' }, 400, /no file part named "image"/],
      [{ image: new Blob(['plain text']), pipeline: '[{"op":"invert"}]' }, 415, /image/],
      [{ image: new Blob([await readFile(corpus('aqua.jpg'))]), pipeline: '[{"op":"blur","sigma":"lots"}]' }, 422, /sigma/],
      [{ image: new Blob([(await truncatedJpeg()).data]), pipeline: '[{"op":"invert"}]' }, 422, /cannot decode/],
    ];
    for (const [parts, status, message] of cases) {
      const bad = new FormData();
      for (const [name, value] of Object.entries(parts)) bad.set(name, value as string);
      const response = await fetch(`${master.url}/v1/process`, { method: 'POST', body: bad });
      expect(response.status).toBe(status);
      expect(errorBody.parse(await response.json()).error.message).toMatch(message);
    }
  });

  it('pipeline [] converts the format only: a job and a direct answer both hold the photo\'s own pixels in the new format', async () => {
    const photo = await pixelsOf(corpus('aqua.jpg'));
    const form = new FormData();
    form.set('image', new Blob([await readFile(corpus('aqua.jpg'))]), 'aqua.jpg');
    form.set('pipeline', '[]');
    form.set('format', 'png');
    const direct = await fetch(`${master.url}/v1/process`, { method: 'POST', body: form });
    expect(direct.status, await direct.clone().text()).toBe(200);
    expect(direct.headers.get('content-type')).toBe('image/png');
    const id = await submit(master.url, [corpus('aqua.jpg')], { pipeline: '[]', format: 'png' });
    const job = await waitForJob(master.url, id);
    expect(job.status).toBe('succeeded');
    const downloaded = await fetch(`${master.url}/v1/jobs/${id}/images/0`);
    expect(downloaded.headers.get('content-type')).toBe('image/png');
    for (const bytes of [Buffer.from(await direct.arrayBuffer()), Buffer.from(await downloaded.arrayBuffer())]) {
      expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
      const converted = await pixelsOf(bytes);
      expect([converted.width, converted.height, converted.channels]).toEqual([photo.width, photo.height, photo.channels]);
      expect(converted.data.equals(photo.data)).toBe(true);
    }
  });
});

describe('job webhooks', () => {
  it('calls the URL once when the job finishes, signed with the secret, retrying a receiver that failed', async () => {
    // The first call meets a receiver that is down for a moment.
    const receiver = await startWebhookReceiver((call) => (call === 1 ? 503 : 204));
    const { calls } = receiver;
    const url = receiver.url('/hooks/dips');
    try {
      const refused = await postJob(master.url, [corpus('aqua.jpg')], { pipeline: '[{"op":"invert"}]', webhook: 'ftp://example.invalid/' });
      expect(refused.status).toBe(422);
      expect(errorBody.parse(await refused.json()).error).toMatchObject({ code: 'bad_webhook', message: 'webhook "ftp://example.invalid/" is not an http(s) URL' });
      const id = await submit(master.url, [corpus('aqua.jpg'), await truncatedJpeg()], { pipeline: '[{"op":"grayscale"}]', webhook: url });
      await waitUntil(async () => calls.length, (count) => count >= 2, 30_000, 'the webhook to be retried');
      // Acknowledged: no third call.
      await waitForJob(master.url, id);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(calls).toHaveLength(2);
      for (const { headers, body } of calls) {
        expect(headers['x-dips-signature']).toBe(signWebhook(secret, String(headers['x-dips-timestamp']), body));
        expect(headers['x-dips-signature']).not.toBe(signWebhook('another secret', String(headers['x-dips-timestamp']), body));
        const event = JSON.parse(body) as { event: string; job: unknown };
        expect(event.event).toBe('job.finished');
        const job = jobView.parse(event.job);
        expect([job.id, job.status]).toEqual([id, 'partial']);
        (await servedSchema((doc) => doc.paths['/v1/jobs'].post.callbacks.finished['{$request.body#/webhook}'].post.requestBody.content['application/json'].schema)).parse(event);
      }
    } finally {
      receiver.close();
    }
  });
});

describe('dips submit --webhook', () => {
  it('has the master call the URL once when the job it makes of the files finishes', async () => {
    const receiver = await startWebhookReceiver();
    const { calls } = receiver;
    try {
      const run = await runDips(['submit', corpus('aqua.jpg'), corpus('wood.jpg'), '--pipeline', '[{"op":"invert"}]', '--webhook', receiver.url('/hooks/cli'), '--master', master.url]);
      expect(run.code, run.stderr).toBe(0);
      await waitUntil(async () => calls.length, (count) => count >= 1, 10_000, 'the webhook');
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(calls).toHaveLength(1);
      const job = jobView.parse(JSON.parse(calls[0]!.body).job);
      expect([job.status, job.progress.done, job.progress.total]).toEqual(['succeeded', 2, 2]);
    } finally {
      receiver.close();
    }
  });
});

describe('GET /v1/openapi.json', () => {
  it('describes every route of the contract, and real answers match its schemas', async () => {
    const response = await fetch(`${master.url}/v1/openapi.json`);
    expect(response.status).toBe(200);
    const doc = (await response.json()) as { openapi: string; paths: Record<string, Record<string, any>> };
    expect(doc.openapi).toBe('3.1.0');
    for (const route of ['/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/events', '/v1/jobs/{id}/images/{index}', '/v1/jobs/{id}/archive', '/v1/operations', '/v1/cluster', '/v1/process', '/v1/workers/{id}', '/v1/blobs/{lease}/{direction}', '/healthz', '/metrics']) {
      expect(Object.keys(doc.paths)).toContain(route);
    }
    // The worker routes take the worker credential, not the client token.
    expect(doc.paths['/v1/workers/{id}']!.put.security).toEqual([{ workerToken: [] }]);
    const id = await submit(master.url, [corpus('aqua.jpg')], { pipeline: '[{"op":"invert"}]' });
    const accepted = await servedSchema((d) => d.paths['/v1/jobs'].post.responses['202'].content['application/json'].schema);
    expect(() => accepted.parse({ id, status: 'queued' })).not.toThrow();
    const job = await waitForJob(master.url, id);
    const answers: Array<[string, unknown]> = [
      [`/v1/jobs/{id}`, job],
      ['/v1/cluster', await (await fetch(`${master.url}/v1/cluster`)).json()],
      ['/v1/operations', await (await fetch(`${master.url}/v1/operations`)).json()],
    ];
    for (const [route, answer] of answers) {
      const served = await servedSchema((d) => d.paths[route].get.responses['200'].content['application/json'].schema);
      expect(() => served.parse(answer), route).not.toThrow();
      // The schema is not vacuous: an answer with a wrong field type is refused.
      expect(() => served.parse(JSON.parse(JSON.stringify(answer).replace(/"status":"[a-z]+"/, '"status":7').replace(/"queueDepth":\d+/, '"queueDepth":"x"').replace(/"tileable":(true|false)/, '"tileable":"no"'))), route).toThrow();
    }
    const notFound = await fetch(`${master.url}/v1/jobs/nope`);
    const errorSchema = await servedSchema((d) => d.components.responses.Error.content['application/json'].schema);
    const notFoundBody: unknown = await notFound.json();
    expect(() => errorSchema.parse(notFoundBody)).not.toThrow();
    expect(() => errorSchema.parse({ error: 'nope' })).toThrow();
  });
});

describe('saying when nothing can run', () => {
  it('with no worker registered, the cluster, dips status and POST /v1/process say so; a cancelled job counts what was processed', async () => {
    const lonely = await startDips(['master', '--port', '0', '--data-dir', path.join(work, 'lonely')]);
    const cluster = await parseResponse(clusterAnswer, await fetch(`${lonely.url}/v1/cluster`));
    expect(cluster.summary).toBe('0 workers, nothing queued');
    expect(cluster.waiting).toMatch(/no worker is registered/);
    const id = await submit(lonely.url, [corpus('aqua.jpg'), corpus('wood.jpg')], { pipeline: '[{"op":"invert"}]' });
    const status = await runDips(['status', id, '--master', lonely.url]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^job ${id}  queued  0 of 2 images processed\\nwaiting: no worker is registered with the master: start one with \`dips worker --master ${lonely.url}\``));
    expect(status.stdout).toMatch(/^ *0 {2}aqua\.jpg +queued/m);

    const form = new FormData();
    form.set('image', new Blob([await readFile(corpus('aqua.jpg'))]), 'aqua.jpg');
    form.set('pipeline', '[{"op":"invert"}]');
    const sync = await fetch(`${lonely.url}/v1/process`, { method: 'POST', body: form });
    expect(sync.status).toBe(503);
    expect(sync.headers.get('retry-after')).toBe('10');
    expect(errorBody.parse(await sync.json()).error.message).toMatch(/no worker is registered/);

    expect((await fetch(`${lonely.url}/v1/jobs/${id}`, { method: 'DELETE' })).status).toBe(200);
    const canceled = await runDips(['status', id, '--master', lonely.url]);
    expect(canceled.stdout).toMatch(new RegExp(`^job ${id}  canceled  0 of 2 images processed\\n`));
    const json = await runDips(['status', id, '--json', '--master', lonely.url]);
    expect(jobView.parse(JSON.parse(json.stdout)).status).toBe('canceled');
  });
});
