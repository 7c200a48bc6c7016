import os from 'node:os';
import type { Master } from '../master/master.js';
import { BootClock } from './boot-clock.js';
import type { CapacityProvider } from './capacity-provider.js';
import { ScalingConfigError, scalingSettingsFromEnv } from './config.js';
import { CostModel } from './cost-model.js';
import { LocalCapacityProvider } from './local-provider.js';
import { Scaler } from './scaler.js';

/** Local worker processes within flags' bounds, or the AWS worker group within its own MinSize/MaxSize. */
export type ScalingMode =
  | { provider: 'local'; masterUrl: string; min: number; max: number }
  | { provider: 'aws'; groupName: string };

/** Local processes start in about a second; EC2 instances in a minute, and the AWS APIs throttle. */
const TICK_MS = { local: 1_000, aws: 10_000 } as const;

/**
 * Starts the scaling loop for a master: backlog from its one backlog figure, costs learned from the
 * processing times its dispatcher sees, workers from its registry, figures on its /metrics and
 * /v1/cluster (through the master's scaler injection point).
 */
export async function startMasterScaler(master: Master, mode: ScalingMode, env: NodeJS.ProcessEnv = process.env): Promise<Scaler> {
  const logger = master.logger.child({ component: 'scaler' });
  let provider: CapacityProvider;
  let bounds: { min: number; max: number; desired?: number };
  // Workers not yet registered are assumed to run the tasks their defaults give them.
  let defaultSlots = os.availableParallelism();
  if (mode.provider === 'local') {
    const local = new LocalCapacityProvider({ masterUrl: mode.masterUrl, logger, env, maxWorkers: mode.max });
    provider = local;
    defaultSlots = local.slots;
    bounds = mode;
  } else {
    if (!mode.groupName) throw new ScalingConfigError('scaling the AWS worker group needs DIPS_ASG_NAME');
    // Loaded only here: the AWS SDK is not needed for local processes.
    const { AwsCapacityProvider } = await import('./aws-provider.js');
    const aws = new AwsCapacityProvider({ groupName: mode.groupName, logger });
    provider = aws;
    bounds = await aws.describeGroup();
  }
  const settings = scalingSettingsFromEnv(mode.provider, { min: bounds.min, max: bounds.max, scaleInAfterSeconds: master.config.scaleInAfter }, env);
  const costs = new CostModel(settings.costHalfLifeSeconds * 1000);
  master.dispatcher.onUnitDone((unit, { processingMs }) => {
    if (unit.work) costs.observe(unit.work, unit.pixels, processingMs, Date.now());
  });
  const scaler = new Scaler({
    policy: settings.policy,
    provider,
    backlog: () => master.backlog().work,
    workers: () => master.registry.list().filter((worker) => worker.state !== 'dead'),
    costs,
    boot: new BootClock(settings.bootSeconds),
    defaultSlots,
    logger,
    registry: master.metrics.registry,
    intervalMs: TICK_MS[mode.provider],
    ...(bounds.desired === undefined ? {} : { initialDesired: bounds.desired }),
  });
  master.scaler = scaler;
  scaler.start();
  logger.info({ provider: mode.provider, ...settings.policy, bootSeconds: settings.bootSeconds, costHalfLifeSeconds: settings.costHalfLifeSeconds }, 'scaler started');
  return scaler;
}
