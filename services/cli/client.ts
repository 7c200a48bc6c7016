import type { z } from 'zod';
import { authHeaders } from '../shared/auth.js';
import { parseResponse } from '../protocol/api.js';
import { masterUrlFrom } from '../shared/config.js';
import { describeApiError, readErrorResponse } from '../protocol/errors.js';

/** A master's HTTP API as the CLI uses it: the URL and token come from flags or DIPS_* variables. */
export class MasterClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;

  constructor(masterFlag?: string, env: NodeJS.ProcessEnv = process.env) {
    this.baseUrl = masterUrlFrom(masterFlag, env);
    this.token = env.DIPS_TOKEN || undefined;
  }

  /** Fetches a path of the API; a non-2xx answer becomes an error carrying the master's message. */
  async request(path: string, init: RequestInit = {}): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, { ...init, headers: { ...authHeaders(this.token), ...(init.headers as Record<string, string>) } });
    } catch (error) {
      throw new Error(`cannot reach the master at ${this.baseUrl}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`);
    }
    if (!response.ok) {
      const error = await readErrorResponse(response);
      throw new ApiError(response.status, describeApiError(error), response.headers.get('retry-after'), error.code);
    }
    return response;
  }

  /** Fetches a path and reads its answer through the route's protocol schema. */
  async json<Schema extends z.ZodType>(path: string, schema: Schema, init?: RequestInit): Promise<z.output<Schema>> {
    return parseResponse(schema, await this.request(path, init));
  }
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfter: string | null,
    /** The master's error code (`not_found` for a route it does not have). */
    readonly code?: string,
  ) {
    super(message);
  }
}
