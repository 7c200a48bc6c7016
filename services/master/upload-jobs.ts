import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import express from 'express';
import sharp from 'sharp';
import { z } from 'zod';
import type { JobAccepted } from '../protocol/api.js';
import { sessionJobBody, type SessionJobBody } from '../protocol/uploads.js';
import { HttpError } from '../shared/http-error.js';
import type { Admission, Reservation } from './admission.js';
import { inputKey, jobPrefix } from './keys.js';
import type { Master } from './master.js';
import { spooledImage, validateSubmission, type SubmittedImage } from './submission.js';
import { discard, endRequestBody, receiveUpload } from './upload.js';
import { VersionChanged } from './storage.js';
import { stagedKey, type StagedFile } from './upload-sessions.js';
import type { Webhooks } from './webhooks.js';

/**
 * The bytes of a JPEG read for its header when it is not on the master's disk: libvips reads a JPEG's
 * header from the markers before its scan (EXIF, which holds at most 64 KiB; ICC and XMP, a few kB in
 * photographs; the frame), all within this in ordinary files, and under 1 % of an image large enough
 * to tile. A file whose head does not parse alone is read whole.
 */
const jpegHeadBytes = 128 * 1024;

/**
 * Upload jobs: the jobs the master plans image by image from their headers, running each whole or in
 * tiles. Their images come as a multipart POST /v1/jobs (spooled by the master) or as the files of an
 * upload session (POST /v1/uploads/{id}/job: already in storage, so that large images, the ones that
 * tile, need not pass the master). Mounted after batchRoutes, which takes JSON POST /v1/jobs bodies.
 */
export function uploadJobRoutes(master: Master, admission: Admission, webhooks: Webhooks): express.Router {
  const { config, storage, logger } = master;
  const router = express.Router();

  /** Validates the job, claims its queue places, stores its inputs (storeInputs, unless they are stored already), then commits it. */
  const createJob = async (id: string, files: readonly SubmittedImage[], fields: Record<string, string>, reservation: Reservation, storeInputs?: () => Promise<void>) => {
    const job = await validateSubmission(config, master.presets, files, fields);
    const webhook = webhooks.parse(fields.webhook);
    reservation.reserveImages(job.images);
    await storeInputs?.();
    master.store.createJob({ id, ...job });
    webhooks.register(id, webhook);
    reservation.commit(); // the store counts the images from now on, the disk their files
  };
  const accepted = (res: express.Response, id: string, images: number, how: string) => {
    logger.info({ job: id, images }, how);
    master.runner.fill();
    master.scaler?.wake?.();
    const answer: JobAccepted = { id, status: 'queued' };
    res.status(202).location(`/v1/jobs/${id}`).json(answer);
  };

  router.post('/jobs', async (req, res) => {
    let reservation;
    try {
      reservation = await admission.admit(req);
    } catch (error) {
      endRequestBody(req);
      throw error;
    }
    try {
      const upload = await receiveUpload(req, master.spoolDir, config);
      const id = randomUUID();
      try {
        await createJob(id, upload.files.map(spooledImage), upload.fields, reservation, async () => {
          for (const [index, file] of upload.files.entries()) await storage.putFile(inputKey(id, index), file.path);
        });
      } catch (error) {
        await storage.deletePrefix(jobPrefix(id));
        throw error;
      } finally {
        await discard(upload.files);
      }
      accepted(res, id, upload.files.length, 'job accepted');
    } finally {
      reservation.release();
    }
  });

  router.post('/uploads/:id/job', express.json({ limit: '64kb' }), async (req, res) => {
    const parsed = sessionJobBody.safeParse(req.body);
    if (!parsed.success) throw new HttpError(400, 'bad_job', `job body: ${z.prettifyError(parsed.error)}`);
    const reservation = await admission.admitStored();
    try {
      const id = randomUUID();
      let images = 0;
      await master.uploads.becomeJob(req.params.id, async (staged) => {
        images = staged.length;
        const spooled: string[] = [];
        try {
          // The job's own copies first (no bytes through the master), pinned to the versions the session
          // checked: its headers are then read from what the workers will read.
          for (const [index, file] of staged.entries()) {
            await storage.copyObject(stagedKey(req.params.id, index), inputKey(id, index), file.etag).catch((error: unknown) => {
              if (!(error instanceof VersionChanged)) throw error;
              throw new HttpError(
                409,
                'upload_changed',
                `upload session ${req.params.id}: file ${index} "${file.name}" was stored again while the job was being made from it; make the job again to take it as it is now`,
              );
            });
          }
          const headers = staged.map((file, index): SubmittedImage => ({ name: file.name, bytes: file.size, header: () => headerOf(master, inputKey(id, index), file, spooled) }));
          await createJob(id, headers, fieldsOf(parsed.data), reservation);
        } catch (error) {
          await storage.deletePrefix(jobPrefix(id));
          throw error;
        } finally {
          await Promise.all(spooled.map((file) => fs.rm(file, { force: true })));
        }
        // The job has its copies: the staged files need not wait for the session's sweep.
        await storage.deleteKeys(staged.map((_file, index) => stagedKey(req.params.id, index))).catch((error: unknown) => logger.warn({ session: req.params.id, err: error }, 'staged files not deleted'));
        return { id };
      });
      accepted(res, id, images, 'job accepted from an upload session');
    } finally {
      reservation.release();
    }
  });

  return router;
}

/** The body as the multipart form's fields, which validateSubmission reads for both routes. */
function fieldsOf(body: SessionJobBody): Record<string, string> {
  const { pipeline: steps, options, quality, ...text } = body;
  return {
    ...text,
    ...(steps ? { pipeline: JSON.stringify(steps) } : {}),
    ...(options ? { options: JSON.stringify(options) } : {}),
    ...(quality !== undefined ? { quality: String(quality) } : {}),
  };
}

/**
 * A stored input's header as validateSubmission reads it. On the master's disk that is the file itself;
 * else, in memory (one image at a time, at most jpegHeadBytes), a file no larger than that whole or a
 * JPEG's head; else the whole file, spooled (its path added to `spooled`): other formats, whose metadata
 * may follow the pixels, and JPEGs whose head does not parse alone.
 */
async function headerOf(master: Master, key: string, file: StagedFile, spooled: string[]): Promise<string | Buffer> {
  const local = await master.storage.locate(key, 'get', { colocated: true });
  if (local?.via === 'file') return local.path;
  if (file.size <= jpegHeadBytes) return buffer(await master.storage.getStream(key));
  const head = await buffer(await master.storage.getStream(key, { start: 0, end: jpegHeadBytes - 1 }));
  const { format } = await sharp(head, { limitInputPixels: false }).metadata().catch(() => ({ format: undefined }));
  if (format === 'jpeg') return head;
  await fs.mkdir(master.spoolDir, { recursive: true });
  const whole = path.join(master.spoolDir, `header-${randomUUID()}`);
  spooled.push(whole);
  await pipeline(await master.storage.getStream(key), createWriteStream(whole));
  return whole;
}
