import { z } from 'zod';
import { DEFAULT_COST_HALF_LIFE_SECONDS } from './cost-model.js';
/**
 * How long a new worker takes to be useful until the scaler has timed one (DIPS_BOOT_SECONDS):
 * a local `dips worker` process starts and heartbeats in 1-3 s on a loaded 2-core machine; an EC2
 * worker boots, starts the service and heartbeats in 60-90 s (docs/scaling.md).
 */
export const DEFAULT_BOOT_SECONDS = { local: 3, aws: 75 };
const policySchema = z
    .object({
    min: z.number().int('min must be a whole number of workers').min(0, 'min must be 0 or more'),
    max: z.number().int('max must be a whole number of workers').min(1, 'max must be at least 1'),
    scaleInAfterSeconds: z.number().min(0, 'DIPS_SCALE_IN_AFTER must be 0 or more seconds'),
})
    .refine((policy) => policy.min <= policy.max, { message: 'min must not exceed max', path: ['min'] });
/** Thrown for a scaling configuration that cannot work; the message names the setting. */
export class ScalingConfigError extends Error {
    name = 'ScalingConfigError';
}
/** Validates a policy eagerly, so a bad flag or variable fails at start-up, not at the first burst. */
export function parseScalingPolicy(input) {
    const parsed = policySchema.safeParse(input);
    if (!parsed.success) {
        throw new ScalingConfigError(`invalid scaling policy: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
    }
    return parsed.data;
}
function positiveFromEnv(env, name, fallback) {
    const text = env[name];
    if (text === undefined || text.trim() === '')
        return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0)
        throw new ScalingConfigError(`${name} must be a positive number of seconds, got "${text}"`);
    return value;
}
/**
 * The settings from the bounds (flags), the scale-in delay (DIPS_SCALE_IN_AFTER, read by the master's
 * configuration) and the environment: DIPS_BOOT_SECONDS (boot time assumed until measured) and
 * DIPS_COST_HALF_LIFE (seconds for an unused learned cost to lose half its weight).
 */
export function scalingSettingsFromEnv(provider, bounds, env = process.env) {
    return {
        policy: parseScalingPolicy(bounds),
        bootSeconds: positiveFromEnv(env, 'DIPS_BOOT_SECONDS', DEFAULT_BOOT_SECONDS[provider]),
        costHalfLifeSeconds: positiveFromEnv(env, 'DIPS_COST_HALF_LIFE', DEFAULT_COST_HALF_LIFE_SECONDS),
    };
}
//# sourceMappingURL=config.js.map