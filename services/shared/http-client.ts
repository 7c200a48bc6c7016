import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';

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
  body?: string;
  signal?: AbortSignal;
  /** The request fails with this error when no answer has begun within timeoutMs. */
  timeout?: { ms: number; error: () => Error };
}

/**
 * One request on a keep-alive node:http(s) agent, resolving with the response once its head arrives
 * (the caller reads or resumes the body). The master's hot requests (tasks to workers, HEADs to S3)
 * go this way: fetch (undici) cost about 2.5x the CPU per request here (docs/performance.md). The URL is
 * parsed once (a presigned one is long), and the signal is one abort listener: node's own `signal`
 * option sets up an end-of-stream watcher per request, which cost more than the rest of the request's
 * set-up in a profile of the master.
 */
export function keepAliveRequest(url: string | URL, options: KeepAliveRequest): Promise<IncomingMessage> {
  const target = typeof url === 'string' ? new URL(url) : url;
  const { protocol } = target;
  if (protocol !== 'http:' && protocol !== 'https:') return Promise.reject(new Error(`${target.href}: only http and https are supported`));
  const client = protocol === 'https:' ? https : http;
  const headers = options.body === undefined ? options.headers : { ...options.headers, 'content-length': Buffer.byteLength(options.body) };
  const { signal, timeout } = options;
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
      const timer = setTimeout(() => request.destroy(timeout.error()), timeout.ms);
      request.once('response', () => clearTimeout(timer));
      request.once('close', () => clearTimeout(timer));
    }
    request.on('error', reject);
    request.end(options.body);
  });
}

/** The error an aborted request fails with, as node's own `signal` option makes it: an AbortError caused by the reason. */
function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}
