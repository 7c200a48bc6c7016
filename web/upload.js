import { ApiError, authHeaders } from './api.js';
import { errorBody } from './protocol.js';

/**
 * POSTs a form with XMLHttpRequest, because fetch reports no upload progress. onProgress gets
 * (sentBytes, totalBytes) as the body leaves the browser; aborting the signal cancels the upload.
 * Resolves with the JSON answer read through `schema`; a non-2xx answer rejects with ApiError carrying the master's message.
 */
export function uploadForm(path, form, schema, { onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('POST', path);
    for (const [name, value] of authHeaders()) request.setRequestHeader(name, value);
    request.responseType = 'json';
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onProgress?.(event.loaded, event.total);
    });
    request.addEventListener('load', () => {
      const body = request.response;
      if (request.status >= 200 && request.status < 300) {
        const answer = schema.safeParse(body);
        return answer.success ? resolve(answer.data) : reject(new Error(`unexpected answer from ${path}: ${answer.error.message}`));
      }
      const error = errorBody.safeParse(body);
      const message = error.success ? error.data.error.message : request.statusText || 'the upload was refused';
      reject(new ApiError(request.status, error.success ? error.data.error.code : `http_${request.status}`, `${message} (HTTP ${request.status})`));
    });
    request.addEventListener('error', () => reject(new ApiError(0, 'unreachable', 'The master cannot be reached (the upload failed).')));
    request.addEventListener('abort', () => reject(new DOMException('The upload was cancelled.', 'AbortError')));
    signal?.addEventListener('abort', () => request.abort(), { once: true });
    request.send(form);
  });
}
