import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { intoFile, intoMemory, writeInPlace, type Sink } from '../image-core/encode.js';
import { writeAt } from '../image-core/intermediate.js';
import { fileStreamBytes } from '../shared/file-streams.js';
import type { Location } from '../protocol/tasks.js';
import type { InputBuffers } from './input-buffers.js';
import { checkInputSize, getBody, getFile, put, type Body } from './storage-transfer.js';

/** How a worker reaches the bytes a task names: the master's URL and its credential for `master` locations. */
export interface Reach {
  masterUrl: string;
  headers: Record<string, string>;
  /** Most bytes one input may have (DIPS_MAX_TASK_BYTES): memory stays bounded whatever the task says. */
  maxBytes: number;
  /** The worker's kept buffers that inputs read over HTTP go into (input-buffers.ts). */
  buffers?: InputBuffers;
  signal?: AbortSignal;
}

/** Reads the whole input (or its byte range) into memory (one of `reach.buffers` when it fits): sharp decodes from one buffer. */
export async function readLocation(location: Location, reach: Reach): Promise<Buffer> {
  if (location.via === 'file') return readFileRange(location.path, location.range, reach);
  const { url, headers } = target(location, reach);
  const range: Record<string, string> = location.range ? { range: `bytes=${location.range.start}-${location.range.end}` } : {};
  return getBody({ what: 'reading the input', url, method: 'GET', headers: { ...headers, ...range }, signal: reach.signal }, { maxBytes: reach.maxBytes, buffers: reach.buffers });
}

/**
 * The input as sharp takes it: a shared file's path (libvips reads it itself, no copy through a
 * buffer; its size is still checked against the cap), else its bytes. `bytes` is the input's size;
 * `release` gives its buffer back to `reach.buffers` once sharp has finished with it (never before).
 */
export async function inputOfLocation(location: Location, reach: Reach): Promise<{ input: Buffer | string; bytes: number; release: () => void }> {
  if (location.via !== 'file' || location.range) {
    const data = await readLocation(location, reach);
    return { input: data, bytes: data.length, release: () => reach.buffers?.give(data) };
  }
  const { size } = await fs.stat(location.path);
  checkInputSize(size, reach.maxBytes);
  return { input: location.path, bytes: size, release: () => undefined };
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
    checkInputSize(end - start + 1, reach.maxBytes);
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
  return putBody(location, chunks.length === 1 ? chunks[0]! : chunks, length, reach);
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
  const file = path.join(scratch, `input-${randomBytes(6).toString('hex')}.v`);
  await getFile({ what: 'reading the input', url, method: 'GET', headers, signal: reach.signal }, file);
  return { file, downloaded: true };
}

/** PUTs a body to a URL or the master; the ETag storage answers is the part's tag. */
function putBody(location: Exclude<Location, { via: 'file' }>, body: Body, length: number, reach: Reach): Promise<{ tag?: string }> {
  const { url, headers } = target(location, reach);
  return put({
    what: 'writing the output',
    url,
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(length) },
    body,
    signal: reach.signal,
  });
}

function target(location: Exclude<Location, { via: 'file' }>, reach: Reach): { url: string; headers: Record<string, string> } {
  if (location.via === 'master') return { url: `${reach.masterUrl}${location.path}`, headers: reach.headers };
  return { url: location.url, headers: location.headers ?? {} };
}
