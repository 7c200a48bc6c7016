import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../services/protocol/errors.js';
import { inputOfLocation, readLocation, sinkFor, writeLocation, type Reach } from '../../services/worker/locations.js';
import { InputBuffers } from '../../services/worker/input-buffers.js';
import { MemoryGate } from '../../services/worker/memory-gate.js';
import { runTask } from '../../services/worker/run-task.js';
import type { Task } from '../../services/protocol/tasks.js';
import { corpus } from '../helpers/api.js';

/**
 * The worker's storage transfers against a real HTTP server on loopback (what presigned S3 URLs and
 * the master's blobs are to it): bytes in and out, the size cap, storage's errors as retryable 502s.
 */
const stored = new Map<string, Buffer>();
/** Requests to /flaky/ keys so far: the first of each has its connection closed before any answer. */
const flakyRequests = new Map<string, number>();
let base = '';
let server: http.Server;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const key = req.url!;
    if (key.startsWith('/flaky/')) {
      const seen = flakyRequests.get(key) ?? 0;
      flakyRequests.set(key, seen + 1);
      if (seen === 0) return void req.socket.destroy();
    }
    // /pinned/ keys: the object was stored again since the version a GET is pinned to (If-Match).
    if (key.startsWith('/pinned/')) return void res.writeHead(412, { 'content-type': 'application/xml' }).end('<Error><Code>PreconditionFailed</Code></Error>');
    if (req.method === 'PUT') {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        stored.set(key, Buffer.concat(chunks));
        res.writeHead(200, { etag: `"${chunks.length}-${key.length}"` }).end();
      });
      return;
    }
    const body = stored.get(key);
    if (!body) return void res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'NoSuchKey', message: `no ${key}` } }));
    // /chunked/ keys are sent without content-length: the cap is then enforced while the body arrives.
    if (key.startsWith('/chunked/')) {
      res.writeHead(200);
      for (let at = 0; at < body.length; at += 1000) res.write(body.subarray(at, at + 1000));
      return void res.end();
    }
    // /cut/ keys: storage dies half-way through the body; /stall/ keys: it stops sending half-way.
    if (key.startsWith('/cut/') || key.startsWith('/stall/')) {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length / 2), () => {
        if (key.startsWith('/cut/')) res.socket?.destroy();
      });
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const reach = (maxBytes = 1 << 20): Reach => ({ masterUrl: base, headers: {}, maxBytes });
const failure = async (promise: Promise<unknown>): Promise<ApiError> => {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ApiError);
  return error as ApiError;
};

describe('worker storage transfers', () => {
  it('PUTs buffers in order and returns the ETag; GETs the same bytes back, with or without content-length', async () => {
    const parts = [randomBytes(70_000), randomBytes(5), randomBytes(40_000)];
    const { tag } = await writeLocation({ via: 'url', url: `${base}/out/a` }, parts, reach());
    expect(tag).toMatch(/^"\d+-6"$/);
    // Buffer.equals: toEqual compares 110 kB element by element, seconds on this machine.
    const whole = Buffer.concat(parts);
    expect(stored.get('/out/a')?.equals(whole)).toBe(true);
    expect((await readLocation({ via: 'url', url: `${base}/out/a` }, reach())).equals(whole)).toBe(true);
    stored.set('/chunked/a', whole);
    expect((await readLocation({ via: 'url', url: `${base}/chunked/a` }, reach())).equals(whole)).toBe(true);
  });

  it('refuses an input over the cap with 413, by content-length or while it streams', async () => {
    stored.set('/big', randomBytes(50_000));
    stored.set('/chunked/big', randomBytes(50_000));
    for (const url of [`${base}/big`, `${base}/chunked/big`]) {
      const error = await failure(readLocation({ via: 'url', url }, reach(10_000)));
      expect([error.status, error.code]).toEqual([413, 'task_too_large']);
      expect(error.message).toContain('DIPS_MAX_TASK_BYTES (10000)');
    }
  });

  it("reports storage's error answer and unreachable storage as retryable 502 storage errors", async () => {
    const missing = await failure(readLocation({ via: 'url', url: `${base}/nothing` }, reach()));
    expect([missing.status, missing.code, missing.permanent]).toEqual([502, 'storage_error', false]);
    expect(missing.message).toBe('reading the input: storage answered 404 NoSuchKey: no /nothing');
    // A port nothing listens on: bind one, note it, close it.
    const probe = http.createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => probe.once('listening', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const refused = await failure(writeLocation({ via: 'url', url: `http://127.0.0.1:${port}/x` }, randomBytes(10), reach()));
    expect([refused.status, refused.code]).toEqual([502, 'storage_error']);
    expect(refused.message).toBe('writing the output: storage did not answer (ECONNREFUSED)');
  });

  it('a body cut short by storage is a retryable 502, and a task aborted mid-body stops reading, not as a storage failure', async () => {
    stored.set('/cut/a', randomBytes(200_000));
    const cut = await failure(readLocation({ via: 'url', url: `${base}/cut/a` }, reach()));
    expect([cut.status, cut.code, cut.permanent]).toEqual([502, 'storage_error', false]);
    expect(cut.message).toMatch(/^reading the input: storage did not answer/);
    stored.set('/stall/a', randomBytes(200_000));
    const controller = new AbortController();
    const reading = readLocation({ via: 'url', url: `${base}/stall/a` }, { ...reach(), signal: controller.signal });
    setTimeout(() => controller.abort(new Error('lease lost')), 200);
    // Not a storage failure: the read stopped because the task was aborted (its result is dropped).
    const aborted = await reading.then(() => undefined, (error: unknown) => error);
    expect(aborted).toBeInstanceOf(Error);
    expect(aborted).not.toBeInstanceOf(ApiError);
  });

  it('sends a request once more when its connection closes before any answer, and an object stored again since is the input changed', async () => {
    const bytes = randomBytes(30_000);
    expect(await writeLocation({ via: 'url', url: `${base}/flaky/put` }, bytes, reach())).toEqual({ tag: expect.any(String) });
    expect(stored.get('/flaky/put')?.equals(bytes)).toBe(true);
    stored.set('/flaky/get', bytes);
    expect((await readLocation({ via: 'url', url: `${base}/flaky/get` }, reach())).equals(bytes)).toBe(true);
    expect([flakyRequests.get('/flaky/put'), flakyRequests.get('/flaky/get')]).toEqual([2, 2]);

    const changed = await failure(readLocation({ via: 'url', url: `${base}/pinned/a` }, reach()));
    expect([changed.status, changed.code, changed.permanent]).toEqual([422, 'input_changed', true]);
  });

  it('reads each input into a kept buffer that serves the next task only once the last has given it back', async () => {
    const buffers = new InputBuffers(1);
    const kept = { ...reach(), buffers };
    const [a, b] = [randomBytes(150_000), randomBytes(120_000)];
    stored.set('/in/a', a);
    stored.set('/in/b', b);
    const first = await inputOfLocation({ via: 'url', url: `${base}/in/a` }, kept);
    expect((first.input as Buffer).equals(a)).toBe(true);
    // While the first is lent, another read has memory of its own.
    const meanwhile = await readLocation({ via: 'url', url: `${base}/in/b` }, kept);
    expect(meanwhile.buffer).not.toBe((first.input as Buffer).buffer);
    first.release();
    const next = await inputOfLocation({ via: 'url', url: `${base}/in/b` }, kept);
    expect((next.input as Buffer).buffer).toBe((first.input as Buffer).buffer);
    expect((next.input as Buffer).equals(b)).toBe(true);
    // The earlier input's bytes were not touched until it was given back.
    expect(meanwhile.equals(b)).toBe(true);
  });

  it("never lends a running task's input to another read: its result is its own photo's", async () => {
    const limits = { maxPixels: 268_402_689, maxDecodeBytes: 512 * 2 ** 20, memory: new MemoryGate(256 * 2 ** 20) };
    stored.set('/photos/twowings-4k.jpg', await fs.readFile(corpus('twowings-4k.jpg')));
    // As large as the photo's buffer can hold (879 kB in one of 1 MiB): lent the same memory, it would overwrite all of the photo.
    stored.set('/noise', randomBytes(1_000_000));
    const expected = await sharp(corpus('twowings-4k.jpg')).blur(2).jpeg({ quality: 90, optimiseCoding: false }).toBuffer();
    const kept = { ...reach(8 << 20), buffers: new InputBuffers(2) };
    const running = runTask(
      {
        unit: 'u',
        lease: 'l',
        input: { via: 'url', url: `${base}/photos/twowings-4k.jpg` },
        output: { via: 'url', url: `${base}/results/twowings-4k.jpg` },
        spec: { kind: 'whole', name: 'twowings-4k.jpg', pipeline: [{ op: 'blur', sigma: 2 }], format: 'jpeg', quality: 90 },
      },
      kept,
      limits,
    );
    // The 8 MP blur runs for a hundred milliseconds or more; another input arrives while it does.
    await new Promise((resolve) => setTimeout(resolve, 15));
    const meanwhile = await readLocation({ via: 'url', url: `${base}/noise` }, kept);
    expect(await running).toMatchObject({ ok: true });
    expect(stored.get('/results/twowings-4k.jpg')?.equals(expected)).toBe(true);
    expect(meanwhile.equals(stored.get('/noise')!)).toBe(true);
  });

  it('reads and writes over TLS, as presigned S3 URLs are https, and refuses a certificate it does not trust', async () => {
    const fixture = (name: string) => fs.readFile(path.join(import.meta.dirname, '../fixtures/tls', name), 'utf8');
    const [key, cert] = await Promise.all([fixture('localhost-key.pem'), fixture('localhost-cert.pem')]);
    const secure = https.createServer({ key, cert }, (req, res) => {
      if (req.method === 'GET') return void res.writeHead(200, { 'content-length': photo.length }).end(photo);
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => res.writeHead(200, { etag: `"${Buffer.concat(chunks).equals(photo)}"` }).end());
    });
    const photo = await fs.readFile(corpus('wood.jpg'));
    secure.listen(0, '127.0.0.1');
    await new Promise((resolve) => secure.once('listening', resolve));
    const url = `https://localhost:${(secure.address() as AddressInfo).port}/bucket/wood.jpg?X-Amz-Signature=0`;
    const trusted = tls.getCACertificates('default');
    try {
      const refused = await failure(readLocation({ via: 'url', url }, reach()));
      expect([refused.status, refused.code]).toEqual([502, 'storage_error']);
      expect(refused.message).toMatch(/^reading the input: storage did not answer \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\)$/);
      // Trusted as a bucket's certificate is (the system's authorities): the same bytes both ways.
      tls.setDefaultCACertificates([...trusted, cert]);
      expect((await readLocation({ via: 'url', url }, reach())).equals(photo)).toBe(true);
      expect(await writeLocation({ via: 'url', url }, photo, reach())).toEqual({ tag: '"true"' });
    } finally {
      tls.setDefaultCACertificates(trusted);
      await new Promise<void>((resolve) => secure.close(() => resolve()));
    }
  });

  it('lets the encoder write a whole shared file itself, renamed into place once whole; other outputs get the bytes back', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-locations-'));
    const encoding = () => sharp(corpus('aqua.jpg')).blur(2).jpeg({ quality: 90 });
    try {
      const expected = await encoding().toBuffer();
      const target = path.join(dir, 'out', 'aqua.jpg');
      const written = await sinkFor({ via: 'file', path: target })(encoding());
      expect(written.data).toBeUndefined();
      expect(written.bytes).toBe(expected.length);
      expect((await fs.readFile(target)).equals(expected)).toBe(true);
      expect(await fs.readdir(path.dirname(target))).toEqual(['aqua.jpg']);

      // A write that fails leaves no partial file: an input cut short, and a target that cannot be replaced (a folder).
      const truncated = (await fs.readFile(corpus('aqua.jpg'))).subarray(0, 50_000);
      await expect(sinkFor({ via: 'file', path: path.join(dir, 'out', 'cut.jpg') })(sharp(truncated).jpeg())).rejects.toThrow(/premature end/);
      await fs.mkdir(path.join(dir, 'out', 'taken', 'inside'), { recursive: true });
      await expect(sinkFor({ via: 'file', path: path.join(dir, 'out', 'taken') })(encoding())).rejects.toThrow();
      expect((await fs.readdir(path.dirname(target))).sort()).toEqual(['aqua.jpg', 'taken']);

      for (const location of [{ via: 'file', path: target, range: { start: 0, end: expected.length - 1 } }, { via: 'url', url: `${base}/out` }] as const) {
        const kept = await sinkFor(location)(encoding());
        expect(kept.data?.equals(expected)).toBe(true);
      }
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("reports a shared output that cannot be written as the task's retryable failure, and a bad input as the image's", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-locations-'));
    const limits = { maxPixels: 268_402_689, maxDecodeBytes: 512 * 2 ** 20, memory: new MemoryGate(256 * 2 ** 20) };
    const task = (input: string, output: string): Task => ({
      unit: 'u',
      lease: 'l',
      input: { via: 'file', path: input },
      spec: { kind: 'variants', name: 'aqua.jpg', pipeline: [{ op: 'blur', sigma: 2 }], whole: { workerMemoryBytes: 512 * 2 ** 20 }, variants: [{ format: 'jpeg', output: { via: 'file', path: output } }] },
    });
    try {
      const written = await runTask(task(corpus('aqua.jpg'), path.join(dir, 'ok', 'aqua.jpg')), reach(), limits);
      expect(written).toMatchObject({ ok: true, bytesOut: (await fs.stat(path.join(dir, 'ok', 'aqua.jpg'))).size });

      // Its folder cannot be made (a file is in the way); libvips cannot open it (a name too long for the file system).
      await fs.writeFile(path.join(dir, 'a-file'), 'x');
      for (const output of [path.join(dir, 'a-file', 'aqua.jpg'), path.join(dir, 'ok', `${'n'.repeat(250)}.jpg`)]) {
        const failed = await runTask(task(corpus('aqua.jpg'), output), reach(), limits);
        expect(failed).toMatchObject({ ok: false, error: { status: 500, code: 'task_failed' } });
        // Named as the user knows it, not as the file beside it that was being written.
        if (!failed.ok) expect([failed.error.message.startsWith(`${output}: `), failed.error.message.includes('.partial-')]).toEqual([true, false]);
      }
      const truncated = path.join(dir, 'cut.jpg');
      await fs.writeFile(truncated, (await fs.readFile(corpus('aqua.jpg'))).subarray(0, 50_000));
      expect(await runTask(task(truncated, path.join(dir, 'ok', 'cut.jpg')), reach(), limits)).toMatchObject({ ok: false, error: { status: 422, code: 'corrupt_image' } });
      expect((await fs.readdir(path.join(dir, 'ok'))).sort()).toEqual(['aqua.jpg']);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("gives sharp a shared file's path after checking its size against the cap", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-locations-'));
    try {
      const file = path.join(dir, 'in.jpg');
      await fs.writeFile(file, randomBytes(20_000));
      expect(await inputOfLocation({ via: 'file', path: file }, reach())).toMatchObject({ input: file, bytes: 20_000 });
      const ranged = await inputOfLocation({ via: 'file', path: file, range: { start: 100, end: 199 } }, reach());
      expect(ranged.bytes).toBe(100);
      expect((ranged.input as Buffer).equals((await fs.readFile(file)).subarray(100, 200))).toBe(true);
      const error = await failure(inputOfLocation({ via: 'file', path: file }, reach(10_000)));
      expect([error.status, error.code]).toEqual([413, 'task_too_large']);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
