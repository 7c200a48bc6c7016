import pRetry from 'p-retry';
import type { Logger } from 'pino';
import type { Master, Scaler as MasterScaler } from '../master/master.js';
import type { ScalerStartup } from '../protocol/api.js';

/** Bounds of the start-up retries: exponential backoff with jitter, a fixed number of attempts. */
export interface StartupRetry {
  attempts: number;
  minDelayMs: number;
  maxDelayMs: number;
}

/**
 * About 10 minutes in all: long enough for a worker group created in the same deploy to appear and
 * for a new instance role's permissions to propagate (AccessDenied at first), short enough that a
 * real misconfiguration stops the master, which systemd restarts and the boot log shows.
 */
export const defaultStartupRetry: StartupRetry = { attempts: 12, minDelayMs: 2_000, maxDelayMs: 120_000 };


/**
 * Starts the scaler with `start`, retrying any failure (a group that does not exist yet, AccessDenied
 * while IAM propagates) with backoff. Meanwhile the master's /v1/cluster shows the start-up state;
 * after the last attempt it shows "failed" and the promise rejects: the caller exits non-zero.
 * `stopping` aborts the retries (the master is being stopped): the promise rejects with its reason.
 */
export async function startScalerWithRetry<T extends MasterScaler>(
  master: Master,
  start: () => Promise<T>,
  logger: Logger,
  retry: StartupRetry = defaultStartupRetry,
  stopping?: AbortSignal,
): Promise<T> {
  const status: ScalerStartup = { state: 'starting', attempt: 1, attempts: retry.attempts };
  master.scaler = {
    // Until the scaler runs, the cluster wants what it has, as without one.
    desiredCapacity: (_backlog, workers) => workers.filter((worker) => worker.state !== 'dead').length,
    status: () => ({ ...status }),
  };
  try {
    return await pRetry(
      async (attempt) => {
        status.attempt = attempt;
        return start();
      },
      {
        retries: retry.attempts - 1,
        minTimeout: retry.minDelayMs,
        maxTimeout: retry.maxDelayMs,
        factor: 2,
        randomize: true,
        ...(stopping ? { signal: stopping } : {}),
        onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
          status.lastError = error.message;
          logger.warn({ attempt: attemptNumber, retriesLeft, err: error.message }, 'the scaler could not start; retrying');
        },
      },
    );
  } catch (error) {
    if (stopping?.aborted) throw stopping.reason;
    status.state = 'failed';
    status.lastError = (error as Error).message;
    throw new Error(`the scaler did not start after ${retry.attempts} attempts: ${(error as Error).message}`, { cause: error });
  }
}
