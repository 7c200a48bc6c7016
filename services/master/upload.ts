import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import type { Request } from 'express';
import { HttpError } from '../shared/http-error.js';

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
}

const allowedFields = new Set(['pipeline', 'format', 'quality', 'webhook']);

/**
 * Reads a multipart job submission with busboy, spooling each image to its own file so memory stays
 * bounded whatever the upload size. On any error the spooled files are removed and an HttpError naming
 * the offending part is thrown (after the rest of the request has been drained, so the client always
 * gets the answer).
 */
export async function receiveUpload(req: Request, spoolDir: string, limits: UploadLimits, fileField = 'images'): Promise<Upload> {
  const contentType = req.headers['content-type'] ?? '';
  if (!contentType.startsWith('multipart/form-data')) {
    req.resume();
    throw new HttpError(400, 'not_multipart', `${req.method} ${req.originalUrl} takes multipart/form-data with "${fileField}" file parts and a "pipeline" field`);
  }
  await fs.mkdir(spoolDir, { recursive: true });
  const files: UploadedFile[] = [];
  const fields: Record<string, string> = {};
  const writes: Array<Promise<void>> = [];
  let failure: HttpError | undefined;
  const fail = (error: HttpError) => {
    failure ??= error;
  };

  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      limits: { fileSize: limits.maxUploadBytes, files: limits.maxFiles, fields: 10, fieldSize: 1024 * 1024, parts: limits.maxFiles + 10 },
    });
  } catch (error) {
    req.resume();
    throw new HttpError(400, 'malformed_multipart', `malformed multipart request: ${(error as Error).message}`);
  }

  parser.on('file', (field, stream, info) => {
    const name = displayName(info.filename, files.length);
    if (field !== fileField || failure) {
      if (!failure) fail(new HttpError(400, 'unexpected_part', `unexpected file part "${field}"; images go in parts named "${fileField}"`));
      stream.resume();
      return;
    }
    const file: UploadedFile = { name, path: path.join(spoolDir, randomUUID()), bytes: 0 };
    files.push(file);
    stream.on('data', (chunk: Buffer) => {
      file.bytes += chunk.length;
    });
    stream.on('limit', () =>
      fail(new HttpError(413, 'file_too_large', `image "${name}" is larger than the limit of ${limits.maxUploadBytes} bytes`)),
    );
    writes.push(
      pipeline(stream, createWriteStream(file.path)).catch((error: Error) =>
        fail(new HttpError(400, 'upload_failed', `image "${name}" could not be received: ${error.message}`)),
      ),
    );
  });
  parser.on('field', (field, value, info) => {
    if (!allowedFields.has(field)) fail(new HttpError(400, 'unexpected_field', `unexpected field "${field}"; known: ${[...allowedFields].join(', ')}`));
    else if (info.valueTruncated) fail(new HttpError(413, 'field_too_large', `field "${field}" is too large`));
    else fields[field] = value;
  });
  parser.on('filesLimit', () => fail(new HttpError(413, 'too_many_files', `at most ${limits.maxFiles} images per job`)));
  parser.on('partsLimit', () => fail(new HttpError(413, 'too_many_parts', 'too many parts in the multipart request')));
  parser.on('fieldsLimit', () => fail(new HttpError(413, 'too_many_fields', 'too many fields in the multipart request')));

  try {
    await pipeline(req, parser);
  } catch (error) {
    fail(new HttpError(400, 'malformed_multipart', `malformed multipart request: ${(error as Error).message}`));
    req.resume();
  }
  await Promise.all(writes);
  if (failure) {
    await discard(files);
    throw failure;
  }
  return { files, fields };
}

export async function discard(files: readonly UploadedFile[]): Promise<void> {
  await Promise.all(files.map((file) => fs.rm(file.path, { force: true })));
}

/** The last path segment, without control characters, at most 200 characters; never empty. */
function displayName(filename: string | undefined, index: number): string {
  const base = (filename ?? '').split(/[\\/]/).pop() ?? '';
  const clean = base.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 200);
  return clean === '' || clean === '.' || clean === '..' ? `image-${index + 1}` : clean;
}
