import type { Master } from '../master/master.js';
import type { CapacityProvider } from './capacity-provider.js';
import { ScalingConfigError, scalingPolicyFromEnv } from './config.js';
import { LocalCapacityProvider } from './local-provider.js';
import { Scaler } from './scaler.js';

/** Local worker processes within flags' bounds, or the AWS worker group within its own MinSize/MaxSize. */
export type ScalingMode =
  | { provider: 'local'; masterUrl: string; min: number; max: number }
  | { provider: 'aws'; groupName: string };

/** Local processes start in about a second; EC2 instances in a minute, and the AWS APIs throttle. */
const TICK_MS = { local: 1_000, aws: 10_000 } as const;

/**
 * Starts the scaling loop for a master: backlog from its dispatcher and job store, workers from its
 * registry, figures on its /metrics and /v1/cluster (through the master's scaler injection point).
 */
export async function startMasterScaler(master: Master, mode: ScalingMode, env: NodeJS.ProcessEnv = process.env): Promise<Scaler> {
  const logger = master.logger.child({ component: 'scaler' });
  let provider: CapacityProvider;
  let bounds: { min: number; max: number; desired?: number };
  if (mode.provider === 'local') {
    provider = new LocalCapacityProvider({ masterUrl: mode.masterUrl, logger, env });
    bounds = mode;
  } else {
    if (!mode.groupName) throw new ScalingConfigError('scaling the AWS worker group needs DIPS_ASG_NAME');
    // Loaded only here: the AWS SDK is not needed for local processes.
    const { AwsCapacityProvider } = await import('./aws-provider.js');
    const aws = new AwsCapacityProvider({ groupName: mode.groupName, logger });
    provider = aws;
    bounds = await aws.describeGroup();
  }
  const policy = scalingPolicyFromEnv({ min: bounds.min, max: bounds.max, scaleInAfterSeconds: master.config.scaleInAfter }, env);
  const scaler = new Scaler({
    policy,
    provider,
    backlog: () => {
      const cluster = master.backlog();
      // Images not yet started, and the untiled rest of large images in progress, are work too.
      // (The few tiles of those images already in the dispatcher count twice: a slight over-estimate.)
      return {
        queuedPixels: cluster.queuedPixels + cluster.waitingPixels + cluster.tiledPixels,
        queuedUnits: cluster.queuedUnits + cluster.waitingImages,
        inflightPixels: cluster.inflightPixels,
        inflightUnits: cluster.inflightUnits,
      };
    },
    workers: () => master.registry.list().filter((worker) => worker.state !== 'dead'),
    logger,
    registry: master.metrics.registry,
    intervalMs: TICK_MS[mode.provider],
    ...(bounds.desired === undefined ? {} : { initialDesired: bounds.desired }),
  });
  master.scaler = scaler;
  scaler.start();
  logger.info({ provider: mode.provider, ...policy }, 'scaler started');
  return scaler;
}
