import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import exifReader from 'exif-reader';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { itemsPage, manifestLine } from '../../services/protocol/batch.js';
import { duplicatesReport } from '../../services/protocol/presets.js';
import { corpus, download, getJob, pixelsOf, submit, waitForJob } from '../helpers/api.js';
import { killAll, startCluster, type DipsProcess } from '../helpers/processes.js';
import { submitBatch, waitForBatch } from '../batch/support.js';
import { parseResponse } from '../../services/protocol/api.js';
import { errorBody } from '../../services/protocol/errors.js';

/*
 * What a job gives back besides pixels, on a real master and worker: output options reach the encoder,
 * analysis annotations reach the job view, /items and the manifest (uploads and batch jobs, whole and
 * tiled images), and the duplicates report groups a re-encoded copy with its original.
 */

let master: DipsProcess;
let sources: string;
let destinations: string;
/** 160 px photos (whole path: under the tile size): one with an ICC profile and GPS EXIF, its re-encoded copy, another photo. */
let withGps: string;
let copy: string;
let other: string;
const gps = { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1', GPSLongitudeRef: 'W', GPSLongitude: '0/1 7/1 30/1' };

beforeAll(async () => {
  const tmp = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'dips-outputs-')));
  sources = path.join(tmp, 'in');
  destinations = path.join(tmp, 'out');
  await fs.mkdir(sources);
  await fs.mkdir(destinations);
  withGps = path.join(sources, 'aqua.jpg');
  copy = path.join(sources, 'aqua-copy.jpg');
  other = path.join(sources, 'dune.png');
  const small = sharp(corpus('aqua.jpg')).resize(160);
  await fs.writeFile(withGps, await small.clone().withIccProfile('p3').withExif({ IFD0: { Make: 'DIPS' }, IFD3: gps }).jpeg({ quality: 90 }).toBuffer());
  await fs.writeFile(copy, await sharp(withGps).jpeg({ quality: 40 }).toBuffer());
  await fs.writeFile(other, await sharp(corpus('dune.jpg')).resize(160).png().toBuffer());
  ({ master } = await startCluster({
    workers: 1,
    dataDir: path.join(tmp, 'data'),
    env: { DIPS_TILE_SIZE: '512', DIPS_SOURCES: `file://${sources}`, DIPS_DESTINATIONS: `file://${destinations}` },
  }));
}, 60_000);
afterAll(killAll);

const jsonOf = async (url: string) => {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${await response.text()}`);
  return response.json() as Promise<unknown>;
};
const exifOf = async (image: Buffer) => {
  const { exif, icc, isProgressive } = await sharp(image).metadata();
  return { exif: exif && exifReader(exif), icc: icc !== undefined, isProgressive };
};

describe('output options on the job path', () => {
  it('metadata exif keeps EXIF and ICC but not GPS; strip (the default) keeps none; progressive JPEG; lossless WebP is pixel-identical', async () => {
    const kept = await submit(master.url, [withGps], { pipeline: '[]', options: JSON.stringify({ metadata: 'exif', progressive: true }) });
    const stripped = await submit(master.url, [withGps], { pipeline: '[]', format: 'jpeg' });
    const lossless = await submit(master.url, [other], { pipeline: '[]', format: 'webp', options: '{"lossless":true}' });
    for (const id of [kept, stripped, lossless]) expect((await waitForJob(master.url, id)).status).toBe('succeeded');

    const exif = await exifOf(await download(master.url, kept, 0));
    expect(exif).toMatchObject({ icc: true, isProgressive: true, exif: { Image: { Make: 'DIPS' } } });
    expect(exif.exif?.GPSInfo).toBeUndefined();
    expect(await exifOf(await download(master.url, stripped, 0))).toEqual({ exif: undefined, icc: false, isProgressive: false });
    const webp = await download(master.url, lossless, 0);
    expect((await sharp(webp).metadata()).format).toBe('webp');
    expect((await pixelsOf(webp)).data.equals((await pixelsOf(other)).data)).toBe(true);
  });

  it('options the schema refuses get 422 naming them; malformed JSON 400', async () => {
    const { postJob } = await import('../helpers/api.js');
    const unknown = await postJob(master.url, [other], { pipeline: '[]', options: '{"strip":true}' });
    expect(unknown.status).toBe(422);
    expect(await unknown.text()).toMatch(/bad_options.*strip/);
    const effort = await postJob(master.url, [other], { pipeline: '[]', format: 'webp', options: '{"effort":9}' });
    expect([effort.status, await effort.text()]).toEqual([422, expect.stringMatching(/maximum of 6/)]);
    expect((await postJob(master.url, [other], { pipeline: '[]', options: '{' })).status).toBe(400);
  });
});

describe('annotations and duplicates', () => {
  it('reach images[].annotations, /items and the manifest on the whole and the tiled path; the report groups the re-encoded copy', async () => {
    const pipeline = JSON.stringify([{ op: 'qr' }, { op: 'phash' }, { op: 'thumbhash' }, { op: 'metadata' }]);
    // qr-on-photo is 1400x875: above DIPS_TILE_SIZE, so it takes the tiled path.
    const id = await submit(master.url, [withGps, copy, other, corpus('qr-on-photo.jpg')], { pipeline });
    const job = await waitForJob(master.url, id);
    expect(job.status).toBe('succeeded');
    const images = (await getJob(master.url, id)).images as Array<{ name: string; qr?: string[]; annotations?: Record<string, unknown> }>;
    for (const image of images) {
      expect(image.annotations?.phash, image.name).toMatch(/^[0-9a-f]{16}$/);
      expect(image.annotations?.thumbhash, image.name).toEqual(expect.any(String));
      expect(image.annotations?.metadata, image.name).toBeDefined();
    }
    expect(images[0]!.annotations!.metadata).toMatchObject({ gps: true });
    expect(images[3]!.qr).toEqual([expect.any(String)]);
    expect(images[3]!.annotations!.qr).toEqual(images[3]!.qr);

    const items = itemsPage.parse(await jsonOf(`${master.url}/v1/jobs/${id}/items`)).items;
    expect(items.map((item) => item.annotations)).toEqual(images.map((image) => image.annotations));
    const manifest = (await (await fetch(`${master.url}/v1/jobs/${id}/manifest`)).text()).trim().split('\n').map((line) => manifestLine.parse(JSON.parse(line)));
    expect(manifest.map((line) => line.annotations)).toEqual(images.map((image) => image.annotations));

    const report = duplicatesReport.parse(await jsonOf(`${master.url}/v1/jobs/${id}/duplicates`));
    expect(report.groups).toHaveLength(1);
    const [original, duplicate] = report.groups[0]!.items;
    expect([original!.name, duplicate!.name]).toEqual(['aqua.jpg', 'aqua-copy.jpg']);
    expect(duplicate!.distance).toBeLessThanOrEqual(report.threshold);

    const unhashed = await submit(master.url, [other], { pipeline: '[]' });
    const refused = await fetch(`${master.url}/v1/jobs/${unhashed}/duplicates`);
    expect([refused.status, (await parseResponse(errorBody, refused)).error.code]).toEqual([409, 'no_phash']);
  });

  it('a batch job naming a preset: annotations in /items and the manifest, the preset\'s options in the written files, duplicates grouped', async () => {
    const preset = { pipeline: [{ op: 'phash' }], format: 'jpeg', options: { metadata: 'exif' } };
    expect((await fetch(`${master.url}/v1/presets/hash`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(preset) })).status).toBe(201);
    const { id } = await submitBatch(master.url, { preset: 'hash', inputs: { prefix: `file://${sources}/` }, output: { prefix: `file://${destinations}/` } });
    expect((await waitForBatch(master.url, id)).status).toBe('succeeded');
    const items = itemsPage.parse(await jsonOf(`${master.url}/v1/jobs/${id}/items`)).items;
    expect(items.map((item) => [item.name, typeof item.annotations?.phash]).sort()).toEqual([
      ['aqua-copy.jpg', 'string'],
      ['aqua.jpg', 'string'],
      ['dune.png', 'string'],
    ]);
    const manifest = (await (await fetch(`${master.url}/v1/jobs/${id}/manifest`)).text()).trim().split('\n').map((line) => manifestLine.parse(JSON.parse(line)));
    expect(manifest.map((line) => line.annotations)).toEqual(items.map((item) => item.annotations));
    const written = await exifOf(await fs.readFile(path.join(destinations, 'aqua.jpg')));
    expect(written.exif).toMatchObject({ Image: { Make: 'DIPS' } });
    expect(written.exif?.GPSInfo).toBeUndefined();
    const report = duplicatesReport.parse(await jsonOf(`${master.url}/v1/jobs/${id}/duplicates`));
    expect(report.groups.map((group) => group.items.map((item) => item.name).sort())).toEqual([['aqua-copy.jpg', 'aqua.jpg']]);
  });
});
