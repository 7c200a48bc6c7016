import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PermanentTaskError } from '../../services/master/dispatcher.js';
import { errorKindOf, ItemError } from '../../services/master/batch/item-error.js';
import { contentKey, resolveItem } from '../../services/master/batch/locations.js';
import { FileObjects, type ListedObject } from '../../services/master/batch/objects.js';
import { failureLimit } from '../../services/master/batch/runner.js';
import { formatUri, parseUri, Roots } from '../../services/master/batch/uri.js';

const refusal = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    return { status: (error as { status?: number }).status, message: (error as Error).message };
  }
  return undefined;
};

describe('storage URIs and roots', () => {
  it('parses s3://bucket/key and file:///path; refuses other schemes and relative paths with 400', () => {
    expect(parseUri('s3://my-bucket/in/a b.png')).toEqual({ scheme: 's3', bucket: 'my-bucket', key: 'in/a b.png' });
    expect(parseUri('file:///data/in/%C3%A9t%C3%A9.jpg')).toEqual({ scheme: 'file', path: '/data/in/été.jpg' });
    for (const bad of ['http://x/y', 'file://relative/path', 's3://', 'data/in']) expect(refusal(() => parseUri(bad))?.status, bad).toBe(400);
  });

  it('refuses "." and ".." segments, also percent-encoded, with 403', () => {
    for (const bad of ['file:///data/in/../etc', 's3://bkt/in/%2E%2E/x', 'file:///data/./in', 's3://bkt/a/..']) {
      expect(refusal(() => parseUri(bad)), bad).toMatchObject({ status: 403, message: expect.stringContaining('..') });
    }
  });

  it('a root is a folder: covers what is under it, not a sibling sharing its name as a prefix', () => {
    const roots = new Roots('DIPS_SOURCES', 's3://bkt/in, file:///data/photos/');
    expect(formatUri(roots.rootOf(parseUri('s3://bkt/in/x/y.png'), 'input'))).toBe('s3://bkt/in');
    expect(formatUri(roots.rootOf(parseUri('file:///data/photos'), 'input'))).toBe('file:///data/photos/');
    expect(refusal(() => roots.rootOf(parseUri('s3://bkt/inx/y.png'), 'input'))).toEqual({
      status: 403,
      message: 'input s3://bkt/inx/y.png is not under a root of DIPS_SOURCES (allowed: DIPS_SOURCES=s3://bkt/in,file:///data/photos/)',
    });
    expect(refusal(() => new Roots('DIPS_DESTINATIONS', '').rootOf(parseUri('file:///tmp/x'), 'output prefix'))?.message).toContain(
      'DIPS_DESTINATIONS is empty, so none is allowed',
    );
  });
});

describe('item locations and the content key', () => {
  it('names outputs <prefix><relative path without extension>.<ext>, and sizes x formats <stem>-<size>w.<ext>', () => {
    const item = { name: 'trip/day 1/photo.jpeg', source: 's3://bkt/in/trip/day%201/photo.jpeg' };
    expect(resolveItem({ output: { prefix: 's3://out/web', format: 'webp' } }, item).outputs.map((o) => formatUri(o.location))).toEqual([
      's3://out/web/trip/day 1/photo.webp',
    ]);
    expect(resolveItem({ output: { prefix: 'file:///r/' } }, item).outputs.map((o) => formatUri(o.location))).toEqual(['file:///r/trip/day 1/photo.jpg']);
    const responsive = resolveItem({ output: { prefix: 's3://out/', sizes: [320, 640], formats: ['webp', 'avif'] } }, item).outputs;
    expect(responsive.map((o) => [formatUri(o.location), o.width, o.format])).toEqual([
      ['s3://out/trip/day 1/photo-320w.webp', 320, 'webp'],
      ['s3://out/trip/day 1/photo-320w.avif', 320, 'avif'],
      ['s3://out/trip/day 1/photo-640w.webp', 640, 'webp'],
      ['s3://out/trip/day 1/photo-640w.avif', 640, 'avif'],
    ]);
  });

  it('the content key changes with the input version, the pipeline and the outputs, and only with them', () => {
    const outputs = resolveItem({ output: { prefix: 's3://out/', format: 'png' } }, { name: 'a.jpg', source: 's3://bkt/a.jpg' }).outputs;
    const input = { uri: 's3://bkt/a.jpg', fingerprint: '"etag-1"' };
    const key = contentKey(input, [{ op: 'blur', sigma: 2 }], outputs);
    expect(contentKey({ ...input }, [{ op: 'blur', sigma: 2 }], outputs)).toBe(key);
    expect(contentKey({ ...input, fingerprint: '"etag-2"' }, [{ op: 'blur', sigma: 2 }], outputs)).not.toBe(key);
    expect(contentKey(input, [{ op: 'blur', sigma: 3 }], outputs)).not.toBe(key);
    expect(contentKey(input, [{ op: 'blur', sigma: 2 }], [{ ...outputs[0]!, quality: 50 }])).not.toBe(key);
  });
});

describe('errors and maxFailures', () => {
  it('bad inputs are permanent; storage timeouts, 5xx and throttling are transient', () => {
    expect(errorKindOf(new ItemError('permanent', 'x'))).toBe('permanent');
    expect(errorKindOf(new PermanentTaskError('422 corrupt'))).toBe('permanent');
    expect(errorKindOf(Object.assign(new Error('gone'), { code: 'ENOENT' }))).toBe('permanent');
    expect(errorKindOf(Object.assign(new Error('denied'), { $metadata: { httpStatusCode: 403 } }))).toBe('permanent');
    expect(errorKindOf(Object.assign(new Error('slow down'), { $metadata: { httpStatusCode: 503 } }))).toBe('transient');
    expect(errorKindOf(Object.assign(new Error('throttled'), { $metadata: { httpStatusCode: 429 } }))).toBe('transient');
    expect(errorKindOf(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe('transient');
    expect(errorKindOf(new Error('failed after 5 attempts; last: worker unreachable'))).toBe('transient');
  });

  it('maxFailures is a count or a percentage of the items listed', () => {
    expect(failureLimit(10, 500)).toBe(10);
    expect(failureLimit('5%', 500)).toBe(25);
    expect(failureLimit('0.5%', 999)).toBe(4);
  });
});

describe('files listed from a folder', () => {
  it('carry their version from the listing; one deleted before its item runs is gone, as stat says', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-listed-'));
    try {
      await fs.writeFile(path.join(root, 'a.png'), 'a');
      await fs.writeFile(path.join(root, 'b.png'), 'bb');
      const folder = parseUri(`file://${root}/`);
      const files = new FileObjects([folder]);
      const listed: ListedObject[] = [];
      for await (const object of files.list(folder)) listed.push(object);
      expect(listed.map((object) => object.version?.size)).toEqual([1, 2]);
      const [a, b] = listed;
      expect(await files.readyListed(a!.location, a!.version!)).toMatchObject({ ...a!.version, resolvedPath: await fs.realpath(path.join(root, 'a.png')) });
      await fs.rm(path.join(root, 'b.png'));
      expect(await files.readyListed(b!.location, b!.version!)).toBeUndefined();
      expect(await files.stat(b!.location)).toBeUndefined();
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
