import fs from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Objects } from '../../services/master/batch/objects.js';
import { waitUntil } from '../helpers/api.js';
import { killAll, startCluster, type DipsProcess } from '../helpers/processes.js';
import { allItems, colourOf, getBatchJob, manifestOf, parseJsonLines, startS3Server, submitBatch, tempDir, waitForBatch, writeImages } from './support.js';

// A real S3-protocol server on loopback (the maintained s3rver), spoken to with the real AWS SDK by the test and the master.
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
let server: { endpoint: string; stop(): void };
let s3Dir: string;
let client: S3Client;
let endpoint: string;
let master: DipsProcess;
const itemCount = 1200;

beforeAll(async () => {
  const tmp = await tempDir('batch-s3');
  s3Dir = path.join(tmp, 's3');
  server = await startS3Server(s3Dir, ['photos', 'results']);
  endpoint = server.endpoint;
  client = new S3Client({ endpoint, region: 'us-east-1', credentials, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED' });
  const local = path.join(tmp, 'images');
  // Over one S3 list page (1,000 keys) and one /items page: enough to show both are followed page by page.
  const names = await writeImages(local, itemCount);
  for (let start = 0; start < names.length; start += 50) {
    await Promise.all(
      names.slice(start, start + 50).map(async (name) =>
        client.send(new PutObjectCommand({ Bucket: 'photos', Key: `in/${name}`, Body: await fs.readFile(path.join(local, name)) })),
      ),
    );
  }
  ({ master } = await startCluster({
    workers: 2,
    dataDir: path.join(tmp, 'data'),
    env: {
      DIPS_SOURCES: 's3://photos/in/',
      DIPS_DESTINATIONS: 's3://results/',
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      // Storage retries back off from 0.3 s, doubling (the master's 4, and the dispatcher's 8 attempts of a
      // worker's transfer: 0.3 + 0.6 + ... + 19.2 s): room for the S3 server to come back in the outage test.
      DIPS_RETRY_BASE_MS: '300',
      DIPS_MAX_ATTEMPTS: '8',
    },
  }));
}, 180_000);

afterAll(async () => {
  await killAll();
  server?.stop();
});

async function keysUnder(bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    keys.push(...(page.Contents ?? []).map((object) => object.Key!));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

const read = async (bucket: string, key: string) =>
  Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());

describe('an s3:// batch job against an S3-protocol server on loopback', () => {
  it('of 1,200 small images lists the prefix page by page, writes every output and the manifest to the output prefix', async () => {
    const { id } = await submitBatch(master.url, {
      pipeline: [{ op: 'invert' }],
      inputs: { prefix: 's3://photos/in/' },
      output: { prefix: 's3://results/run-1/', format: 'webp', quality: 90 },
    });
    const job = await waitForBatch(master.url, id, 240_000);
    expect(job.error).toBeUndefined();
    expect(job).toMatchObject({ status: 'succeeded', progress: { done: itemCount, failed: 0, total: itemCount } });

    const keys = await waitUntil(() => keysUnder('results', 'run-1/'), (found) => found.length === itemCount + 1, 15_000, 'outputs and manifest');
    expect(keys).toContain(`run-1/manifest-${id}.jsonl`);
    expect(keys).toContain('run-1/set-2/img-1177.webp');
    const output = await sharp(await read('results', 'run-1/set-2/img-1177.webp')).raw().toBuffer({ resolveWithObject: true });
    expect(output.info).toMatchObject({ width: 32, height: 32, format: 'raw' });
    const { r, g, b } = colourOf(1177);
    // WebP at q90 is lossy: within a few levels of the inverted colour.
    expect(Math.abs(output.data[0]! - (255 - r))).toBeLessThanOrEqual(6);
    expect(Math.abs(output.data[1]! - (255 - g))).toBeLessThanOrEqual(6);
    expect(Math.abs(output.data[2]! - (255 - b))).toBeLessThanOrEqual(6);

    const { items, pages } = await allItems(master.url, id, '', 1000);
    expect(pages).toBe(2);
    expect(items.find((item) => item.name === 'set-2/img-1177.png')).toMatchObject({
      input: 's3://photos/in/set-2/img-1177.png',
      output: 's3://results/run-1/set-2/img-1177.webp',
      status: 'succeeded',
    });
    const copy = parseJsonLines((await read('results', `run-1/manifest-${id}.jsonl`)).toString());
    expect(copy).toEqual(await manifestOf(master.url, id));
  }, 240_000);

  it('a manifest (.csv) names inputs; one outside DIPS_SOURCES fails alone', async () => {
    const csv = ['url,label', 's3://photos/in/set-0/img-1.png,a', 's3://photos/in/set-0/img-2.png,b', 's3://results/run-1/set-0/img-3.webp,c', ''].join('\n');
    await client.send(new PutObjectCommand({ Bucket: 'photos', Key: 'in/list.csv', Body: csv }));
    const { id } = await submitBatch(master.url, {
      pipeline: [{ op: 'grayscale' }],
      inputs: { manifest: 's3://photos/in/list.csv' },
      output: { prefix: 's3://results/from-csv/', format: 'png' },
    });
    const job = await waitForBatch(master.url, id);
    expect(job).toMatchObject({ status: 'partial', progress: { done: 2, failed: 1, total: 3 } });
    expect(await keysUnder('results', 'from-csv/set-0/')).toEqual(['from-csv/set-0/img-1.png', 'from-csv/set-0/img-2.png']);
    const [failed] = (await allItems(master.url, id, '&status=failed')).items;
    expect(failed!.error).toMatch(/s3:\/\/results\/run-1\/set-0\/img-3\.webp is not under a root of DIPS_SOURCES \(allowed: DIPS_SOURCES=s3:\/\/photos\/in\//);
  });

  it('an S3 outage mid-job is a transient error: retried with backoff, no item fails', async () => {
    const { id } = await submitBatch(master.url, {
      pipeline: [{ op: 'blur', sigma: 2 }],
      // A key prefix, as S3 lists it: set-1/img-500 ... set-1/img-599.
      inputs: { prefix: 's3://photos/in/set-1/img-5' },
      output: { prefix: 's3://results/outage/', format: 'png' },
    });
    await waitUntil(() => getBatchJob(master.url, id), (job) => job.progress.done >= 20, 60_000, '20 items done');
    server.stop();
    await new Promise((resolve) => setTimeout(resolve, 300));
    server = await startS3Server(s3Dir, ['photos', 'results'], Number(new URL(endpoint).port));
    const job = await waitForBatch(master.url, id);
    expect((await allItems(master.url, id, '&status=failed')).items.map((item) => item.error)).toEqual([]);
    expect(job).toMatchObject({ status: 'succeeded', progress: { done: 100, failed: 0, total: 100 } });
    // A key prefix is no folder: outputs keep the inputs' base names, outage/img-500.png ... outage/img-599.png.
    expect((await keysUnder('results', 'outage/')).filter((key) => key.endsWith('.png'))).toEqual(Array.from({ length: 100 }, (_, n) => `outage/img-${500 + n}.png`).sort());
  });

  it("a listing's ETag and size are the ones a HEAD reads: a listed item's content key is the one a named item gets", async () => {
    // The SDK client speaks to s3rver as the master's does (path style); stat is the presigned HEAD listed items no longer send.
    const objects = new S3Objects(client);
    const listed = [];
    for await (const object of objects.list({ scheme: 's3', bucket: 'photos', key: 'in/set-2/img-117' })) listed.push(object);
    expect(listed.length).toBeGreaterThan(0);
    for (const object of listed) {
      expect(object.version).toBeDefined();
      expect(await objects.stat(object.location)).toEqual(object.version);
    }
  });
});
