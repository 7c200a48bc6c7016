import os from 'node:os';
import { BootClock } from './boot-clock.js';
import { ScalingConfigError, scalingSettingsFromEnv } from './config.js';
import { CostModel } from './cost-model.js';
import { LocalCapacityProvider } from './local-provider.js';
import { Scaler } from './scaler.js';
/** Local processes start in about a second; EC2 instances in a minute, and the AWS APIs throttle. */
const TICK_MS = { local: 1_000, aws: 10_000 };
/**
 * Starts the scaling loop for a master: backlog from its one backlog figure, costs learned from the
 * processing times its dispatcher sees, workers from its registry, figures on its /metrics and
 * /v1/cluster (through the master's scaler injection point).
 */
export async function startMasterScaler(master, mode, env = process.env) {
    const logger = master.logger.child({ component: 'scaler' });
    let provider;
    let bounds;
    if (mode.provider === 'local') {
        provider = new LocalCapacityProvider({ masterUrl: mode.masterUrl, logger, env });
        bounds = mode;
    }
    else {
        if (!mode.groupName)
            throw new ScalingConfigError('scaling the AWS worker group needs DIPS_ASG_NAME');
        // Loaded only here: the AWS SDK is not needed for local processes.
        const { AwsCapacityProvider } = await import('./aws-provider.js');
        const aws = new AwsCapacityProvider({ groupName: mode.groupName, logger });
        provider = aws;
        bounds = await aws.describeGroup();
    }
    const settings = scalingSettingsFromEnv(mode.provider, { min: bounds.min, max: bounds.max, scaleInAfterSeconds: master.config.scaleInAfter }, env);
    const costs = new CostModel(settings.costHalfLifeSeconds * 1000);
    master.dispatcher.onUnitDone((unit, { processingMs }) => {
        if (unit.work)
            costs.observe(unit.work, unit.pixels, processingMs, Date.now());
    });
    const scaler = new Scaler({
        policy: settings.policy,
        provider,
        backlog: () => master.backlog().work,
        workers: () => master.registry.list().filter((worker) => worker.state !== 'dead'),
        costs,
        boot: new BootClock(settings.bootSeconds),
        // Workers not yet registered are assumed to run one task per core, like the worker's own default.
        defaultSlots: os.availableParallelism(),
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
//# sourceMappingURL=master-scaler.js.map