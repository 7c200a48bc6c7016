import pRetry from 'p-retry';

/** Bounds of the retry loop around AWS calls: exponential backoff with jitter, a fixed number of tries. */
export interface AwsRetryOptions {
  retries: number;
  minDelayMs: number;
  maxDelayMs: number;
}

export const defaultAwsRetry: AwsRetryOptions = { retries: 5, minDelayMs: 200, maxDelayMs: 10_000 };

/** Error names the AWS APIs use for "slow down" or "busy, try again". */
const transientErrorNames = new Set([
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ResourceContention',
  'ResourceContentionFault',
  'ScalingActivityInProgress',
  'ScalingActivityInProgressFault',
  'ServiceUnavailable',
  'InternalFailure',
  'TimeoutError',
  'RequestTimeout',
]);

interface AwsErrorShape {
  name?: string;
  code?: string;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** Throttling, server-side faults and network failures are worth retrying; validation errors are not. */
function isTransientAwsError(error: unknown): boolean {
  const shape = error as AwsErrorShape;
  if (shape.$retryable) return true;
  if (transientErrorNames.has(shape.name ?? '')) return true;
  if ((shape.$metadata?.httpStatusCode ?? 0) >= 500) return true;
  return ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN'].includes(shape.code ?? '');
}

/** Runs one AWS call, retrying transient failures; the last error is thrown with what was attempted. */
export async function withAwsRetry<T>(what: string, call: () => Promise<T>, options: AwsRetryOptions): Promise<T> {
  try {
    return await pRetry(call, {
      retries: options.retries,
      minTimeout: options.minDelayMs,
      maxTimeout: options.maxDelayMs,
      factor: 2,
      randomize: true,
      shouldRetry: ({ error }) => isTransientAwsError(error),
    });
  } catch (error) {
    throw new Error(`${what} failed: ${(error as Error).name}: ${(error as Error).message}`, { cause: error });
  }
}
