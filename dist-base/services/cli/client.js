import { authHeaders } from '../shared/auth.js';
import { parseResponse } from '../protocol/api.js';
import { masterUrlFrom } from '../shared/config.js';
import { describeApiError, readErrorResponse } from '../protocol/errors.js';
/** A master's HTTP API as the CLI uses it: the URL and token come from flags or DIPS_* variables. */
export class MasterClient {
    baseUrl;
    token;
    constructor(masterFlag, env = process.env) {
        this.baseUrl = masterUrlFrom(masterFlag, env);
        this.token = env.DIPS_TOKEN || undefined;
    }
    /** Fetches a path of the API; a non-2xx answer becomes an error carrying the master's message. */
    async request(path, init = {}) {
        let response;
        try {
            response = await fetch(`${this.baseUrl}${path}`, { ...init, headers: { ...authHeaders(this.token), ...init.headers } });
        }
        catch (error) {
            throw new Error(`cannot reach the master at ${this.baseUrl}: ${error.cause?.message ?? error.message}`);
        }
        if (!response.ok) {
            const error = await readErrorResponse(response);
            throw new ApiError(response.status, describeApiError(error), response.headers.get('retry-after'), error.code);
        }
        return response;
    }
    /** Fetches a path and reads its answer through the route's protocol schema. */
    async json(path, schema, init) {
        return parseResponse(schema, await this.request(path, init));
    }
}
export class ApiError extends Error {
    status;
    retryAfter;
    code;
    name = 'ApiError';
    constructor(status, message, retryAfter, 
    /** The master's error code (`not_found` for a route it does not have). */
    code) {
        super(message);
        this.status = status;
        this.retryAfter = retryAfter;
        this.code = code;
    }
}
//# sourceMappingURL=client.js.map