import { Readable } from 'node:stream';
import cors from 'cors';
import express from 'express';
import { storedObject } from '../protocol/uploads.js';
import { HttpError } from '../shared/http-error.js';
import { sendFile } from '../shared/http-server.js';
import type { UploadDisk } from '../master/admission.js';
import type { LocalStorage } from '../master/local-storage.js';
import { endRequestBody } from '../master/upload.js';
import { JOB_DATA_CORS } from './cors.js';

/**
 * Local storage's signed URLs, as S3 serves presigned ones: `PUT /storage/objects/<key>` takes exactly
 * the signed size into a new object, `GET` answers the object as the signed file name and type. The
 * signature is the authorisation (no token). Served by the storage service (services/storage/server.ts)
 * so that clients' bytes do not pass through the master, or by the master itself when it has none.
 */
export function storageRoutes(storage: LocalStorage, disk: UploadDisk, now: () => number = Date.now): express.Router {
  const router = express.Router();
  // The console's uploads and downloads come from the master's origin (another port), as they come to
  // the bucket. The rule has one origin, '*' (the cors package compares an array's entries literally).
  router.use(
    '/objects',
    cors({ origin: JOB_DATA_CORS.allowedOrigins[0], methods: [...JOB_DATA_CORS.allowedMethods], exposedHeaders: [...JOB_DATA_CORS.exposedHeaders], maxAge: JOB_DATA_CORS.maxAgeSeconds }),
  );

  router.put('/objects/*key', async (req, res) => {
    try {
      const key = keyOf(req);
      const { size } = storage.signer.verify('PUT', key, req.query, now()) as { size: number };
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) !== size) throw new HttpError(400, 'upload_wrong_size', `${key} was signed for ${size} bytes; this request sends ${declared}`);
      const hold = await disk.hold(size, key);
      try {
        await storage.createStream(key, Readable.from(exactly(req, size, key)));
        hold.kept();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new HttpError(409, 'already_stored', `${key} is already stored; an upload URL writes its object once`);
        throw error;
      } finally {
        hold.release();
      }
      res.json(storedObject.parse({ key, size }));
    } catch (error) {
      endRequestBody(req);
      throw error;
    }
  });

  router.get('/objects/*key', async (req, res) => {
    const key = keyOf(req);
    const grant = storage.signer.verify('GET', key, req.query, now()) as { name: string; type: string };
    const file = storage.pathIfStored(key);
    res.attachment(grant.name).type(grant.type);
    await sendFile(res, file).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ENOENT' ? new HttpError(404, 'object_not_found', `${key} is not stored (deleted with its job?)`) : error;
    });
  });

  return router;
}

function keyOf(req: express.Request): string {
  return (req.params as unknown as { key: string[] }).key.join('/');
}

/** Passes a body through, failing it as soon as it exceeds `size` bytes, or when it ends short of them. */
async function* exactly(body: AsyncIterable<Buffer>, size: number, what: string): AsyncIterable<Buffer> {
  let received = 0;
  for await (const chunk of body) {
    received += chunk.length;
    if (received > size) throw new HttpError(400, 'upload_wrong_size', `${what} was signed for ${size} bytes; more arrived`);
    yield chunk;
  }
  if (received !== size) throw new HttpError(400, 'upload_wrong_size', `${what} was signed for ${size} bytes; ${received} arrived`);
}
