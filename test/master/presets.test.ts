import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { presetList } from '../../services/protocol/presets.js';
import { processImage } from '../../services/image-core/process-image.js';
import { parsePipeline } from '../../services/image-core/pipeline.js';
import { corpus, download, pixelsOf, postJob, submit, waitForJob } from '../helpers/api.js';
import { killAll, runDips, startCluster, startDips, type DipsProcess } from '../helpers/processes.js';
import { parseResponse } from '../../services/protocol/api.js';
import { errorBody } from '../../services/protocol/errors.js';

/* Presets on a real master and worker: CRUD, jobs naming a preset, the refusals, presets-only mode, restart. */

let master: DipsProcess;
let tmp: string;
let photo: string;
const thumb = { pipeline: [{ op: 'resize', width: 48 }], description: 'small PNG', format: 'png' };

const put = (url: string, name: string, body: unknown) =>
  fetch(`${url}/v1/presets/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const codeOf = async (response: Response) => (await parseResponse(errorBody, response)).error;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-presets-'));
  photo = path.join(tmp, 'aqua.jpg');
  await fs.writeFile(photo, await sharp(corpus('aqua.jpg')).resize(160).jpeg().toBuffer());
  ({ master } = await startCluster({ workers: 1, dataDir: path.join(tmp, 'data') }));
}, 60_000);
afterAll(killAll);

describe('/v1/presets', () => {
  it('creates (201), replaces (200), lists, shows and deletes (204) presets; refuses bad names, bodies and pipelines', async () => {
    expect((await put(master.url, 'thumb', { ...thumb, format: 'webp' })).status).toBe(201);
    const replaced = await put(master.url, 'thumb', thumb);
    expect(replaced.status).toBe(200);
    expect(await replaced.json()).toMatchObject({ name: 'thumb', ...thumb });
    const list = presetList.parse(await (await fetch(`${master.url}/v1/presets`)).json());
    expect(list.presetsOnly).toBe(false);
    expect(list.presets.map((p) => [p.name, p.format])).toEqual([['thumb', 'png']]);
    expect(await (await fetch(`${master.url}/v1/presets/thumb`)).json()).toMatchObject(thumb);

    const bad = [
      [await put(master.url, 'Thumb', thumb), 400, 'bad_preset_name'],
      [await put(master.url, 'x', { pipeline: [], colour: 'red' }), 400, 'bad_preset'],
      [await put(master.url, 'x', { pipeline: [{ op: 'sepia' }] }), 422, 'bad_pipeline'],
      [await put(master.url, 'x', { pipeline: [], format: 'webp', options: { effort: 9 } }), 422, 'bad_options'],
      [await fetch(`${master.url}/v1/presets/nope`), 404, 'preset_not_found'],
    ] as const;
    for (const [response, status, code] of bad) {
      expect(response.status).toBe(status);
      expect((await codeOf(response)).code).toBe(code);
    }
    expect((await put(master.url, 'gone', { pipeline: [] })).status).toBe(201);
    expect((await fetch(`${master.url}/v1/presets/gone`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(`${master.url}/v1/presets/gone`, { method: 'DELETE' })).status).toBe(404);
  });

  it('a job naming a preset runs its pipeline and format; the job\'s own format overrides it; pipeline + preset is 400, an unknown preset 422', async () => {
    await put(master.url, 'thumb', thumb);
    const id = await submit(master.url, [photo], { preset: 'thumb' });
    expect((await waitForJob(master.url, id)).status).toBe('succeeded');
    expect(await sharp(await download(master.url, id, 0)).metadata()).toMatchObject({ format: 'png', width: 48 });
    const overridden = await submit(master.url, [photo], { preset: 'thumb', format: 'webp' });
    await waitForJob(master.url, overridden);
    expect(await sharp(await download(master.url, overridden, 0)).metadata()).toMatchObject({ format: 'webp', width: 48 });

    const both = await postJob(master.url, [photo], { preset: 'thumb', pipeline: '[]' });
    expect([both.status, (await codeOf(both)).code]).toEqual([400, 'preset_and_pipeline']);
    const unknown = await postJob(master.url, [photo], { preset: 'sepia-thumb' });
    expect(unknown.status).toBe(422);
    expect(await codeOf(unknown)).toMatchObject({ code: 'unknown_preset', message: 'there is no preset "sepia-thumb" (GET /v1/presets lists them)' });
    const misspelt = await postJob(master.url, [photo], { preset: 'thumbb' });
    expect([misspelt.status, (await codeOf(misspelt)).message]).toEqual([422, 'there is no preset "thumbb" (did you mean "thumb"?) (GET /v1/presets lists them)']);
    const shown = await fetch(`${master.url}/v1/presets/thunb`);
    expect([shown.status, (await codeOf(shown)).message]).toEqual([404, 'no preset named "thunb" (did you mean "thumb"?)']);
  });

  it('a preset keeps a watermark (a composite step\'s data URL): jobs naming it get the same pixels as the pipeline run here', async () => {
    const watermark = `data:image/png;base64,${(await fs.readFile(path.resolve(import.meta.dirname, '../fixtures/watermark.png'))).toString('base64')}`;
    const pipeline = [{ op: 'composite', image: watermark, width: 64, opacity: 0.5 }];
    expect((await put(master.url, 'branded', { pipeline, format: 'png' })).status).toBe(201);
    const id = await submit(master.url, [photo], { preset: 'branded' });
    expect((await waitForJob(master.url, id)).status).toBe('succeeded');
    const served = await pixelsOf(await download(master.url, id, 0));
    const reference = await processImage(photo, parsePipeline(pipeline), { format: 'png' }, { maxPixels: 1e8, name: 'aqua.jpg' });
    expect(served.data.equals((await pixelsOf(reference.data)).data)).toBe(true);
    expect(served.data.equals((await pixelsOf(await sharp(photo).png().toBuffer())).data)).toBe(false);
  });

  it('dips presets put/list and dips submit --preset work against the master', async () => {
    const env = { DIPS_MASTER_URL: master.url, DIPS_TOKEN: '' };
    const putOut = await runDips(['presets', 'put', 'grey', '--pipeline', '[{"op":"grayscale"}]', '--format', 'png', '--description', 'grey PNG'], env);
    expect(putOut.stdout + putOut.stderr).toContain('preset grey created');
    const listed = await runDips(['presets'], env);
    expect(listed.stdout).toMatch(/^grey\s+grayscale\s+png\s+grey PNG$/m);
    const out = path.join(tmp, 'cli-out');
    const submitted = await runDips(['submit', photo, '--preset', 'grey', '--out', out], env);
    expect(submitted.code, submitted.stderr).toBe(0);
    expect(await sharp(path.join(out, 'aqua.png')).metadata()).toMatchObject({ format: 'png', channels: 1 });
  });

  it('survive a restart of the master', async () => {
    await master.stop();
    master = await startDips(['master', '--port', '0', '--data-dir', path.join(tmp, 'data')]);
    const list = presetList.parse(await (await fetch(`${master.url}/v1/presets`)).json());
    expect(list.presets.map((p) => p.name)).toEqual(['branded', 'grey', 'thumb']);
  });
});

describe('presets-only mode', () => {
  it('lists the file\'s presets, refuses ad-hoc pipelines and changes with 403, accepts jobs naming a preset', async () => {
    const file = path.join(tmp, 'menu.json');
    await fs.writeFile(file, JSON.stringify({ presets: [{ name: 'avatar', pipeline: [{ op: 'resize', width: 32 }], format: 'webp' }] }));
    const fixed = await startDips(['master', '--port', '0', '--data-dir', path.join(tmp, 'fixed')], { DIPS_PRESETS_ONLY: 'true', DIPS_PRESETS_FILE: file });
    const list = presetList.parse(await (await fetch(`${fixed.url}/v1/presets`)).json());
    expect([list.presetsOnly, list.presets.map((p) => p.name)]).toEqual([true, ['avatar']]);
    const refusals = [
      await postJob(fixed.url, [photo], { pipeline: '[{"op":"invert"}]' }),
      await fetch(`${fixed.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pipeline: [], inputs: { prefix: 'file:///tmp/x' } }) }),
      await put(fixed.url, 'mine', { pipeline: [] }),
      await fetch(`${fixed.url}/v1/presets/avatar`, { method: 'DELETE' }),
    ];
    for (const response of refusals) expect([response.status, (await codeOf(response)).code]).toEqual([403, 'presets_only']);
    expect((await postJob(fixed.url, [photo], { preset: 'avatar' })).status).toBe(202);
  });

  it('a master whose presets file is not valid does not start, and says why', async () => {
    const file = path.join(tmp, 'bad-menu.json');
    await fs.writeFile(file, JSON.stringify({ presets: [{ name: 'x', pipeline: [{ op: 'sepia' }] }] }));
    await expect(startDips(['master', '--port', '0', '--data-dir', path.join(tmp, 'bad')], { DIPS_PRESETS_ONLY: 'true', DIPS_PRESETS_FILE: file })).rejects.toThrow(/preset "x".*sepia/s);
  });
});
