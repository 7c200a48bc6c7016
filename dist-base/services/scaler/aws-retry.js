import pRetry from 'p-retry';
export const defaultAwsRetry = { retries: 5, minDelayMs: 200, maxDelayMs: 10_000 };
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
/** Throttling, server-side faults and network failures are worth retrying; validation errors are not. */
function isTransientAwsError(error) {
    const shape = error;
    if (shape.$retryable)
        return true;
    if (transientErrorNames.has(shape.name ?? ''))
        return true;
    if ((shape.$metadata?.httpStatusCode ?? 0) >= 500)
        return true;
    return ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN'].includes(shape.code ?? '');
}
/** Runs one AWS call, retrying transient failures; the last error is thrown with what was attempted. */
export async function withAwsRetry(what, call, options) {
    try {
        return await pRetry(call, {
            retries: options.retries,
            minTimeout: options.minDelayMs,
            maxTimeout: options.maxDelayMs,
            factor: 2,
            randomize: true,
            shouldRetry: ({ error }) => isTransientAwsError(error),
        });
    }
    catch (error) {
        throw new Error(`${what} failed: ${error.name}: ${error.message}`, { cause: error });
    }
}
//# sourceMappingURL=aws-retry.js.map