import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { readErrorResponse, type ApiError } from '../protocol/errors.js';

/**
 * An idle connection is closed after this long. Node's agent ignores the server's Keep-Alive hint, and
 * a request written into a connection the server is closing fails; our servers keep idle connections
 * for 65 s (http-server.ts), so the client always closes first.
 */
const idleMs = 60_000;

/** Connections kept open between requests, per protocol (one pool per host inside each agent). */
const agents = {
  'http:': new http.Agent({ keepAlive: true, timeout: idleMs }),
  'https:': new https.Agent({ keepAlive: true, timeout: idleMs }),
};

export interface KeepAliveRequest {
  method: string;
  headers?: OutgoingHttpHeaders;
  /** Its content-length is set here. */
  body?: string;
  signal?: AbortSignal;
  /**
   * The request fails with this error when its connection is idle this long before the answer's head
   * arrives: no answer, or an upload that stalled.
   */
  timeout?: { ms: number; error: () => Error };
}

/**
 * One request on a keep-alive node:http(s) agent, resolving with the response once its head arrives
 * (the caller reads or resumes the body). The master's hot requests (tasks to workers, HEADs to S3) and
 * the workers' heartbeats go this way: fetch (undici) cost about 2.5x the CPU per request here
 * (docs/performance.md). The workers' transfers of image bytes use undici's dispatcher itself
 * (services/worker/storage-transfer.ts), which hands a body's chunks over without a stream. The URL is
 * parsed once (a presigned one is long), and the signal is one abort listener: node's own `signal`
 * option sets up an end-of-stream watcher per request, which cost more than the rest of the request's
 * set-up in a profile of the master.
 */
export function keepAliveRequest(url: string | URL, options: KeepAliveRequest): Promise<IncomingMessage> {
  const target = typeof url === 'string' ? new URL(url) : url;
  const { protocol } = target;
  if (protocol !== 'http:' && protocol !== 'https:') return Promise.reject(new Error(`${target.href}: only http and https are supported`));
  const client = protocol === 'https:' ? https : http;
  const { body, signal, timeout } = options;
  const headers = body === undefined ? options.headers : { ...options.headers, 'content-length': Buffer.byteLength(body) };
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const request = client.request(target, { method: options.method, agent: agents[protocol], headers }, resolve);
    if (signal) {
      // Aborting destroys the request, and with it a response still being read.
      const onAbort = () => request.destroy(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      request.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    if (timeout) {
      // The socket's idle timeout, off again once the answer begins (its body is the caller's to time).
      request.setTimeout(timeout.ms, () => request.destroy(timeout.error()));
      request.once('response', () => request.setTimeout(0));
    }
    request.on('error', reject);
    request.end(body);
  });
}

/** A non-2xx answer of another DIPS process (or of storage) read back into the ApiError it was built from. */
export function readErrorAnswer(response: IncomingMessage): Promise<ApiError> {
  return readErrorResponse(new Response(Readable.toWeb(response) as ReadableStream, { status: response.statusCode ?? 0, statusText: response.statusMessage ?? '' }));
}

/** The error an aborted request fails with, as node's own `signal` option makes it: an AbortError caused by the reason. */
function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}
