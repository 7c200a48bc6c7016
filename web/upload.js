import { ApiError, getJson } from './api.js';
import { errorBody, jobAccepted, storedFile, uploadSession } from './protocol.js';

/** Requests that send files (or parts of them) at once, as `dips submit` sends them. */
const parallelUploads = 4;

/**
 * Submits files as one job through an upload session, as `dips submit` does: the master says where each
 * file goes (S3: presigned URLs of the bucket; local disk: signed URLs of the storage service), the
 * browser PUTs the bytes there itself, and the session becomes an upload job (POST /v1/uploads/{id}/job,
 * planned image by image, tiled where needed): no image byte passes the master. `recipe` is the job's
 * pipeline or preset, format, quality and options. onProgress gets (sentBytes, totalBytes) as the bytes
 * leave the browser; aborting the signal cancels the uploads. Resolves with the job's jobAccepted answer.
 */
export async function submitThroughSession(files, recipe, { onProgress, signal } = {}) {
  const json = (body) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
  const session = await getJson('/v1/uploads', uploadSession, json({ files: files.map((file) => ({ name: file.name, size: file.size })) }));
  const total = files.reduce((sum, file) => sum + file.size, 0);
  const sent = new Map();
  const report = () => onProgress?.([...sent.values()].reduce((sum, bytes) => sum + bytes, 0), total);
  const etags = session.files.map((file) => file.parts.map(() => ''));
  const work = session.files.flatMap((file) => file.parts.map((part, number) => ({ file, part, number })));
  const next = async () => {
    for (let item = work.shift(); item; item = work.shift()) {
      signal?.throwIfAborted();
      const { file, part, number } = item;
      const key = `${file.index}/${number}`;
      const body = files[file.index].slice(part.offset, part.offset + part.size);
      etags[file.index][number] = await put(part, body, files[file.index].name, (bytes) => {
        sent.set(key, bytes);
        report();
      }, signal);
    }
  };
  await Promise.all(Array.from({ length: parallelUploads }, next));
  for (const file of session.files) {
    if (file.complete) await getJson(file.complete, storedFile, json({ etags: etags[file.index] }));
  }
  return getJson(`/v1/uploads/${session.id}/job`, jobAccepted, json(recipe));
}

/**
 * PUTs one part with XMLHttpRequest (fetch reports no upload progress) to its URL with exactly its
 * headers and no token (the URL authorises itself); resolves with the ETag storage answers.
 */
function put(part, body, name, onSent, signal) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('PUT', part.url);
    for (const [header, value] of Object.entries(part.headers)) request.setRequestHeader(header, value);
    request.upload.addEventListener('progress', (event) => onSent(event.loaded));
    request.addEventListener('load', () => {
      if (request.status >= 200 && request.status < 300) {
        onSent(part.size);
        return resolve(request.getResponseHeader('ETag') ?? '');
      }
      let error;
      try {
        error = errorBody.safeParse(JSON.parse(request.responseText));
      } catch {
        error = { success: false }; // S3 answers XML
      }
      const message = error.success ? error.data.error.message : request.statusText || 'the upload was refused';
      reject(new ApiError(request.status, error.success ? error.data.error.code : `http_${request.status}`, `${name}: ${message} (HTTP ${request.status})`));
    });
    request.addEventListener('error', () => reject(new ApiError(0, 'unreachable', `${name}: storage cannot be reached (the upload failed).`)));
    request.addEventListener('abort', () => reject(new DOMException('The upload was cancelled.', 'AbortError')));
    signal?.addEventListener('abort', () => request.abort(), { once: true });
    request.send(body);
  });
}
