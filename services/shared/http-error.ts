import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ApiError, describeApiError, readErrorResponse, toErrorBody } from '../protocol/errors.js';
import type { Logger } from './logger.js';

/** The error type every route throws (services/protocol/errors.ts): status, code, public message. */
export { ApiError as HttpError } from '../protocol/errors.js';

export const notFound: RequestHandler = (req, _res, next) => {
  next(new ApiError(404, 'not_found', `no route ${req.method} ${req.path}`));
};

/**
 * The one place errors become responses: {"error":{"code","message"}} (whether it is permanent follows from the status). Errors that are not
 * ApiErrors are unexpected: they become 500 and are logged.
 */
export function errorHandler(logger: Logger, translate: (error: unknown) => ApiError | undefined = () => undefined): ErrorRequestHandler {
  return (error, req, res, _next) => {
    let apiError = error instanceof ApiError ? error : translate(error);
    if (apiError) {
      // already an answer
    } else if (error?.type === 'entity.too.large') {
      apiError = new ApiError(413, 'too_large', 'request body is too large');
    } else if (error?.type === 'entity.parse.failed') {
      apiError = new ApiError(400, 'malformed_json', jsonRefusal(error));
    } else {
      logger.error({ err: error, method: req.method, path: req.path }, 'request failed');
      apiError = new ApiError(500, 'internal', 'internal error');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (apiError.retryAfterSeconds !== undefined) res.set('Retry-After', String(apiError.retryAfterSeconds));
    res.status(apiError.status).json(toErrorBody(apiError));
  };
}

/**
 * express.json refuses a body that is JSON but not an object or array (`null`, `3`, `"x"`) with a
 * made-up syntax error ("Unexpected token 'n', "null" is not valid JSON"): say what is wrong instead.
 */
function jsonRefusal(error: { message: string; body?: unknown }): string {
  const text = typeof error.body === 'string' ? error.body.trim() : '';
  if (text && !text.startsWith('{') && !text.startsWith('[') && parsesAsJson(text)) return `request body must be a JSON object, not ${text.length > 20 ? `${text.slice(0, 20)}…` : text}`;
  return `request body is not valid JSON: ${error.message}`;
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Reads an error answer from another DIPS process (or a plain status) as one line of text. */
export async function describeErrorResponse(response: Response): Promise<string> {
  return describeApiError(await readErrorResponse(response));
}
