import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { writeAt } from '../image-core/intermediate.js';
import { ApiError, readErrorResponse } from '../protocol/errors.js';
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
  const response = await storageFetch('reading the input', url, {
    headers: { ...headers, ...(location.range ? { range: `bytes=${location.range.start}-${location.range.end}` } : {}) },
    ...(reach.signal ? { signal: reach.signal } : {}),
  });
  if (!response.ok) throw transferError('reading the input', await readErrorResponse(response));
  const length = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(length)) checkSize(length, reach.maxBytes);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.length;
    checkSize(total, reach.maxBytes);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
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
    const partial = `${location.path}.partial-${randomBytes(4).toString('hex')}`;
    await fs.mkdir(path.dirname(location.path), { recursive: true });
    try {
      await writeAt(partial, 0, chunks);
      await fs.rename(partial, location.path);
    } finally {
      await fs.rm(partial, { force: true });
    }
    return {};
  }
  const body = new Blob(chunks.map((chunk) => new Uint8Array(chunk.buffer as ArrayBuffer, chunk.byteOffset, chunk.length)));
  return putBody(location, body, length, reach);
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
  await putBody(location, Readable.toWeb(createReadStream(file)) as ReadableStream, size, reach);
}

/**
 * A local file holding the input, for sharp to read itself (an intermediate to encode): the file itself
 * when the worker shares the master's disk, else a download into `scratch`.
 */
export async function fileOfLocation(location: Location, scratch: string, reach: Reach): Promise<{ file: string; downloaded: boolean }> {
  if (location.via === 'file') return { file: location.path, downloaded: false };
  const { url, headers } = target(location, reach);
  const response = await storageFetch('reading the input', url, { headers, ...(reach.signal ? { signal: reach.signal } : {}) });
  if (!response.ok || !response.body) throw transferError('reading the input', await readErrorResponse(response));
  const file = path.join(scratch, `input-${randomBytes(6).toString('hex')}.v`);
  await pipeline(Readable.fromWeb(response.body as never), createWriteStream(file), ...(reach.signal ? [{ signal: reach.signal }] : []));
  return { file, downloaded: true };
}

/** PUTs a body to a URL or the master; the ETag storage answers is the part's tag. */
async function putBody(location: Exclude<Location, { via: 'file' }>, body: Blob | ReadableStream, length: number, reach: Reach): Promise<{ tag?: string }> {
  const { url, headers } = target(location, reach);
  const response = await storageFetch('writing the output', url, {
    method: 'PUT',
    body,
    headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(length) },
    // A stream body must be declared half-duplex (fetch's rule for request streams).
    ...(body instanceof Blob ? {} : { duplex: 'half' }),
    ...(reach.signal ? { signal: reach.signal } : {}),
  } as RequestInit);
  if (!response.ok) throw transferError('writing the output', await readErrorResponse(response));
  await response.body?.cancel();
  const tag = response.headers.get('etag');
  return tag ? { tag } : {};
}

/**
 * fetch, with storage that cannot be reached (connection refused or reset, a name that does not
 * resolve) reported as a storage error: the master retries it later, on any worker, instead of taking
 * the same failure on two workers for a bad item.
 */
async function storageFetch(what: string, url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    if (init.signal?.aborted) throw error;
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new ApiError(502, 'storage_error', `${what}: storage did not answer (${cause?.code ?? cause?.message ?? (error as Error).message})`);
  }
}

function target(location: Exclude<Location, { via: 'file' }>, reach: Reach): { url: string; headers: Record<string, string> } {
  if (location.via === 'master') return { url: `${reach.masterUrl}${location.path}`, headers: reach.headers };
  return { url: location.url, headers: location.headers ?? {} };
}

function checkSize(bytes: number, limit: number): void {
  if (bytes > limit) throw new ApiError(413, 'task_too_large', `task input of ${bytes} bytes exceeds DIPS_MAX_TASK_BYTES (${limit})`);
}

/**
 * Storage answered an error: passed on as a failure of the task that the master may retry (502), unless
 * the URL itself was refused (403: expired or forged), which another attempt with a fresh URL fixes too.
 */
function transferError(what: string, error: ApiError): ApiError {
  return new ApiError(502, 'storage_error', `${what}: storage answered ${error.status} ${error.code}: ${error.message}`);
}
