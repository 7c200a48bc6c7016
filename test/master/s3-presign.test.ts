import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server } from '../../bench/s3-server.js';
import { ItemError } from '../../services/master/batch/item-error.js';
import { S3Objects } from '../../services/master/batch/objects.js';
import { S3Presigner } from '../../services/master/s3-presign.js';
import { presignedSeconds } from '../../services/master/storage.js';

// The fast presigner must sign exactly as the SDK does: the same URL for the same request and instant
// (parameters compared in sorted order: their order is not signed).
const signingDate = new Date('2026-12-02T04:00:00Z');
const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
// Checksums as the master's clients have them (only where S3 requires them): otherwise the SDK adds x-amz-checksum-mode to GETs.
const checksums = { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } as const;
const clients = {
  'AWS, virtual-hosted bucket': new S3Client({ region: 'eu-west-1', credentials, ...checksums }),
  'custom endpoint, path style, session token': new S3Client({
    ...checksums,
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:4569',
    forcePathStyle: true,
    credentials: { ...credentials, sessionToken: 'session/token+with=odd chars' },
  }),
};
const keys = ['jobs/0b7c/out/0', 'in/photos 2026/été (1)*!.jpg'];

function sorted(url: string): string {
  const parsed = new URL(url);
  parsed.searchParams.sort();
  return parsed.href;
}

describe.each(Object.entries(clients))('the presigner against getSignedUrl: %s', (_name, client) => {
  const presigner = new S3Presigner(client);
  const sdkOptions = { expiresIn: presignedSeconds, signingDate };

  it.each(keys)('GET, HEAD and PUT of %s', async (key) => {
    expect(sorted(await presigner.url('HeadObject', 'dips-bucket', key, {}, signingDate))).toEqual(sorted(await getSignedUrl(client, new HeadObjectCommand({ Bucket: 'dips-bucket', Key: key }), sdkOptions)));
    expect(sorted(await presigner.url('GetObject', 'dips-bucket', key, {}, signingDate))).toEqual(sorted(await getSignedUrl(client, new GetObjectCommand({ Bucket: 'dips-bucket', Key: key }), sdkOptions)));
    expect(sorted(await presigner.url('PutObject', 'dips-bucket', key, {}, signingDate))).toEqual(sorted(await getSignedUrl(client, new PutObjectCommand({ Bucket: 'dips-bucket', Key: key }), sdkOptions)));
  });

  it('a URL of the next day, after one of this day (the signing key is derived again for it)', async () => {
    const nextDay = new Date(signingDate.getTime() + 24 * 3600 * 1000);
    for (const date of [signingDate, nextDay, signingDate]) {
      expect(sorted(await presigner.url('GetObject', 'dips-bucket', keys[0]!, {}, date))).toEqual(
        sorted(await getSignedUrl(client, new GetObjectCommand({ Bucket: 'dips-bucket', Key: keys[0]! }), { ...sdkOptions, signingDate: date })),
      );
    }
  });

  it('a download that names its file and type, and an UploadPart', async () => {
    const disposition = `attachment; filename="r sum.jpg"; filename*=UTF-8''r%C3%A9sum.jpg`;
    expect(sorted(await presigner.url('GetObject', 'dips-bucket', keys[1]!, { 'response-content-disposition': disposition, 'response-content-type': 'image/jpeg' }, signingDate))).toEqual(
      sorted(await getSignedUrl(client, new GetObjectCommand({ Bucket: 'dips-bucket', Key: keys[1]!, ResponseContentDisposition: disposition, ResponseContentType: 'image/jpeg' }), sdkOptions)),
    );
    expect(sorted(await presigner.url('UploadPart', 'dips-bucket', keys[0]!, { partNumber: '7', uploadId: 'up/load~id' }, signingDate))).toEqual(
      sorted(await getSignedUrl(client, new UploadPartCommand({ Bucket: 'dips-bucket', Key: keys[0]!, PartNumber: 7, UploadId: 'up/load~id' }), sdkOptions)),
    );
  });
});

describe('an S3 input\'s version, read by a presigned HEAD, on a real S3-protocol server', () => {
  let s3: Awaited<ReturnType<typeof startS3Server>>;
  beforeAll(async () => {
    s3 = await startS3Server();
  });
  afterAll(() => s3.close());

  it('is the ETag and size the SDK reads; a missing object is none; refused credentials fail permanently', async () => {
    const key = 'in/photos 2026/été (1).jpg';
    const body = Buffer.from('not really a photo, but bytes with a version');
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }));
    const sdk = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
    const objects = new S3Objects(s3.client);
    expect(await objects.stat({ scheme: 's3', bucket: s3.bucket, key })).toEqual({ fingerprint: sdk.ETag, size: body.length });
    expect(await objects.stat({ scheme: 's3', bucket: s3.bucket, key: 'in/missing.jpg' })).toBeUndefined();
    const refused = new S3Objects(new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'wrong' } }));
    const failure = await refused.stat({ scheme: 's3', bucket: s3.bucket, key }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ItemError);
    expect(failure).toMatchObject({ kind: 'permanent', message: expect.stringMatching(/storage answered 403/) });
  });
});
