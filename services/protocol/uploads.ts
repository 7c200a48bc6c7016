import { z } from 'zod';
import { outputFormat, quality } from './api.js';
import { outputOptions } from './output.js';
import { presetName } from './presets.js';
import { wholeImageBudget } from './tasks.js';
import { strictBody } from './strict-body.js';

/*
 * Upload sessions (POST /v1/uploads): a client declares its files, sends each one's bytes where the
 * answer says (S3: presigned URLs; local disk: signed URLs on the storage service, streamed straight
 * into a file; the master sees neither), then creates a job from the session: a batch job (POST
 * /v1/jobs, JSON, `"inputs": {"upload": "<id>"}`), or the job a multipart POST /v1/jobs makes, which
 * tiles images too large to run whole (POST /v1/uploads/{id}/job). Master, CLI and tests read these schemas.
 */

export const uploadSessionId = z.uuid();

/** A file as the client declares it: its display name and its exact size in bytes. */
export const declaredFile = z
  .object({
    name: z.string().min(1).max(1024),
    size: z.number().int().min(0),
  })
  .strict();

/** POST /v1/uploads body. The master bounds the number of files and each size (its configured limits). */
export const uploadSessionBody = z.object({ files: z.array(declaredFile).min(1) }).strict();
export type UploadSessionBody = z.infer<typeof uploadSessionBody>;

/**
 * One request a client sends: `PUT` the bytes [offset, offset + size) of the file to `url` (absolute,
 * or a path on the master when it serves local storage itself) with exactly `headers` and nothing else (no Authorization: the URL carries
 * its own). A part of a multipart file answers with an ETag header the client reports afterwards.
 */
export const uploadPart = z.object({
  url: z.string(),
  headers: z.record(z.string(), z.string()),
  offset: z.number().int().min(0),
  size: z.number().int().min(0),
});
export type UploadPart = z.infer<typeof uploadPart>;

export const sessionFile = z.object({
  index: z.number().int().min(0),
  name: z.string(),
  size: z.number().int(),
  parts: z.array(uploadPart).min(1),
  /**
   * Present for a file sent in several parts (S3 multipart): once every part is sent, POST
   * `{"etags": [...]}` (each part's ETag, in part order) here, a path on the master.
   */
  complete: z.string().optional(),
});
export type SessionFile = z.infer<typeof sessionFile>;

/** POST /v1/uploads answer (201). The URLs stop working at `expiresAt`; a job must be created before then. */
export const uploadSession = z.object({
  id: uploadSessionId,
  expiresAt: z.iso.datetime(),
  files: z.array(sessionFile),
});
export type UploadSession = z.infer<typeof uploadSession>;

/** What the master answers for a multipart file it completed. */
export const storedFile = z.object({ index: z.number().int().min(0), name: z.string(), size: z.number().int().min(0) });

/** What local storage answers for a signed PUT (PUT /storage/objects/<key>): the object it now holds. */
export const storedObject = z.object({ key: z.string(), size: z.number().int().min(0) });

/** POST /v1/uploads/{id}/files/{index}/complete body. */
export const completeBody = z.object({ etags: z.array(z.string().min(1).max(200)).min(1).max(10_000) }).strict();

/**
 * GET /v1/uploads: what a session accepts. `whole` is the budget its items are planned under (they run
 * whole, never tiled): a session with an image planImage would tile under it becomes an upload job
 * (POST /v1/uploads/{id}/job), which tiles. `dips submit` reads every header and chooses the way from this.
 */
export const uploadSessionTerms = z.object({
  /** Files one session declares at most (DIPS_MAX_FILES). */
  maxFiles: z.number().int().min(1),
  /** Bytes one file has at most (DIPS_MAX_UPLOAD_BYTES). */
  maxFileBytes: z.number().int().min(1),
  /** With S3 storage, a larger file is sent in parts of this many bytes (more when it would need over 10,000 parts); local storage takes each file in one PUT. */
  partBytes: z.number().int().min(1),
  whole: wholeImageBudget,
});
export type UploadSessionTerms = z.infer<typeof uploadSessionTerms>;

/**
 * POST /v1/uploads/{id}/job body: the fields of a multipart POST /v1/jobs, as JSON; the session's files
 * are the job's images, in order. The answer is the multipart route's (jobAccepted, 202).
 */
export const sessionJobBody = strictBody({
  pipeline: z.array(z.record(z.string(), z.unknown())).optional(),
  preset: presetName.optional(),
  format: outputFormat.optional(),
  quality: quality.optional(),
  options: outputOptions.optional(),
  webhook: z.string().max(2048).optional(),
});
export type SessionJobBody = z.infer<typeof sessionJobBody>;
