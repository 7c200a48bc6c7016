import { ApiError, describeApiError, readErrorResponse, toErrorBody } from '../protocol/errors.js';
/** The error type every route throws (services/protocol/errors.ts): status, code, public message. */
export { ApiError as HttpError } from '../protocol/errors.js';
export const notFound = (req, _res, next) => {
    next(new ApiError(404, 'not_found', `no route ${req.method} ${req.path}`));
};
/**
 * The one place errors become responses: {"error":{"code","message"}} (whether it is permanent follows from the status). Errors that are not
 * ApiErrors are unexpected: they become 500 and are logged.
 */
export function errorHandler(logger, translate = () => undefined) {
    return (error, req, res, _next) => {
        let apiError = error instanceof ApiError ? error : translate(error);
        if (apiError) {
            // already an answer
        }
        else if (error?.type === 'entity.too.large') {
            apiError = new ApiError(413, 'too_large', 'request body is too large');
        }
        else if (error?.type === 'entity.parse.failed') {
            apiError = new ApiError(400, 'malformed_json', `request body is not valid JSON: ${error.message}`);
        }
        else {
            logger.error({ err: error, method: req.method, path: req.path }, 'request failed');
            apiError = new ApiError(500, 'internal', 'internal error');
        }
        if (res.headersSent) {
            res.destroy();
            return;
        }
        if (apiError.retryAfterSeconds !== undefined)
            res.set('Retry-After', String(apiError.retryAfterSeconds));
        res.status(apiError.status).json(toErrorBody(apiError));
    };
}
/** Reads an error answer from another DIPS process (or a plain status) as one line of text. */
export async function describeErrorResponse(response) {
    return describeApiError(await readErrorResponse(response));
}
//# sourceMappingURL=http-error.js.map