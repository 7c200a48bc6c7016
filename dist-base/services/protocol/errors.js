import { z } from 'zod';
/**
 * The one error model of DIPS: every failure that crosses a process boundary is an ApiError with a
 * machine-readable code, the HTTP status it is answered with, and whether retrying can help.
 * Responses are built from it in one place (toErrorBody); the other side reads them back with
 * readErrorResponse, so master, worker, CLI, console and tests agree on the shape.
 */
export class ApiError extends Error {
    status;
    code;
    retryAfterSeconds;
    name = 'ApiError';
    constructor(status, code, message, retryAfterSeconds) {
        super(message);
        this.status = status;
        this.code = code;
        this.retryAfterSeconds = retryAfterSeconds;
    }
    /** Retrying the same request (or the same unit on another worker) cannot succeed. */
    get permanent() {
        return isPermanentStatus(this.status);
    }
}
/**
 * 4xx means the request itself is wrong, so it is final, except the statuses that describe the
 * moment rather than the request: 401 (credentials may be fixed by a restart), 408 (timeout),
 * 409 (state that changes), 429 (rate). 5xx is transient by definition.
 */
export function isPermanentStatus(status) {
    return status >= 400 && status < 500 && ![401, 408, 409, 429].includes(status);
}
export const errorBody = z.object({
    error: z.object({
        code: z.string(),
        message: z.string(),
    }),
});
/** The contract's error body: code and message. Whether it is permanent follows from the status. */
export function toErrorBody(error) {
    return { error: { code: error.code, message: error.message } };
}
/** Turns a non-2xx answer of another DIPS process back into the ApiError it was built from. */
export async function readErrorResponse(response) {
    const text = await response.text().catch(() => '');
    let json;
    try {
        json = JSON.parse(text);
    }
    catch {
        // not JSON: a proxy or a plain server answered
    }
    const parsed = errorBody.safeParse(json);
    if (parsed.success)
        return new ApiError(response.status, parsed.data.error.code, parsed.data.error.message);
    return new ApiError(response.status, 'http_error', text.slice(0, 200) || response.statusText || `HTTP ${response.status}`);
}
/** One line describing an error answer, as logs and failure reasons show it. */
export const describeApiError = (error) => `${error.status} ${error.code}: ${error.message}`;
//# sourceMappingURL=errors.js.map