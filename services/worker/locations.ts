import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { intoFile, intoMemory, writeInPlace, type Sink } from '../image-core/encode.js';
import { writeAt } from '../image-core/intermediate.js';
import { ApiError } from '../protocol/errors.js';
import { fileStreamBytes } from '../shared/file-streams.js';
import { keepAliveRequest, readErrorAnswer } from '../shared/http-client.js';
import type { Location } from '../protocol/tasks.js';

/** How a worker reaches the bytes a task names: the master's URL and its credential for `master` locations. */
export interface Reach {
  masterUrl: string;
  headers: Record<string, string>;
  /** Most bytes one input may have (DIPS_MAX_TASK_BYTES): memory stays bounded whatever the task says. */
  maxBytes: number;
  signal?: AbortSignal;
}

/** Reads the whole input (or its byte range) into memory: sharp decodes from one buffer. */
export async function readLocation(location: Location, reach: Reach): Promise<Buffer> {
  if (location.via === 'file') return readFileRange(location.path, location.range, reach);
  const { url, headers } = target(location, reach);
  const response = await storageRequest('reading the input', url, {
    method: 'GET',
    headers: { ...headers, ...(location.range ? { range: `bytes=${location.range.start}-${location.range.end}` } : {}) },
    signal: reach.signal,
  });
  return readBody(response, reach);
}

/**
 * The input as sharp takes it: a shared file's path (libvips reads it itself, no copy through a
 * buffer; its size is still checked against the cap), else its bytes. `bytes` is the input's size.
 */
export async function inputOfLocation(location: Location, reach: Reach): Promise<{ input: Buffer | string; bytes: number }> {
  if (location.via !== 'file' || location.range) {
    const data = await readLocation(location, reach);
    return { input: data, bytes: data.length };
  }
  const { size } = await fs.stat(location.path);
  checkSize(size, reach.maxBytes);
  return { input: location.path, bytes: size };
}

/**
 * A response's body in one buffer, refused past the size cap (by content-length before any byte when
 * storage sends it, as S3 does): node:http hands over Buffers, joined with one copy. Read through `data`
 * events: `for await` cost 85 µs more CPU per GET of a 150-360 kB photo from s3rver (median of 10 alternating pairs of
 * 400 GETs, docs/performance.md).
 */
function readBody(response: IncomingMessage, reach: Reach): Promise<Buffer> {
  const length = Number(response.headers['content-length'] ?? Number.NaN);
  if (Number.isFinite(length)) checkSize(length, reach.maxBytes);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const fail = (error: unknown) => {
      response.destroy();
      reject(storageError('reading the input', error, reach.signal));
    };
    response.on('data', (chunk: Buffer) => {
      total += chunk.length;
      chunks.push(chunk);
      if (total > reach.maxBytes) fail(tooLarge(total, reach.maxBytes));
    });
    response.once('end', () => resolve(Buffer.concat(chunks, total)));
    // Also a connection that closes before the body's end (node:http's 'aborted'): an error, not a short body.
    response.once('error', fail);
  });
}

/**
 * A file's bytes (or a range of them) in one positioned read into one buffer: a strip's rows are tens
 * of megabytes, which a read stream would hand over in 64 KiB chunks to be joined.
 */
async function readFileRange(file: string, range: Location['range'], reach: Reach): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const start = range?.start ?? 0;
    const end = range ? range.end : (await handle.stat()).size - 1;
    checkSize(end - start + 1, reach.maxBytes);
    const data = Buffer.allocUnsafe(end - start + 1);
    for (let done = 0; done < data.length; ) {
      reach.signal?.throwIfAborted();
      const { bytesRead } = await handle.read(data, done, data.length - done, start + done);
      if (bytesRead === 0) throw new Error(`${file} ends before byte ${start + done}`);
      done += bytesRead;
    }
    return data;
  } finally {
    await handle.close();
  }
}

/**
 * Writes the output (one buffer, or several to be written in order, never joined): a file beside its
 * target renamed into place (never half-written), or one PUT. A ranged output is a piece of a larger
 * object: a positioned write into the shared file, or a PUT of one part (S3 multipart, or the master's
 * blob), whose ETag storage answers is returned as the part's tag.
 */
export async function writeLocation(location: Location, data: Buffer | readonly Buffer[], reach: Reach): Promise<{ tag?: string }> {
  const chunks = Buffer.isBuffer(data) ? [data] : data;
  const length = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  if (location.range && location.range.end - location.range.start + 1 !== length) {
    throw new Error(`${length} bytes to write into the range ${location.range.start}-${location.range.end}`);
  }
  if (location.via === 'file' && location.range) {
    await writeAt(location.path, location.range.start, chunks);
    return {};
  }
  if (location.via === 'file') {
    await writeInPlace(location.path, (partial) => writeAt(partial, 0, chunks));
    return {};
  }
  return putBody(location, chunks, length, reach);
}

/**
 * Where an encoder writes its result for `location`: a whole shared file is written by libvips itself
 * (intoFile) and never half-written; for any other location the bytes come back, for writeLocation.
 */
export function sinkFor(location: Location): Sink {
  return location.via === 'file' && !location.range ? intoFile(location.path) : intoMemory;
}

/** Writes a file the worker made (a decoded intermediate) to the output, streamed. */
export async function writeLocationFromFile(location: Location, file: string, reach: Reach): Promise<void> {
  if (location.via === 'file') {
    await fs.mkdir(path.dirname(location.path), { recursive: true });
    await fs.rename(file, location.path).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EXDEV') throw error;
      await fs.copyFile(file, location.path);
    });
    return;
  }
  const { size } = await fs.stat(file);
  await putBody(location, () => createReadStream(file, { highWaterMark: fileStreamBytes }), size, reach);
}

/**
 * A local file holding the input, for sharp to read itself (an intermediate to encode): the file itself
 * when the worker shares the master's disk, else a download into `scratch`.
 */
export async function fileOfLocation(location: Location, scratch: string, reach: Reach): Promise<{ file: string; downloaded: boolean }> {
  if (location.via === 'file') return { file: location.path, downloaded: false };
  const { url, headers } = target(location, reach);
  const response = await storageRequest('reading the input', url, { method: 'GET', headers, signal: reach.signal });
  const file = path.join(scratch, `input-${randomBytes(6).toString('hex')}.v`);
  await pipeline(response, createWriteStream(file, { highWaterMark: fileStreamBytes }), ...(reach.signal ? [{ signal: reach.signal }] : [])).catch((error: unknown) => {
    throw storageError('reading the input', error, reach.signal);
  });
  return { file, downloaded: true };
}

/** PUTs a body to a URL or the master; the ETag storage answers is the part's tag. */
async function putBody(location: Exclude<Location, { via: 'file' }>, body: Body, length: number, reach: Reach): Promise<{ tag?: string }> {
  const { url, headers } = target(location, reach);
  const response = await storageRequest('writing the output', url, {
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(length) },
    body,
    signal: reach.signal,
  });
  response.resume();
  const tag = response.headers.etag;
  return tag ? { tag } : {};
}

/**
 * Storage stalled: no answer, or no byte of it, for this long fails the transfer (the limits fetch
 * had, undici's headers and body timeouts), and the master retries the unit.
 */
const storageTimeoutMs = 300_000;

/**
 * One request to storage over keepAliveRequest's pool (about a third of fetch's CPU per request here).
 * An answer other than 2xx is an error, and storage that cannot be reached (connection refused or
 * reset, a name that does not resolve) is reported as a storage error: the master retries it later, on
 * any worker, instead of taking the same failure on two workers for a bad item.
 */
async function storageRequest(
  what: string,
  url: string,
  options: { method: 'GET' | 'PUT'; headers: OutgoingHttpHeaders; body?: Body; signal?: AbortSignal | undefined },
): Promise<IncomingMessage> {
  const { body, signal, ...request } = options;
  const send = () =>
    keepAliveRequest(url, {
      ...request,
      ...(body === undefined ? {} : { body: typeof body === 'function' ? body() : body }),
      ...(signal ? { signal } : {}),
      timeout: { ms: storageTimeoutMs, error: () => stalled(what) },
    });
  let response: IncomingMessage;
  try {
    // A kept-alive connection that the server closed just as the request went out resets (servers close
    // idle ones on their own schedule: Node's, s3rver's among them, after 5 s). A GET and a PUT of the
    // same bytes are idempotent, so such a request is sent once more.
    response = await send().catch((error: NodeJS.ErrnoException) => {
      if (signal?.aborted || !connectionLost.has(error.code ?? '')) throw error;
      return send();
    });
  } catch (error) {
    throw storageError(what, error, signal);
  }
  response.setTimeout(storageTimeoutMs, () => response.destroy(stalled(what)));
  const status = response.statusCode ?? 0;
  if (status === 412) {
    // A GET pinned to the version the job checked (If-Match: an upload session's file stored again since): another attempt reads the same.
    response.resume();
    throw new ApiError(422, 'input_changed', `${what}: the object was stored again after the job checked it, so it is not processed`);
  }
  if (status < 200 || status >= 300) {
    throw transferError(what, await readErrorAnswer(response));
  }
  return response;
}

const connectionLost = new Set(['ECONNRESET', 'EPIPE']);

/** A request body: buffers written in order, or a stream made afresh for each attempt (a file's). */
type Body = readonly Buffer[] | (() => Readable);

const stalled = (what: string) => new ApiError(502, 'storage_error', `${what}: storage sent nothing for ${storageTimeoutMs / 1000} s`);

/** A failed transfer as a storage error (the master retries it), unless the task was canceled or it already is an ApiError. */
function storageError(what: string, error: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted || error instanceof ApiError) return error;
  const { code, message } = error as NodeJS.ErrnoException;
  return new ApiError(502, 'storage_error', `${what}: storage did not answer (${code ?? message})`);
}

function target(location: Exclude<Location, { via: 'file' }>, reach: Reach): { url: string; headers: Record<string, string> } {
  if (location.via === 'master') return { url: `${reach.masterUrl}${location.path}`, headers: reach.headers };
  return { url: location.url, headers: location.headers ?? {} };
}

const tooLarge = (bytes: number, limit: number) => new ApiError(413, 'task_too_large', `task input of ${bytes} bytes exceeds DIPS_MAX_TASK_BYTES (${limit})`);

function checkSize(bytes: number, limit: number): void {
  if (bytes > limit) throw tooLarge(bytes, limit);
}

/**
 * Storage answered an error: passed on as a failure of the task that the master may retry (502), unless
 * the URL itself was refused (403: expired or forged), which another attempt with a fresh URL fixes too.
 */
function transferError(what: string, error: ApiError): ApiError {
  return new ApiError(502, 'storage_error', `${what}: storage answered ${error.status} ${error.code}: ${error.message}`);
}
