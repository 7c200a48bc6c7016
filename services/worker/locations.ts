import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
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
  if (location.via === 'file') {
    const { size } = await fs.stat(location.path);
    const start = location.range?.start ?? 0;
    const end = location.range ? location.range.end : size - 1;
    checkSize(end - start + 1, reach.maxBytes);
    const chunks: Buffer[] = [];
    for await (const chunk of createReadStream(location.path, { start, end, signal: reach.signal })) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
  const { url, headers } = target(location, reach);
  const response = await fetch(url, {
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
 * Writes the output: a file beside its target renamed into place (never half-written), or one PUT.
 * Resolves with the ETag of the PUT's answer (S3 gives one), which the master may record.
 */
export async function writeLocation(location: Location, data: Buffer, reach: Reach): Promise<string | undefined> {
  if (location.via === 'file') {
    const partial = `${location.path}.partial-${randomBytes(4).toString('hex')}`;
    await fs.mkdir(path.dirname(location.path), { recursive: true });
    try {
      await fs.writeFile(partial, data);
      await fs.rename(partial, location.path);
    } finally {
      await fs.rm(partial, { force: true });
    }
    return undefined;
  }
  const { url, headers } = target(location, reach);
  const response = await fetch(url, {
    method: 'PUT',
    body: new Blob([new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.length)]),
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    ...(reach.signal ? { signal: reach.signal } : {}),
  });
  if (!response.ok) throw transferError('writing the output', await readErrorResponse(response));
  await response.body?.cancel();
  return response.headers.get('etag') ?? undefined;
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
