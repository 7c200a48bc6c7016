import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { S3Storage } from '../../services/master/s3-storage.js';

const s3 = mockClient(S3Client);
const storage = new S3Storage(new S3Client({ region: 'eu-west-1' }), 'dips-bucket', 'prod/');

beforeEach(() => s3.reset());

describe('S3 storage (at the SDK boundary)', () => {
  it('uploads a spooled file under the prefix and removes the local copy', async () => {
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'dips-s3-')), 'upload');
    await fs.writeFile(file, 'image bytes');
    s3.on(PutObjectCommand).resolves({});
    await storage.putFile('jobs/j1/in/0', file);
    const [call] = s3.commandCalls(PutObjectCommand);
    expect(call!.args[0].input).toMatchObject({ Bucket: 'dips-bucket', Key: 'prod/jobs/j1/in/0', ContentLength: 11 });
    await expect(fs.access(file)).rejects.toThrow();
  });

  it('reads an object back as bytes and as a stream', async () => {
    // What the SDK returns in Node: a Readable with the SDK's helper methods mixed in.
    const body = () => Object.assign(Readable.from([Buffer.from('result')]), { transformToByteArray: async () => new Uint8Array(Buffer.from('result')) });
    s3.on(GetObjectCommand, { Bucket: 'dips-bucket', Key: 'prod/jobs/j1/out/0' }).callsFake(() => ({ Body: body() }));
    expect((await storage.getBuffer('jobs/j1/out/0')).toString()).toBe('result');
    const chunks: Buffer[] = [];
    for await (const chunk of await storage.getStream('jobs/j1/out/0')) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('result');
  });

  it('deletes every page of objects under a job prefix', async () => {
    s3.on(ListObjectsV2Command)
      .resolvesOnce({ Contents: [{ Key: 'prod/jobs/j1/in/0' }], IsTruncated: true, NextContinuationToken: 'next' })
      .resolvesOnce({ Contents: [{ Key: 'prod/jobs/j1/out/0' }], IsTruncated: false });
    s3.on(DeleteObjectsCommand).resolves({});
    await storage.deletePrefix('jobs/j1');
    expect(s3.commandCalls(ListObjectsV2Command).map((call) => call.args[0].input)).toEqual([
      { Bucket: 'dips-bucket', Prefix: 'prod/jobs/j1', ContinuationToken: undefined },
      { Bucket: 'dips-bucket', Prefix: 'prod/jobs/j1', ContinuationToken: 'next' },
    ]);
    expect(s3.commandCalls(DeleteObjectsCommand).map((call) => call.args[0].input.Delete?.Objects)).toEqual([
      [{ Key: 'prod/jobs/j1/in/0' }],
      [{ Key: 'prod/jobs/j1/out/0' }],
    ]);
  });

  it('refuses keys that could escape the prefix', async () => {
    await expect(storage.getBuffer('jobs/../../etc/passwd')).rejects.toThrow(/invalid storage key/);
    expect(s3.calls()).toHaveLength(0);
  });
});
