import { z } from 'zod';
import type { ScalingPolicy } from './policy.js';

/**
 * Default worker throughput: decode + blur σ2 + JPEG encode with 2 images in flight on a 2-core
 * machine measured 75-86 MP/s (see docs/scaling.md); 80 MP/s is about 60 images of 1.3 MP per second.
 * Override with DIPS_WORKER_MPPS once the benchmark has measured the real pipeline.
 */
export const DEFAULT_WORKER_MEGAPIXELS_PER_SECOND = 80;
/** About the time a new EC2 worker needs to boot: less backlog than this per worker drains before help arrives. */
export const DEFAULT_TARGET_SECONDS_PER_WORKER = 30;

const policySchema = z
  .object({
    min: z.number().int('min must be a whole number of workers').min(0, 'min must be 0 or more'),
    max: z.number().int('max must be a whole number of workers').min(1, 'max must be at least 1'),
    targetSecondsPerWorker: z.number().positive('the target seconds of backlog per worker must be positive'),
    workerPixelsPerSecond: z.number().positive('worker throughput must be positive'),
    scaleInAfterSeconds: z.number().min(0, 'DIPS_SCALE_IN_AFTER must be 0 or more seconds'),
  })
  .refine((policy) => policy.min <= policy.max, { message: 'min must not exceed max', path: ['min'] });

/** Thrown for a scaling configuration that cannot work; the message names the setting. */
export class ScalingConfigError extends Error {
  override readonly name = 'ScalingConfigError';
}

/** Validates a policy eagerly, so a bad flag or variable fails at start-up, not at the first burst. */
export function parseScalingPolicy(input: ScalingPolicy): ScalingPolicy {
  const parsed = policySchema.safeParse(input);
  if (!parsed.success) {
    throw new ScalingConfigError(
      `invalid scaling policy: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

function numberFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new ScalingConfigError(`${name} must be a number, got "${text}"`);
  return value;
}

/**
 * The policy from the bounds (flags), the scale-in delay (DIPS_SCALE_IN_AFTER, read by the master's
 * configuration) and the environment: DIPS_SCALE_TARGET_SECONDS (seconds of backlog per worker) and
 * DIPS_WORKER_MPPS (megapixels per second one worker processes).
 */
export function scalingPolicyFromEnv(
  settings: { min: number; max: number; scaleInAfterSeconds: number },
  env: NodeJS.ProcessEnv = process.env,
): ScalingPolicy {
  return parseScalingPolicy({
    ...settings,
    targetSecondsPerWorker: numberFromEnv(env, 'DIPS_SCALE_TARGET_SECONDS', DEFAULT_TARGET_SECONDS_PER_WORKER),
    workerPixelsPerSecond: numberFromEnv(env, 'DIPS_WORKER_MPPS', DEFAULT_WORKER_MEGAPIXELS_PER_SECOND) * 1e6,
  });
}
