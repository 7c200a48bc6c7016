import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import type { Request } from 'express';
import { HttpError } from '../shared/http-error.js';
import { didYouMean } from '../shared/suggest.js';

export interface UploadedFile {
  /** The client's file name reduced to a display name: never used as a path. */
  name: string;
  /** Where the bytes were spooled (a generated name in the upload directory). */
  path: string;
  bytes: number;
}

export interface Upload {
  files: UploadedFile[];
  fields: Record<string, string>;
}

export interface UploadLimits {
  maxUploadBytes: number;
  maxFiles: number;
  /** The whole request body, all parts together. */
  maxRequestBytes: number;
}

const allowedFields = new Set(['pipeline', 'preset', 'format', 'quality', 'options', 'webhook']);
/**
 * What is still read and discarded after an early error answer, so a client that is still sending
 * reads its answer instead of a reset; beyond it the connection is closed. 8 MiB takes milliseconds on
 * any link that sent it in the first place.
 */
const drainLimitBytes = 8 * 1024 * 1024;

/**
 * Reads a multipart job submission with busboy, spooling each image to its own file so memory stays
 * bounded whatever the upload size. The first error stops the parsing at once: the spooled files are
 * removed, the rest of the body is drained (up to a bound, then the connection is closed) and an
 * HttpError naming the offending part is thrown, so the client gets its answer without waiting.
 */
export async function receiveUpload(req: Request, spoolDir: string, limits: UploadLimits, fileField = 'images'): Promise<Upload> {
  const contentType = req.headers['content-type'] ?? '';
  if (!contentType.startsWith('multipart/form-data')) {
    endRequestBody(req);
    throw new HttpError(400, 'not_multipart', `${req.method} ${req.originalUrl} takes multipart/form-data with "${fileField}" file parts and a "pipeline" field`);
  }
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      // File names and fields as the client sent them: UTF-8 (busboy's default reads names as Latin-1).
      defParamCharset: 'utf8',
      limits: { fileSize: limits.maxUploadBytes, files: limits.maxFiles, fields: 10, fieldSize: 1024 * 1024, parts: limits.maxFiles + 10 },
    });
  } catch (error) {
    endRequestBody(req);
    throw new HttpError(400, 'malformed_multipart', `malformed multipart request: ${(error as Error).message}`);
  }
  await fs.mkdir(spoolDir, { recursive: true });
  const files: UploadedFile[] = [];
  const fields: Record<string, string> = {};
  const writes: Array<Promise<void>> = [];
  const open = new Set<Readable>();
  let received = 0;
  let failure: HttpError | undefined;

  await new Promise<void>((resolve) => {
    let settled = false;
    const fail = (error: HttpError) => {
      failure ??= error;
      if (settled) return;
      settled = true;
      req.unpipe(parser);
      req.off('data', count);
      endRequestBody(req);
      parser.destroy();
      for (const stream of open) stream.destroy(error);
      resolve();
    };
    const count = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limits.maxRequestBytes) {
        fail(new HttpError(413, 'request_too_large', `the request is larger than ${limits.maxRequestBytes} bytes (DIPS_MAX_REQUEST_BYTES)`));
      }
    };

    parser.on('file', (field, stream, info) => {
      // busboy may still emit parts it had parsed from the chunk in which the request failed.
      if (settled) return void stream.resume();
      const name = displayName(info.filename, files.length);
      if (field !== fileField) {
        stream.resume();
        return fail(new HttpError(400, 'unexpected_part', `unexpected file part "${field}"; images go in parts named "${fileField}"`));
      }
      const file: UploadedFile = { name, path: path.join(spoolDir, randomUUID()), bytes: 0 };
      files.push(file);
      open.add(stream);
      stream.on('data', (chunk: Buffer) => {
        file.bytes += chunk.length;
      });
      stream.on('limit', () => fail(new HttpError(413, 'file_too_large', `image "${name}" is larger than the limit of ${limits.maxUploadBytes} bytes`)));
      writes.push(
        pipeline(stream, createWriteStream(file.path))
          .catch((error: Error) => fail(new HttpError(400, 'upload_failed', `image "${name}" could not be received: ${error.message}`)))
          .finally(() => open.delete(stream)),
      );
    });
    parser.on('field', (field, value, info) => {
      if (settled) return;
      if (!allowedFields.has(field)) fail(new HttpError(400, 'unexpected_field', `unexpected field "${field}"${didYouMean(field, [...allowedFields])}; known: ${[...allowedFields].join(', ')}`));
      else if (field in fields) fail(new HttpError(400, 'duplicate_field', `the field "${field}" is given more than once`));
      else if (info.valueTruncated) fail(new HttpError(413, 'field_too_large', `field "${field}" is too large`));
      else fields[field] = value;
    });
    parser.on('filesLimit', () => fail(new HttpError(413, 'too_many_files', `at most ${limits.maxFiles} images per job`)));
    parser.on('partsLimit', () => fail(new HttpError(413, 'too_many_parts', 'too many parts in the multipart request')));
    parser.on('fieldsLimit', () => fail(new HttpError(413, 'too_many_fields', 'too many fields in the multipart request')));
    parser.on('error', (error: Error) => fail(new HttpError(400, 'malformed_multipart', `malformed multipart request: ${error.message}`)));
    parser.on('close', () => {
      settled = true;
      resolve();
    });
    req.on('error', (error) => fail(new HttpError(400, 'upload_failed', `the request could not be read: ${error.message}`)));
    req.on('data', count);
    req.pipe(parser);
  });
  await Promise.all(writes);
  if (failure) {
    await discard(files);
    throw failure;
  }
  return { files, fields };
}

/**
 * Ends a request whose answer is given before its body was read: what the client still sends is read
 * and discarded up to drainLimitBytes (the connection then stays usable), beyond that the socket is
 * closed. Without this the client blocks on a full socket and only sees a reset much later; closing at
 * once instead would make a client that is still sending fail with EPIPE before it reads the answer.
 */
export function endRequestBody(req: Request): void {
  if (req.complete) return;
  let drained = 0;
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > drainLimitBytes) req.socket.destroy();
  });
  req.resume();
}

export async function discard(files: readonly UploadedFile[]): Promise<void> {
  await Promise.all(files.map((file) => fs.rm(file.path, { force: true })));
}

/**
 * Characters removed from display names: controls (C0, DEL, C1) and format characters (bidi overrides
 * and isolates, zero-width space/joiners, BOM, soft hyphen...), which can make a name look like another
 * or reorder what a terminal or the console shows; plus the line and paragraph separators.
 */
const invisible = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;
/** Display names are cut to this many characters (code points), which no real file name reaches. */
const maxNameLength = 200;

/** The last path segment, as sent (UTF-8) minus invisible characters, at most 200 characters; never empty. */
export function displayName(filename: string | undefined, index: number): string {
  const base = (filename ?? '').split(/[\\/]/).pop() ?? '';
  const clean = Array.from(base.replace(invisible, '').trim()).slice(0, maxNameLength).join('');
  return clean === '' || clean === '.' || clean === '..' ? `image-${index + 1}` : clean;
}
