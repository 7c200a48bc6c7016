import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/api.js';
import { killAll, startCluster, type DipsProcess } from '../helpers/processes.js';
import {
  allItems,
  colourOf,
  filesUnder,
  manifestOf,
  parseJsonLines,
  postBatch,
  servedSchema,
  submitBatch,
  tempDir,
  waitForBatch,
  writeImages,
} from './support.js';
import { parseResponse } from '../../services/protocol/api.js';
import { errorBody } from '../../services/protocol/errors.js';
import { itemsPage } from '../../services/protocol/batch.js';

const pipeline = [{ op: 'invert' }];
let master: DipsProcess;
let sources: string;
let destinations: string;

beforeAll(async () => {
  const tmp = await tempDir('batch-file');
  sources = path.join(tmp, 'in');
  destinations = path.join(tmp, 'out');
  await fs.mkdir(sources);
  await fs.mkdir(destinations);
  ({ master } = await startCluster({
    workers: 2,
    dataDir: path.join(tmp, 'data'),
    env: { DIPS_SOURCES: `file://${sources}`, DIPS_DESTINATIONS: `file://${destinations}` },
  }));
}, 60_000);

afterAll(killAll);

describe('a file:// batch job', () => {
  it('of 1,200 small images succeeds, writes every output and the manifest under the destination, and /items pages through', async () => {
    // Over 1,000: the count above which a job's view stops listing its items.
    const count = 1200;
    const names = await writeImages(path.join(sources, 'big'), count);
    const { id } = await submitBatch(master.url, {
      pipeline,
      inputs: { prefix: `file://${sources}/big` },
      output: { prefix: `file://${destinations}/big/`, format: 'png' },
    });
    const job = await waitForBatch(master.url, id, 180_000);
    expect(job).toMatchObject({ status: 'succeeded', progress: { done: count, failed: 0, total: count } });
    // A job of more than 1,000 items does not list them in its view.
    expect(job.images).toBeUndefined();

    // The manifest copy is written as the job ends (through a partial file renamed into place, so wait for its name).
    const written = await waitUntil(() => filesUnder(path.join(destinations, 'big')), (files) => files.includes(`manifest-${id}.jsonl`), 10_000, 'the manifest copy');
    expect(written).toEqual([...names, `manifest-${id}.jsonl`].sort());
    // Outputs are the inverted inputs: spot-check pixels of a few.
    for (const n of [0, 777, count - 1]) {
      const { data } = await sharp(path.join(destinations, 'big', names[n]!)).raw().toBuffer({ resolveWithObject: true });
      const { r, g, b } = colourOf(n);
      expect([...data.subarray(0, 3)]).toEqual([255 - r, 255 - g, 255 - b]);
    }

    const { items, pages } = await allItems(master.url, id, '', 300);
    expect(pages).toBe(4);
    expect(items.map((item) => item.index)).toEqual([...Array(count).keys()]);
    expect(new Set(items.map((item) => item.name))).toEqual(new Set(names));
    expect(items.every((item) => item.status === 'succeeded' && item.output === `file://${destinations}/big/${item.name}`)).toBe(true);

    const copy = parseJsonLines(await fs.readFile(path.join(destinations, 'big', `manifest-${id}.jsonl`), 'utf8'));
    expect(copy).toEqual(await manifestOf(master.url, id));
    expect(copy).toHaveLength(count);
    expect(copy[0]).toMatchObject({ input: `file://${sources}/big/${items[0]!.name}`, output: items[0]!.output, status: 'succeeded' });
  });

  it('with 5 broken files among 500: 495 done and 5 failed; after replacing them retry finishes them; resubmitting skips all 500', async () => {
    const dir = path.join(sources, 'mixed');
    const names = await writeImages(dir, 500);
    const broken = [3, 100, 250, 251, 499].map((n) => names[n]!);
    for (const name of broken) await fs.writeFile(path.join(dir, name), 'not a png at all');
    const body = { pipeline, inputs: { prefix: `file://${dir}` }, output: { prefix: `file://${destinations}/mixed`, format: 'png' } };
    const { id } = await submitBatch(master.url, body);
    const job = await waitForBatch(master.url, id);
    expect(job).toMatchObject({ status: 'partial', progress: { done: 495, failed: 5, total: 500 } });
    const failed = (await allItems(master.url, id, '&status=failed')).items;
    expect(failed.map((item) => item.name).sort()).toEqual([...broken].sort());
    for (const item of failed) {
      expect(item.errorKind).toBe('permanent');
      expect(item.error).toMatch(new RegExp(`${item.name}: .*not an image`, 'i'));
    }
    const manifest = await manifestOf(master.url, id);
    expect(manifest.filter((line) => line.status === 'failed').map((line) => line.error)).toEqual(
      expect.arrayContaining([expect.stringContaining(broken[0]!)]),
    );

    // The good outputs are untouched by the retry: remember one's identity.
    const goodOutput = path.join(destinations, 'mixed', names[0]!);
    const before = await fs.stat(goodOutput);
    await writeImages(path.join(sources, 'replacements'), 500);
    for (const name of broken) await fs.copyFile(path.join(sources, 'replacements', name), path.join(dir, name));
    const retry = await fetch(`${master.url}/v1/jobs/${id}/retry`, { method: 'POST' });
    expect(retry.status).toBe(202);
    expect(await retry.json()).toMatchObject({ id, retried: 5 });
    const retried = await waitForBatch(master.url, id);
    expect(retried).toMatchObject({ status: 'succeeded', progress: { done: 500, failed: 0, total: 500 } });
    for (const name of broken) await expect(fs.access(path.join(destinations, 'mixed', name))).resolves.toBeUndefined();
    expect((await fs.stat(goodOutput)).mtimeMs).toBe(before.mtimeMs);
    // The manifest copy was rewritten when the retried job ended.
    const copy = await waitUntil(
      async () => parseJsonLines(await fs.readFile(path.join(destinations, 'mixed', `manifest-${id}.jsonl`), 'utf8')),
      (lines) => lines.filter((line) => line.status === 'succeeded').length === 500,
      10_000,
      'the rewritten manifest copy',
    );
    expect(copy).toHaveLength(500);

    const again = await submitBatch(master.url, body);
    expect(again.id).not.toBe(id);
    const resubmitted = await waitForBatch(master.url, again.id);
    expect(resubmitted).toMatchObject({ status: 'succeeded', progress: { done: 500, failed: 0, total: 500, skipped: 500 } });
    expect((await fs.stat(goodOutput)).mtimeMs).toBe(before.mtimeMs);
    expect((await manifestOf(master.url, again.id)).every((line) => line.status === 'skipped')).toBe(true);
  });
});

describe('several outputs per input', () => {
  it('sizes x formats from one decode: each output named, listed in /items and the manifest, and written', async () => {
    const dir = path.join(sources, 'responsive');
    await writeImages(dir, 3);
    const { id } = await submitBatch(master.url, {
      pipeline,
      inputs: { prefix: `file://${dir}` },
      output: { prefix: `file://${destinations}/responsive`, sizes: [16, 64], formats: ['webp', 'png'] },
    });
    const job = await waitForBatch(master.url, id);
    expect(job).toMatchObject({ status: 'succeeded', progress: { done: 3, total: 3 } });
    const out = `file://${destinations}/responsive/set-0/img-1`;
    const page = await parseResponse(itemsPage, await fetch(`${master.url}/v1/jobs/${id}/items`));
    expect(page.items.find((item) => item.name === 'set-0/img-1.png')!.outputs).toEqual([`${out}-16w.webp`, `${out}-16w.png`, `${out}-64w.webp`, `${out}-64w.png`]);
    // /items and the manifest answer what the master's served schemas say (outputs included).
    const itemsSchema = await servedSchema(master.url, '/v1/jobs/{id}/items', 'get', '200');
    expect(() => itemsSchema.parse(page)).not.toThrow();
    expect(() => itemsSchema.parse({ items: page.items.map((item) => ({ ...item, outputs: item.outputs!.join(',') })) })).toThrow();
    const manifest = await manifestOf(master.url, id);
    const lineSchema = await servedSchema(master.url, '/v1/jobs/{id}/manifest', 'get', '200', 'application/x-ndjson');
    for (const entry of manifest) expect(() => lineSchema.parse(entry)).not.toThrow();
    const line = manifest.find((entry) => entry.input === `file://${dir}/set-0/img-1.png`)!;
    expect(line.outputs).toHaveLength(4);
    expect(() => lineSchema.parse({ ...line, outputs: 4 })).toThrow();
    const file = (suffix: string) => path.join(destinations, 'responsive', 'set-0', `img-1${suffix}`);
    expect(await sharp(file('-16w.webp')).metadata()).toMatchObject({ format: 'webp', width: 16, height: 16 });
    // 64 px is wider than the 32 px input: not enlarged.
    const wide = await sharp(file('-64w.png')).raw().toBuffer({ resolveWithObject: true });
    expect(wide.info).toMatchObject({ width: 32, height: 32 });
    const { r, g, b } = colourOf(1);
    expect([...wide.data.subarray(0, 3)]).toEqual([255 - r, 255 - g, 255 - b]);
  });
});

describe('maxFailures', () => {
  it('stops a job that fails wholesale, says so, and runs none of the rest', async () => {
    const dir = path.join(sources, 'all-broken');
    const names = await writeImages(dir, 200);
    for (const name of names) await fs.writeFile(path.join(dir, name), 'garbage');
    const { id } = await submitBatch(master.url, { pipeline, inputs: { prefix: `file://${dir}` }, maxFailures: '1%' });
    const job = await waitForBatch(master.url, id);
    expect(job.status).toBe('failed');
    expect(job.error).toMatch(/^stopped: \d+ items failed, more than maxFailures "1%" \(2 of 200\)/);
    expect(job.progress.failed).toBeGreaterThan(2);
    const canceled = (await allItems(master.url, id, '&status=canceled')).items;
    expect(canceled.length).toBe(200 - job.progress.failed);
    expect(canceled.length).toBeGreaterThan(100);
  });
});

describe('roots and traversal', () => {
  it('refuses inputs and outputs outside DIPS_SOURCES / DIPS_DESTINATIONS with 403 naming the root, and ".." escapes', async () => {
    const cases: Array<[unknown, string]> = [
      [{ prefix: 'file:///etc' }, 'DIPS_SOURCES'],
      [{ prefix: `file://${sources}/../out` }, '..'],
      [{ prefix: `file://${sources}/%2e%2e/out` }, '..'],
      [{ urls: [`file://${sources}/a.png`, 's3://other-bucket/x.png'] }, 'DIPS_SOURCES'],
    ];
    for (const [inputs, named] of cases) {
      const response = await postBatch(master.url, { pipeline, inputs, output: { prefix: `file://${destinations}/x` } });
      expect(response.status, JSON.stringify(inputs)).toBe(403);
      const { error } = await parseResponse(errorBody, response);
      expect(error.message).toContain(named);
      if (named === 'DIPS_SOURCES') expect(error.message).toContain(`file://${sources}`);
    }
    const outside = await postBatch(master.url, { pipeline, inputs: { prefix: `file://${sources}` }, output: { prefix: `file://${sources}/results` } });
    expect(outside.status).toBe(403);
    expect((await parseResponse(errorBody, outside)).error.message).toContain(`DIPS_DESTINATIONS=file://${destinations}`);
  });

  it('a symbolic link out of the root fails that item alone; a listed URL outside the root fails per item too', async () => {
    const dir = path.join(sources, 'links');
    await writeImages(dir, 3);
    const secret = path.join(path.dirname(sources), 'secret.png');
    await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } }).png().toFile(secret);
    await fs.symlink(secret, path.join(dir, 'set-0', 'escape.png'));
    const { id } = await submitBatch(master.url, { pipeline, inputs: { prefix: `file://${dir}` }, output: { prefix: `file://${destinations}/links` } });
    const job = await waitForBatch(master.url, id);
    expect(job).toMatchObject({ status: 'partial', progress: { done: 3, failed: 1, total: 4 } });
    const [failed] = (await allItems(master.url, id, '&status=failed')).items;
    expect(failed).toMatchObject({ name: 'set-0/escape.png', errorKind: 'permanent' });
    expect(failed!.error).toMatch(/outside every allowed root/);
    await expect(fs.access(path.join(destinations, 'links', 'set-0', 'escape.png'))).rejects.toThrow();
  });

  it('rejects a malformed body with 400 naming the field', async () => {
    const response = await postBatch(master.url, { pipeline, inputs: { folder: 'x' } });
    expect(response.status).toBe(400);
    expect((await parseResponse(errorBody, response)).error.message).toMatch(/inputs/);
  });
});
