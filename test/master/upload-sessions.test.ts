import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import http, { type IncomingMessage, type Server } from 'node:http';
import express from 'express';
import { Admission, UploadDisk } from '../../services/master/admission.js';
import { createApp } from '../../services/master/app.js';
import { ownUpload } from '../../services/master/batch/inputs.js';
import { Master } from '../../services/master/master.js';
import { JobStore } from '../../services/master/job-store.js';
import { parseUri, Roots } from '../../services/master/batch/uri.js';
import { LocalStorage } from '../../services/master/local-storage.js';
import { S3Storage } from '../../services/master/s3-storage.js';
import { StagedObjects } from '../../services/master/upload-sessions-objects.js';
import { startS3Server } from '../../bench/s3-server.js';
import { presignedSeconds } from '../../services/master/storage.js';
import { stagedKey, UploadSessions } from '../../services/master/upload-sessions.js';
import { uploadSessionTerms, type UploadSession } from '../../services/protocol/uploads.js';
import { readErrorResponse } from '../../services/protocol/errors.js';
import { loadMasterConfig } from '../../services/shared/config.js';
import { errorHandler } from '../../services/shared/http-error.js';
import { createLogger } from '../../services/shared/logger.js';
import { UrlSigner } from '../../services/storage/signed-urls.js';
import { storageRoutes } from '../../services/storage/routes.js';

/* UploadSessions on local storage with a clock the test moves, its signed URLs served over HTTP on
   loopback by the storage routes: expiry, the open session limit, bodies of the wrong length, files
   written once, and the sweep of expired and orphaned sessions. */

let dir: string;
let storage: LocalStorage;
let now: number;
let sessions: UploadSessions;
/** The disk budget the sessions share with multipart POST /v1/jobs (the master's one). */
let disk: UploadDisk;
const limits = { maxFiles: 4, maxUploadBytes: 1000, maxUploadSessions: 2, uploadPartBytes: 5 * 1024 * 1024 };
/** The disk's reserve: below 1000 free bytes, nothing more is written. */
const reserve = 1000;
/** What the disk has free: the test sets it. */
let freeBytes: number;
const logger = createLogger('test', 'silent');

/** The storage routes on loopback, as the storage service or the master serves them. */
let server: Server;
let base: string;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-upload-sessions-unit-'));
  storage = new LocalStorage(path.join(dir, 'files'), { signer: UrlSigner.forDataDir(dir) }, () => now);
  now = Date.UTC(2026, 0, 1);
  freeBytes = 10_000;
  disk = new UploadDisk(reserve, async () => freeBytes, () => now);
  sessions = new UploadSessions(storage, dir, limits, logger, () => now);
  const app = express().use('/storage', storageRoutes(storage, disk, () => now)).use(errorHandler(logger));
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  sessions.close();
  server.closeAllConnections();
  server.close();
  await fs.rm(dir, { recursive: true, force: true });
});

/** File `index`'s signed URL, as the session hands it to a client. */
const urlOf = (session: UploadSession, index: number) => new URL(session.files[index]!.parts[0]!.url, base);

/** PUTs data to file `index`'s URL; an error answer rejects with its status, code, message and Retry-After. */
async function put(session: UploadSession, index: number, data: Buffer, url = urlOf(session, index)): Promise<void> {
  const response = await fetch(url, { method: 'PUT', body: new Uint8Array(data) });
  if (response.ok) return void (await response.body?.cancel());
  const error = await readErrorResponse(response);
  throw { status: error.status, code: error.code, message: error.message, retryAfter: response.headers.get('retry-after') };
}

/** A PUT of `size` declared bytes whose body the test writes bit by bit; `answer` is its status. */
function slowPut(url: URL, size: number): { request: http.ClientRequest; answer: Promise<number> } {
  const request = http.request(url, { method: 'PUT', headers: { 'content-length': size } });
  const answer = new Promise<number>((resolve, reject) => request.once('response', (response) => (response.resume(), resolve(response.statusCode!))).once('error', reject));
  return { request, answer };
}

/**
 * Lets pending callbacks and file I/O run until the condition holds (no timers: the clock here is fake);
 * gives up after 5 s of real time, which a loaded machine's readdir and stat stay far below.
 */
async function waitFor(condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = performance.now() + 5_000;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error('condition never held within 5 s');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const noJobs = { exists: () => false, readingSession: () => undefined };

const stagedBytes = async (id: string, index: number) => fs.readFile(path.join(dir, 'files', stagedKey(id, index))).catch(() => undefined);

describe('upload sessions', () => {
  it('a signed URL takes its file until the session expires; then it and the job creation are refused, and the sweep removes it', async () => {
    const session = await sessions.create({ files: [{ name: 'a.jpg', size: 3 }, { name: 'b.jpg', size: 2 }] });
    expect(Date.parse(session.expiresAt)).toBe(now + presignedSeconds * 1000);
    await put(session, 0, Buffer.from('abc'));
    expect(await stagedBytes(session.id, 0)).toEqual(Buffer.from('abc'));

    now += presignedSeconds * 1000 + 1;
    await expect(put(session, 1, Buffer.from('de'))).rejects.toMatchObject({ status: 403, code: 'url_expired' });
    await expect(sessions.checkReady(session.id)).rejects.toMatchObject({ status: 410, code: 'upload_expired' });
    expect(await sessions.sweep(noJobs)).toBe(1);
    expect(await stagedBytes(session.id, 0)).toBeUndefined();
    await expect(sessions.checkReady(session.id)).rejects.toMatchObject({ status: 404, code: 'upload_not_found' });
  });

  it('keeps a file only when exactly its declared bytes arrived and the disk keeps its reserve; nothing half-written is visible', async () => {
    const session = await sessions.create({ files: [{ name: 'a.jpg', size: 3 }] });
    const key = stagedKey(session.id, 0);
    await expect(put(session, 0, Buffer.from('abcd'))).rejects.toMatchObject({ status: 400, code: 'upload_wrong_size', message: `${key} was signed for 3 bytes; this request sends 4` });
    // A chunked body declares no length: counted as it arrives.
    const chunked = (data: string) => new ReadableStream({ start: (controller) => (controller.enqueue(new TextEncoder().encode(data)), controller.close()) });
    for (const [data, arrived] of [['abcd', 'more arrived'], ['ab', '2 arrived']]) {
      const response = await fetch(urlOf(session, 0), { method: 'PUT', body: chunked(data!), duplex: 'half' } as RequestInit);
      expect(await readErrorResponse(response)).toMatchObject({ status: 400, code: 'upload_wrong_size', message: `${key} was signed for 3 bytes; ${arrived}` });
    }
    // The disk is read at most once a second: the next reading, a second later, finds it nearly full.
    freeBytes = 1002;
    now += 1_000;
    await expect(put(session, 0, Buffer.from('abc'))).rejects.toMatchObject({ status: 503, code: 'insufficient_storage', retryAfter: '60' });
    expect(await fs.readdir(path.join(dir, 'files', 'uploads', session.id)).catch(() => [])).toEqual([]);
    await expect(sessions.checkReady(session.id)).rejects.toMatchObject({ status: 409, code: 'upload_incomplete', message: expect.stringContaining('file 0 "a.jpg" has not arrived') });
  });

  it('counts the bytes it admitted since its last reading of the disk: a burst of PUTs cannot overrun the reserve', async () => {
    const session = await sessions.create({ files: [{ name: 'a.jpg', size: 3 }, { name: 'b.jpg', size: 3 }] });
    freeBytes = 1005;
    await put(session, 0, Buffer.from('abc'));
    // The disk still reads 1005 free (no new reading within the second), but 3 of them are a.jpg's now.
    await expect(put(session, 1, Buffer.from('def'))).rejects.toMatchObject({ status: 503, code: 'insufficient_storage', message: expect.stringContaining('1002 bytes free') });
    now += 1_000;
    freeBytes = 1003;
    await put(session, 1, Buffer.from('def'));
    expect(await stagedBytes(session.id, 1)).toEqual(Buffer.from('def'));
  });

  it('a PUT and a multipart POST /v1/jobs spend one disk budget: bytes held by one are not promised to the other', async () => {
    const session = await sessions.create({ files: [{ name: 'a.jpg', size: 3 }] });
    freeBytes = 1008;
    const admission = new Admission({ maxQueuedImages: 10, maxRequestBytes: 100, maxJobPixels: 1e9 }, () => 0, disk);
    const request = await admission.admit({ headers: { 'content-length': '6' } } as unknown as IncomingMessage);
    await expect(put(session, 0, Buffer.from('abc'))).rejects.toMatchObject({ status: 503, code: 'insufficient_storage', retryAfter: '60', message: expect.stringContaining('1002 bytes free') });
    request.release();
    await put(session, 0, Buffer.from('abc'));
    expect(await stagedBytes(session.id, 0)).toEqual(Buffer.from('abc'));
  });

  it('writes each file once, so a file checked for a job cannot be replaced; a file still being received has not arrived', async () => {
    const session = await sessions.create({ files: [{ name: 'a.jpg', size: 3 }] });
    await put(session, 0, Buffer.from('abc'));
    // The same size again, other bytes: a file replaced under its job would be processed unchecked.
    await expect(put(session, 0, Buffer.from('xyz'))).rejects.toMatchObject({ status: 409, code: 'already_stored' });
    await expect(sessions.becomeJob(session.id, async () => ({ id: 'job-1' }))).resolves.toEqual({ id: 'job-1' });
    await expect(put(session, 0, Buffer.from('xyz'))).rejects.toMatchObject({ status: 409, code: 'already_stored' });
    expect(await stagedBytes(session.id, 0)).toEqual(Buffer.from('abc'));

    const other = await sessions.create({ files: [{ name: 'b.jpg', size: 3 }] });
    const { request, answer } = slowPut(urlOf(other, 0), 3);
    request.write('ab');
    await waitFor(async () => (await fs.readdir(path.join(dir, 'files', 'uploads', other.id)).catch(() => [])).length > 0);
    await expect(sessions.becomeJob(other.id, async () => ({ id: 'job-2' }))).rejects.toMatchObject({ status: 409, code: 'upload_incomplete', message: expect.stringContaining('has not arrived') });
    request.end('c');
    expect(await answer).toBe(200);
    await expect(sessions.becomeJob(other.id, async () => ({ id: 'job-2' }))).resolves.toEqual({ id: 'job-2' });
    expect(await stagedBytes(other.id, 0)).toEqual(Buffer.from('abc'));
  });

  it('bounds the open sessions; a session becomes one job, one request at a time, no longer counts, and is swept once its job is gone', async () => {
    const first = await sessions.create({ files: [{ name: 'a.jpg', size: 1 }] });
    await sessions.create({ files: [{ name: 'b.jpg', size: 1 }] });
    await expect(sessions.create({ files: [{ name: 'c.jpg', size: 1 }] })).rejects.toMatchObject({ status: 429, code: 'too_many_sessions', message: expect.stringContaining('DIPS_MAX_UPLOAD_SESSIONS=2') });
    await put(first, 0, Buffer.from('x'));
    let release!: () => void;
    const making = sessions.becomeJob(first.id, () => new Promise<{ id: string }>((resolve) => (release = () => resolve({ id: 'job-1' }))));
    await expect(sessions.becomeJob(first.id, async () => ({ id: 'job-2' }))).rejects.toMatchObject({ status: 409, code: 'upload_busy' });
    await waitFor(() => release !== undefined);
    release();
    await making;
    await expect(sessions.becomeJob(first.id, async () => ({ id: 'job-2' }))).rejects.toMatchObject({ status: 409, code: 'upload_used', message: expect.stringContaining('job-1') });
    await sessions.create({ files: [{ name: 'c.jpg', size: 1 }] });

    expect(await sessions.sweep({ exists: (job) => job === 'job-1', readingSession: () => undefined })).toBe(0);
    expect(await stagedBytes(first.id, 0)).toEqual(Buffer.from('x'));
    // Its job gone, its bytes go at once; the row stays while its URL is valid, and a file stored again meanwhile goes at the next sweep.
    expect(await sessions.sweep(noJobs)).toBe(0);
    expect(await stagedBytes(first.id, 0)).toBeUndefined();
    await put(first, 0, Buffer.from('y'));
    now += presignedSeconds * 1000 + 1;
    expect(await sessions.sweep(noJobs)).toBe(3);
    expect(await stagedBytes(first.id, 0)).toBeUndefined();
  });

  it('an expired session that a job reads (the master stopped before marking it) is kept for that job, not swept', async () => {
    const session = await sessions.create({ files: [{ name: 'a.jpg', size: 1 }] });
    await put(session, 0, Buffer.from('x'));
    now += presignedSeconds * 1000 + 1;
    const reading = { exists: (job: string) => job === 'job-9', readingSession: (id: string) => (id === session.id ? 'job-9' : undefined) };
    expect(await sessions.sweep(reading)).toBe(0);
    expect(await stagedBytes(session.id, 0)).toEqual(Buffer.from('x'));
    await expect(sessions.becomeJob(session.id, async () => ({ id: 'job-10' }))).rejects.toMatchObject({ status: 409, code: 'upload_used', message: expect.stringContaining('job-9') });
    expect(await sessions.sweep(noJobs)).toBe(1);
    expect(await stagedBytes(session.id, 0)).toBeUndefined();
  });

  it('the job store names the batch job that reads a session, and no other', () => {
    const store = new JobStore(dir);
    const session = '4f1c7a52-9a5e-4b7e-8d1e-0c7f0b0c2a11';
    store.createBatchJob({ id: 'job-from-folder', pipeline: [], spec: { inputs: { prefix: 'file:///photos/' } }, specKey: 'a' });
    store.createBatchJob({ id: 'job-from-session', pipeline: [], spec: { inputs: { upload: session } }, specKey: 'b' });
    expect(store.batchJobReadingUpload(session)).toBe('job-from-session');
    expect(store.batchJobReadingUpload('0b0e1f6e-3c1a-4d7e-9d2a-6a1c0e9f4b22')).toBeUndefined();
    store.close();
  });

  it('refuses a signature made for another file, another size, and a URL signed by another cluster', async () => {
    const session = await sessions.create({ files: [{ name: 'a.jpg', size: 1 }, { name: 'b.jpg', size: 1 }] });
    const wrongFile = urlOf(session, 0);
    wrongFile.search = urlOf(session, 1).search;
    await expect(put(session, 0, Buffer.from('x'), wrongFile)).rejects.toMatchObject({ status: 403, code: 'bad_signature', message: expect.stringContaining('not one this cluster signed') });
    const wrongSize = urlOf(session, 0);
    wrongSize.searchParams.set('size', '2');
    await expect(put(session, 0, Buffer.from('xy'), wrongSize)).rejects.toMatchObject({ status: 403, code: 'bad_signature' });
    const otherDir = path.join(dir, 'other');
    const other = new UploadSessions(new LocalStorage(path.join(dir, 'files'), { signer: UrlSigner.forDataDir(otherDir) }, () => now), otherDir, limits, logger, () => now);
    const foreign = await other.create({ files: [{ name: 'a.jpg', size: 1 }] });
    other.close();
    await expect(put(foreign, 0, Buffer.from('x'))).rejects.toMatchObject({ status: 403, code: 'bad_signature' });
    expect(await fs.readdir(path.join(dir, 'files', 'uploads', foreign.id)).catch(() => [])).toEqual([]);
  });

  it('a session\'s files are readable by the job made from it only: no source root covers upload://', () => {
    const session = '0b5c8a9e-3f41-4c2e-9d7a-6f1e2b3c4d5e';
    const file = parseUri(`upload://${session}/0`);
    expect(file).toEqual({ scheme: 'upload', session, index: 0 });
    // A manifest or URL list naming it meets the root check, which refuses it like any path outside DIPS_SOURCES.
    expect(() => new Roots('DIPS_SOURCES', 'file:///').rootOf(file, 'input')).toThrow(expect.objectContaining({ status: 403, code: 'outside_root' }));
    expect(ownUpload({ upload: session }, file)).toBe(true);
    expect(ownUpload({ upload: '11111111-2222-4333-8444-555555555555' }, file)).toBe(false);
    expect(ownUpload({ urls: [`upload://${session}/0`] }, file)).toBe(false);
  });
});

describe('GET /v1/uploads', () => {
  it('answers the configured session limits and the budget batch items are planned under, to a client holding the token', async () => {
    const env = {
      DIPS_TOKEN: 'client-secret',
      DIPS_MAX_FILES: '7',
      DIPS_MAX_UPLOAD_BYTES: '123456789',
      DIPS_UPLOAD_PART_BYTES: '6000000',
      DIPS_WORKER_MEMORY_BYTES: '805306368',
      DIPS_TILE_SIZE: '640',
    };
    const master = await Master.create(loadMasterConfig({ dataDir: path.join(dir, 'master') }, env), logger);
    const server = createApp(master).listen(0, '127.0.0.1');
    try {
      await new Promise((resolve) => server.once('listening', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/uploads`;
      expect((await fetch(url)).status).toBe(401);
      const response = await fetch(url, { headers: { authorization: 'Bearer client-secret' } });
      expect(response.status).toBe(200);
      expect(uploadSessionTerms.parse(await response.json())).toEqual({
        maxFiles: 7,
        maxFileBytes: 123456789,
        partBytes: 6000000,
        whole: { workerMemoryBytes: 805306368, tileSize: 640 },
      });
    } finally {
      server.closeAllConnections();
      server.close();
      master.close();
    }
  });
});

describe('upload session files as job inputs, on S3', () => {
  it('a worker reading a file gets a URL pinned with If-Match to the version checked, from the moment the job is being created', async () => {
    const s3 = await startS3Server();
    const bucket = new S3Storage(s3.client, s3.bucket);
    const onS3 = new UploadSessions(bucket, path.join(dir, 's3'), limits, logger, () => now);
    try {
      const session = await onS3.create({ files: [{ name: 'a.jpg', size: 3 }] });
      const sent = await fetch(session.files[0]!.parts[0]!.url, { method: 'PUT', body: 'abc' });
      expect(sent.status).toBe(200);
      const etag = sent.headers.get('etag');
      const objects = new StagedObjects(onS3, bucket);
      const file = { scheme: 'upload', session: session.id, index: 0 } as const;
      // The job's listing starts inside create(): what it hands a worker is what a worker reads.
      let reached: Awaited<ReturnType<StagedObjects['reach']>> | undefined;
      await onS3.becomeJob(session.id, async () => {
        const info = (await objects.stat(file))!;
        reached = await objects.reach(file, { get: info }, { colocated: false });
        return { id: 'job-1' };
      });
      expect(reached).toMatchObject({ direct: { via: 'url', headers: { 'if-match': etag } } });
    } finally {
      onS3.close();
      await s3.close();
    }
  });
});
