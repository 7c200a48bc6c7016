import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorBody } from '../../services/protocol/errors.js';
import { corpus, download, postJob, submit, waitForJob } from '../helpers/api.js';
import { pngDeclaring } from '../helpers/hostile-corpus.js';
import { killAll, startCluster, type DipsProcess } from '../helpers/processes.js';
import { parseResponse } from '../../services/protocol/api.js';

const token = 'test-secret-7f3a';
const pipeline = JSON.stringify([{ op: 'invert' }]);

let master: DipsProcess;
let worker: DipsProcess;
let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-auth-'));
  const cluster = await startCluster({ workers: 1, dataDir: path.join(tmp, 'data'), env: { DIPS_TOKEN: token } });
  master = cluster.master;
  worker = cluster.workers[0]!;
});
afterAll(killAll);

describe('with DIPS_TOKEN set', () => {
  const routes: Array<[string, string]> = [
    ['GET', '/v1/operations'],
    ['POST', '/v1/jobs'],
    ['GET', '/v1/jobs/some-id'],
    ['GET', '/v1/jobs/some-id/events'],
    ['GET', '/v1/jobs/some-id/images/0'],
    ['GET', '/v1/jobs/some-id/archive'],
    ['DELETE', '/v1/jobs/some-id'],
    ['GET', '/v1/cluster'],
    ['PUT', '/v1/workers/intruder'],
    ['DELETE', '/v1/workers/intruder'],
  ];

  it('every /v1 route of the master answers 401 without the token or with a wrong one', async () => {
    for (const [method, route] of routes) {
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: token }] as Array<Record<string, string>>) {
        const response = await fetch(`${master.url}${route}`, { method, headers });
        expect(response.status, `${method} ${route} ${JSON.stringify(headers)}`).toBe(401);
        expect((await parseResponse(errorBody, response)).error.code).toBe('unauthorized');
      }
    }
    expect((await fetch(`${master.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${master.url}/v1/operations`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  });

  it('the worker refuses tasks without the token', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }] as Array<Record<string, string>>) {
      const response = await fetch(`${worker.url}/v1/tasks`, { method: 'POST', headers, body: (await fs.readFile(corpus('aqua.jpg'))) as Uint8Array<ArrayBuffer> });
      expect(response.status, JSON.stringify(headers)).toBe(401);
    }
  });

  it('the worker answers a malformed task batch with 400 (so the master does not retry it)', async () => {
    const bodies = [
      { body: 'not a task', type: 'application/octet-stream' },
      { body: JSON.stringify({ tasks: [{ unit: 'u', lease: 'l', input: { via: 'ftp' } }] }), type: 'application/json' },
    ];
    for (const { body, type } of bodies) {
      const response = await fetch(`${worker.url}/v1/tasks`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': type }, body });
      expect(response.status, body).toBe(400);
      expect(errorBody.parse(await response.json()).error.code).toBe('bad_task');
    }
  });

  it('a job with the token runs on the worker', async () => {
    const id = await submit(master.url, [corpus('aqua.jpg')], { pipeline }, token);
    const job = await waitForJob(master.url, id, token);
    expect(job.status).toBe('succeeded');
    expect((await download(master.url, id, 0, token)).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
  });
});

describe('bad uploads', () => {
  const post = (images: Parameters<typeof postJob>[1], fields: Record<string, string>) => postJob(master.url, images, fields, token);
  const errorOf = async (response: Response) => ({ status: response.status, ...(await parseResponse(errorBody, response)).error });

  it('get a 4xx naming what is wrong', async () => {
    const photo = await fs.readFile(corpus('aqua.jpg'));
    const cases: Array<[string, Promise<Response>, number, RegExp]> = [
      ['empty file', post([{ name: 'empty.jpg', data: Buffer.alloc(0) }], { pipeline }), 400, /empty\.jpg.*empty/],
      ['not an image', post([{ name: 'notes.jpg', data: Buffer.from('just some text, not pixels') }], { pipeline }), 415, /notes\.jpg/],
      ['pixel bomb', post([{ name: 'bomb.png', data: pngDeclaring(100_000, 100_000) }], { pipeline }), 413, /bomb\.png.*10000000000 pixels/],
      ['unknown op', post([{ name: 'a.jpg', data: photo }], { pipeline: '[{"op":"sepia"}]' }), 422, /unknown operation "sepia"; known: grayscale/],
      ['misspelt op', post([{ name: 'a.jpg', data: photo }], { pipeline: '[{"op":"blurr","sigma":2}]' }), 422, /unknown operation "blurr" \(did you mean "blur"\?\)/],
      ['misspelt field', post([{ name: 'a.jpg', data: photo }], { piepline: pipeline }), 400, /^unexpected field "piepline" \(did you mean "pipeline"\?\); known: /],
      ['bad parameter', post([{ name: 'a.jpg', data: photo }], { pipeline: '[{"op":"blur","sigma":-3}]' }), 422, /step 1 \(blur\): sigma/],
      ['malformed JSON', post([{ name: 'a.jpg', data: photo }], { pipeline: '[{"op":"blur"' }), 400, /not valid JSON/],
      ['no pipeline', post([{ name: 'a.jpg', data: photo }], {}), 400, /"pipeline" field is missing/],
      ['no images', post([], { pipeline }), 400, /no file parts named "images"/],
      ['bad format', post([{ name: 'a.jpg', data: photo }], { pipeline, format: 'bmp' }), 422, /format "bmp"/],
      ['misspelt format', post([{ name: 'a.jpg', data: photo }], { pipeline, format: 'jpg' }), 422, /^format "jpg" is not one of jpeg, png, webp, tiff, avif \(did you mean "jpeg"\?\)$/],
    ];
    for (const [what, response, status, message] of cases) {
      const error = await errorOf(await response);
      expect(error.status, what).toBe(status);
      expect(error.message, what).toMatch(message);
    }
    const notMultipart = await fetch(`${master.url}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}' });
    expect(notMultipart.status).toBe(400);
    const jsonBodies: Array<[string, RegExp]> = [
      ['null', /^request body must be a JSON object, not null$/],
      ['"s3://bucket/photos/and/more/of/them/"', /^request body must be a JSON object, not "s3:\/\/bucket\/photos\/…$/],
      ['{"inputs": ', /^request body is not valid JSON: /],
    ];
    for (const [body, message] of jsonBodies) {
      const refused = await errorOf(await fetch(`${master.url}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body }));
      expect(refused, body).toMatchObject({ status: 400, code: 'malformed_json' });
      expect(refused.message, body).toMatch(message);
    }
  });

  it('a truncated image fails with an error naming it; a path-like name is reduced to its last part', async () => {
    const photo = await fs.readFile(corpus('aqua.jpg'));
    const id = await submit(
      master.url,
      [
        { name: 'cut.jpg', data: photo.subarray(0, Math.floor(photo.length / 3)) },
        { name: '../../../escape/evil.jpg', data: photo },
      ],
      { pipeline },
      token,
    );
    const job = await waitForJob(master.url, id, token);
    expect(job.images[0]).toMatchObject({ name: 'cut.jpg', status: 'failed' });
    expect(job.images[0]!.error).toMatch(/cut\.jpg/);
    expect(job.images[1]).toMatchObject({ name: 'evil.jpg', status: 'succeeded' });
    const response = await fetch(`${master.url}/v1/jobs/${id}/images/1`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.headers.get('content-disposition')).toMatch(/filename="?evil\.jpg/);
    await expect(fs.access(path.join(tmp, 'escape'))).rejects.toThrow();
  });

  it('leave the master serving', async () => {
    expect((await fetch(`${master.url}/healthz`)).status).toBe(200);
    const id = await submit(master.url, [corpus('storm.jpg')], { pipeline }, token);
    expect((await waitForJob(master.url, id, token)).status).toBe('succeeded');
  });
});
