import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from './logger.js';

/** An error with the HTTP status and machine-readable code the API answers with. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new HttpError(404, 'not_found', `no route ${req.method} ${req.path}`));
};

/** Turns any error into {"error":{"code","message"}}; unexpected errors become 500 and are logged. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error, req, res, _next) => {
    let httpError: HttpError;
    if (error instanceof HttpError) {
      httpError = error;
    } else if (error?.type === 'entity.too.large') {
      httpError = new HttpError(413, 'too_large', 'request body is too large');
    } else if (error?.type === 'entity.parse.failed') {
      httpError = new HttpError(400, 'malformed_json', `request body is not valid JSON: ${error.message}`);
    } else {
      logger.error({ err: error, method: req.method, path: req.path }, 'request failed');
      httpError = new HttpError(500, 'internal', 'internal error');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (httpError.retryAfterSeconds !== undefined) res.set('Retry-After', String(httpError.retryAfterSeconds));
    const body: ErrorBody = { error: { code: httpError.code, message: httpError.message } };
    res.status(httpError.status).json(body);
  };
}

/** Reads an error answer from another DIPS process (or a plain status) as one line of text. */
export async function describeErrorResponse(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as Partial<ErrorBody>;
    if (body.error?.message) return `${response.status} ${body.error.code}: ${body.error.message}`;
  } catch {
    // not JSON: fall through to the raw text
  }
  return `${response.status} ${text.slice(0, 200) || response.statusText}`;
}
