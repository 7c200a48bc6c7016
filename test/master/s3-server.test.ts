import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Storage } from '../../services/master/s3-storage.js';
import { VersionChanged } from '../../services/master/storage.js';
import { startS3Server } from '../../bench/s3-server.js';

/* S3Storage against a real S3-protocol server on loopback, through the real SDK: what workers and
   clients do with the URLs it presigns is plain HTTP, with no AWS credentials. */

let s3: Awaited<ReturnType<typeof startS3Server>>;
let storage: S3Storage;
beforeAll(async () => {
  s3 = await startS3Server();
  storage = new S3Storage(s3.client, s3.bucket, 'dips/');
});
afterAll(() => s3.close());

const urlOf = async (key: string, access: 'get' | 'put') => {
  const location = await storage.locate(key, access);
  if (location.via !== 'url') throw new Error(`expected a URL, got ${location.via}`);
  return location.url;
};

describe('S3 storage on a real S3-protocol server', () => {
  it('streams an upload of several parts (multipart) and reads it back intact', async () => {
    // lib-storage cuts 5 MiB parts: 11 MiB makes three.
    const data = randomBytes(11 * 1024 * 1024);
    const chunks = Array.from({ length: 11 }, (_, i) => data.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024));
    await storage.putStream('jobs/j1/in/0', Readable.from(chunks));
    expect((await storage.getBuffer('jobs/j1/in/0')).equals(data)).toBe(true);
  });

  it('copies an object pinned to the version that was checked, and refuses one stored again since with VersionChanged', async () => {
    await storage.putBuffer('uploads/s1/0', Buffer.from('checked bytes'));
    const checked = (await storage.listObjects('uploads/s1')).get('uploads/s1/0')!.etag;
    await storage.copyObject('uploads/s1/0', 'jobs/j0/in/0', checked);
    expect((await storage.getBuffer('jobs/j0/in/0')).toString()).toBe('checked bytes');
    // The client stores the file again through its still valid URL: the pinned copy must not take it.
    await storage.putBuffer('uploads/s1/0', Buffer.from('other  bytes!'));
    await expect(storage.copyObject('uploads/s1/0', 'jobs/j0/in/1', checked)).rejects.toBeInstanceOf(VersionChanged);
    await expect(storage.getBuffer('jobs/j0/in/1')).rejects.toThrow();
  });

  it('pins a presigned GET with If-Match: the version checked reads, one stored again since answers 412', async () => {
    await storage.putBuffer('uploads/s2/0', Buffer.from('checked bytes'));
    const checked = (await storage.listObjects('uploads/s2')).get('uploads/s2/0')!.etag!;
    const url = await urlOf('uploads/s2/0', 'get');
    expect(await (await fetch(url, { headers: { 'if-match': checked } })).text()).toBe('checked bytes');
    await storage.putBuffer('uploads/s2/0', Buffer.from('other  bytes!'));
    expect((await fetch(url, { headers: { 'if-match': checked } })).status).toBe(412);
  });

  it('presigns a GET a worker reads with plain fetch, whole or by byte range', async () => {
    const data = randomBytes(300_000);
    await storage.putBuffer('jobs/j2/in/0', data);
    const url = await urlOf('jobs/j2/in/0', 'get');
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(data)).toBe(true);
    const part = await fetch(url, { headers: { range: 'bytes=100000-199999' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(100_000, 200_000))).toBe(true);
  });

  it('an object written by parts in any order through presigned UploadPart URLs is whole once closed; intermediates delete by key', async () => {
    const key = 'jobs/j5/work/0/stage-1.v';
    const data = randomBytes(3000);
    const pieces = [{ start: 0, end: 999 }, { start: 1000, end: 2199 }, { start: 2200, end: 2999 }];
    const upload = await storage.openParts(key);
    const tags: string[] = [];
    // Workers finish their strips out of order; each answers the ETag storage gave its part.
    for (const index of [2, 0, 1]) {
      const range = pieces[index]!;
      const location = await storage.locatePart(key, upload, { number: index + 1, range });
      if (location.via !== 'url') throw new Error('expected a URL');
      expect(location.range).toEqual(range);
      const put = await fetch(location.url, { method: 'PUT', body: data.subarray(range.start, range.end + 1) });
      expect(put.status).toBe(200);
      tags[index] = put.headers.get('etag')!;
    }
    await storage.closeParts(key, upload, tags);
    expect((await storage.getBuffer(key)).equals(data)).toBe(true);
    const chunks: Buffer[] = [];
    for await (const chunk of await storage.getStream(key, { start: 1000, end: 2199 })) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(data.subarray(1000, 2200))).toBe(true);
    await storage.deleteKeys([key, 'jobs/j5/work/0/stage-2.v']);
    await expect(storage.getBuffer(key)).rejects.toThrow();
  });

  it('presigns a PUT a worker writes with plain fetch; a tampered URL is refused', async () => {
    const data = randomBytes(50_000);
    const url = await urlOf('jobs/j3/out/0', 'put');
    expect((await fetch(url, { method: 'PUT', body: data })).status).toBe(200);
    expect((await storage.getBuffer('jobs/j3/out/0')).equals(data)).toBe(true);
    const forged = url.replace('jobs%2Fj3%2Fout%2F0', 'jobs%2Fj4%2Fout%2F0').replace('jobs/j3/out/0', 'jobs/j4/out/0');
    expect(forged).not.toBe(url);
    expect((await fetch(forged, { method: 'PUT', body: data })).status).toBe(403);
    await expect(storage.getBuffer('jobs/j4/out/0')).rejects.toThrow();
  });

  // An ASCII name: s3rver checks signatures with encodeURIComponent, which leaves the * and ' of an RFC 5987
  // name unescaped where S3 escapes them, so it refuses UTF-8 names that S3 itself accepts.
  it('presigns a download that names the file and its type for the client', async () => {
    await storage.putBuffer('jobs/j5/out/0', Buffer.from('png bytes'));
    const response = await fetch(await storage.downloadUrl('jobs/j5/out/0', { fileName: 'garden odd.png', contentType: 'image/png' }));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="garden odd.png"');
    expect(await response.text()).toBe('png bytes');
  });
});
