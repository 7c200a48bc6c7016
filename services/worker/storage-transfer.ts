import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { ApiError, readErrorResponse } from '../protocol/errors.js';
import { fileStreamBytes } from '../shared/file-streams.js';
import type { InputBuffers } from './input-buffers.js';

/**
 * The worker's requests to storage (presigned S3 URLs, the storage service's signed URLs, the master's
 * blobs) on undici's dispatcher, each answer's body handed as it arrives to where it goes: a buffer of
 * its content-length, a file, or nothing. Node's HTTP client copies every chunk of a body out of its read
 * buffer and passes it through a stream; here a chunk is copied once, into the buffer that sharp then
 * reads. Per 211 kB GET (4 in flight, another process serving) the client process spent 251 µs of CPU
 * with node:http, 159 with the dispatcher and 121 reading into a kept buffer (InputBuffers); per 105 kB
 * PUT 61 and 38 µs (docs/performance.md, seventeenth round).
 */
const dispatcher = new Agent();

export interface Transfer {
  /** What the transfer is for, as errors name it: "reading the input", "writing the output". */
  what: string;
  url: string;
  method: 'GET' | 'PUT';
  headers: Record<string, string>;
  body?: Body;
  signal?: AbortSignal | undefined;
}

/** A request body: one buffer, buffers to write in order, or a stream made afresh for each attempt (a file's). */
export type Body = Buffer | readonly Buffer[] | (() => Readable);

/** A GET's body in one buffer (`buffers`' when given), refused past `maxBytes`: by content-length before any byte when storage sends it, as S3 does. */
export async function getBody(transfer: Transfer, limits: { maxBytes: number; buffers?: InputBuffers | undefined }): Promise<Buffer> {
  return (await exchange(transfer, () => intoBuffer(limits.maxBytes, limits.buffers))).value;
}

/** A GET's body written into `file`, at the pace the disk takes it. */
export async function getFile(transfer: Transfer, file: string): Promise<void> {
  await exchange(transfer, () => intoFile(file));
}

/** A PUT; the ETag storage answers is the part's tag (S3 multipart). */
export async function put(transfer: Transfer): Promise<{ tag?: string }> {
  const { headers } = await exchange(transfer, discard);
  const tag = headers.etag;
  return typeof tag === 'string' ? { tag } : {};
}

/** Refuses an input over DIPS_MAX_TASK_BYTES: memory stays bounded whatever a task says. */
export function checkInputSize(bytes: number, limit: number): void {
  if (bytes > limit) throw new ApiError(413, 'task_too_large', `task input of ${bytes} bytes exceeds DIPS_MAX_TASK_BYTES (${limit})`);
}

/**
 * Storage stalled: no answer, or no byte of it, for this long fails the transfer (undici's headers and
 * body timeouts), and the master retries the unit.
 */
const storageTimeoutMs = 300_000;

/** Where the body of a 2xx answer goes. */
interface Receiver<T> {
  /** The answer has begun, with its content-length if it has one. May throw (an input over the cap). */
  begin(length: number | undefined, controller: Dispatcher.DispatchController): void;
  data(chunk: Buffer, controller: Dispatcher.DispatchController): void;
  finish(): T | Promise<T>;
  /** The transfer failed after begin: let go of what begin took. */
  abandon(): void;
}

type AnswerHeaders = Record<string, string | string[] | undefined>;

/**
 * One transfer, sent once more if its kept-alive connection was lost before any answer: servers close
 * idle connections on their own schedule (Node's and s3rver's after 5 s), and a request written into one
 * just then fails. A GET and a PUT of the same bytes are idempotent. Every failure comes out as a storage
 * error (502: the master retries it later, on any worker), unless it is one already, the input is over
 * the cap, or the task was aborted.
 */
async function exchange<T>(transfer: Transfer, receiver: () => Receiver<T>): Promise<{ value: T; headers: AnswerHeaders }> {
  try {
    return await attempt(transfer, receiver()).catch((error: unknown) => {
      if (!(error instanceof LostConnection) || transfer.signal?.aborted) throw error;
      return attempt(transfer, receiver());
    });
  } catch (error) {
    throw storageError(transfer.what, error instanceof LostConnection ? error.cause : error, transfer.signal);
  }
}

/** A connection that closed before storage answered (the request may not have reached it). */
class LostConnection extends Error {
  constructor(override readonly cause: unknown) {
    super('connection lost before the answer');
  }
}

const connectionLost = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/** Most bytes of an error answer read for its message (S3's XML, a DIPS error body). */
const errorAnswerBytes = 64 * 1024;

function attempt<T>(transfer: Transfer, receiver: Receiver<T>): Promise<{ value: T; headers: AnswerHeaders }> {
  const target = new URL(transfer.url);
  const { signal } = transfer;
  return new Promise((resolve, reject) => {
    let headers: AnswerHeaders = {};
    let answered = false;
    let begun = false;
    let refusal: { status: number; statusText: string; chunks: Buffer[]; bytes: number } | undefined;
    let onAbort: (() => void) | undefined;
    const done = () => {
      if (onAbort) signal!.removeEventListener('abort', onAbort);
    };
    const fail = (error: unknown) => {
      done();
      if (begun) receiver.abandon();
      reject(!answered && connectionLost.has((error as NodeJS.ErrnoException)?.code ?? '') ? new LostConnection(error) : error);
    };
    const body = bodyOf(transfer.body);
    dispatcher.dispatch(
      {
        origin: target.origin,
        path: `${target.pathname}${target.search}`,
        method: transfer.method,
        headers: transfer.headers,
        body,
        headersTimeout: storageTimeoutMs,
        bodyTimeout: storageTimeoutMs,
      },
      {
        onRequestStart(controller) {
          if (!signal || onAbort) return;
          // Aborting ends the request, and with it a body still arriving.
          onAbort = () => controller.abort(signal.reason);
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
        },
        onResponseStart(controller, status, answerHeaders, statusText) {
          if (status < 200) return;
          answered = true;
          headers = answerHeaders;
          if (status >= 300) {
            refusal = { status, statusText: statusText ?? '', chunks: [], bytes: 0 };
            return;
          }
          const length = Number(headers['content-length'] ?? Number.NaN);
          try {
            begun = true;
            receiver.begin(Number.isFinite(length) ? length : undefined, controller);
          } catch (error) {
            controller.abort(error as Error);
          }
        },
        onResponseData(controller, chunk) {
          if (refusal) {
            if (refusal.bytes < errorAnswerBytes) refusal.chunks.push(chunk);
            refusal.bytes += chunk.length;
            return;
          }
          try {
            receiver.data(chunk, controller);
          } catch (error) {
            controller.abort(error as Error);
          }
        },
        onResponseEnd() {
          done();
          if (refusal) return void refusalError(transfer.what, refusal).then(reject, reject);
          Promise.resolve()
            .then(() => receiver.finish())
            .then((value) => resolve({ value, headers }), fail);
        },
        onResponseError(_controller, error) {
          fail(error);
        },
      },
    );
  });
}

/** A body as the dispatcher sends it: buffers in order as a stream (written as they are, never joined), a file's stream made afresh. */
function bodyOf(body: Body | undefined): Buffer | Readable | null {
  if (body === undefined) return null;
  if (typeof body === 'function') return body();
  return Buffer.isBuffer(body) ? body : Readable.from(body, { objectMode: false });
}

/**
 * Storage refused: passed on as a failure of the task that the master may retry (502), whatever the
 * status (a 403 is an expired or forged URL, which another attempt with a fresh URL fixes too), except a
 * GET pinned to the version the job checked (If-Match: an upload session's file stored again since).
 */
async function refusalError(what: string, refusal: { status: number; statusText: string; chunks: Buffer[] }): Promise<ApiError> {
  if (refusal.status === 412) {
    return new ApiError(422, 'input_changed', `${what}: the object was stored again after the job checked it, so it is not processed`);
  }
  const answer = await readErrorResponse(new Response(Buffer.concat(refusal.chunks), { status: refusal.status, statusText: refusal.statusText }));
  return new ApiError(502, 'storage_error', `${what}: storage answered ${answer.status} ${answer.code}: ${answer.message}`);
}

const timeouts = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** A failed transfer as a storage error (the master retries it), unless the task was aborted or it is an ApiError already. */
function storageError(what: string, error: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted || error instanceof ApiError) return error;
  const { code, message } = error as NodeJS.ErrnoException;
  if (timeouts.has(code ?? '')) return new ApiError(502, 'storage_error', `${what}: storage sent nothing for ${storageTimeoutMs / 1000} s`);
  return new ApiError(502, 'storage_error', `${what}: storage did not answer (${code ?? message})`);
}

/** Into one buffer of the content-length (chunks joined when storage sends none), checked against the cap as it arrives. */
function intoBuffer(maxBytes: number, buffers: InputBuffers | undefined): Receiver<Buffer> {
  let body: Buffer | undefined;
  const chunks: Buffer[] = [];
  let received = 0;
  return {
    begin(length) {
      if (length === undefined) return;
      checkInputSize(length, maxBytes);
      body = buffers ? buffers.take(length) : Buffer.allocUnsafeSlow(length);
    },
    data(chunk) {
      if (body) chunk.copy(body, received);
      else {
        checkInputSize(received + chunk.length, maxBytes);
        chunks.push(chunk);
      }
      received += chunk.length;
    },
    finish() {
      if (!body) return Buffer.concat(chunks, received);
      if (received !== body.length) throw new Error(`storage sent ${received} of the ${body.length} bytes it announced`);
      return body;
    },
    abandon() {
      if (body) buffers?.give(body);
    },
  };
}

/** Into a file, the answer paused while the disk catches up; a failed write aborts the transfer. */
function intoFile(file: string): Receiver<void> {
  let stream: ReturnType<typeof createWriteStream> | undefined;
  return {
    begin(_length, controller) {
      stream = createWriteStream(file, { highWaterMark: fileStreamBytes });
      stream.once('error', (error) => controller.abort(error));
    },
    data(chunk, controller) {
      if (stream!.write(chunk)) return;
      controller.pause();
      stream!.once('drain', () => controller.resume());
    },
    finish: () =>
      new Promise<void>((resolve, reject) => {
        stream!.once('error', reject);
        stream!.end(resolve);
      }),
    abandon() {
      stream?.destroy();
    },
  };
}

/** A PUT's answer: only its headers matter. */
const discard = (): Receiver<undefined> => ({ begin() {}, data() {}, finish: () => undefined, abandon() {} });
