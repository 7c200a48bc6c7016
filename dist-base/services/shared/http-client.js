import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readErrorResponse } from '../protocol/errors.js';
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
/**
 * One request on a keep-alive node:http(s) agent, resolving with the response once its head arrives
 * (the caller reads or resumes the body). The hot requests (the master's tasks to workers and HEADs to
 * S3, the workers' storage GETs and PUTs and heartbeats) go this way: fetch (undici) cost about 2.5x the
 * CPU per request here (docs/performance.md). The URL is
 * parsed once (a presigned one is long), and the signal is one abort listener: node's own `signal`
 * option sets up an end-of-stream watcher per request, which cost more than the rest of the request's
 * set-up in a profile of the master.
 */
export function keepAliveRequest(url, options) {
    const target = typeof url === 'string' ? new URL(url) : url;
    const { protocol } = target;
    if (protocol !== 'http:' && protocol !== 'https:')
        return Promise.reject(new Error(`${target.href}: only http and https are supported`));
    const client = protocol === 'https:' ? https : http;
    const { body, signal, timeout } = options;
    const length = typeof body === 'string' ? Buffer.byteLength(body) : body === undefined || body instanceof Readable ? undefined : body.reduce((sum, chunk) => sum + chunk.length, 0);
    const headers = length === undefined ? options.headers : { ...options.headers, 'content-length': length };
    if (signal?.aborted)
        return Promise.reject(abortError(signal));
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
        if (body instanceof Readable)
            pipeline(body, request).catch(reject);
        else if (typeof body === 'string' || body === undefined)
            request.end(body);
        else {
            for (const chunk of body)
                request.write(chunk);
            request.end();
        }
    });
}
/** A non-2xx answer of another DIPS process (or of storage) read back into the ApiError it was built from. */
export function readErrorAnswer(response) {
    return readErrorResponse(new Response(Readable.toWeb(response), { status: response.statusCode ?? 0, statusText: response.statusMessage ?? '' }));
}
/** The error an aborted request fails with, as node's own `signal` option makes it: an AbortError caused by the reason. */
function abortError(signal) {
    return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}
//# sourceMappingURL=http-client.js.map