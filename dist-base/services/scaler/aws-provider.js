import { AutoScalingClient, DescribeAutoScalingGroupsCommand, SetDesiredCapacityCommand, SetInstanceHealthCommand, SetInstanceProtectionCommand, } from '@aws-sdk/client-auto-scaling';
import { EC2Client, paginateDescribeInstances } from '@aws-sdk/client-ec2';
import { defaultAwsRetry, withAwsRetry } from './aws-retry.js';
import { ScalingConfigError } from './config.js';
/** SetInstanceProtection takes at most 50 instance ids per call. */
const PROTECTION_BATCH = 50;
const DEFAULT_HEARTBEAT_GRACE_MS = 5 * 60_000;
/**
 * Drives the worker group: this is the only writer of its desired capacity (the group has no
 * CloudWatch scaling policy). Busy workers are protected from scale-in while they hold work, and the
 * protection is set before capacity is lowered, so the group terminates idle instances.
 */
export class AwsCapacityProvider {
    options;
    kind = 'aws';
    autoScaling;
    ec2;
    retry;
    heartbeatGraceMs;
    now;
    /** The desired capacity the group last accepted; undefined until the first call succeeds. */
    applied;
    /** Protection as last set by us, per instance id. */
    protection = new Map();
    /** Instances already reported Unhealthy to the group (it replaces them; once is enough). */
    markedUnhealthy = new Set();
    constructor(options) {
        this.options = options;
        if (!options.groupName.trim())
            throw new Error('the AWS capacity provider needs the Auto Scaling group name (DIPS_ASG_NAME)');
        this.autoScaling = options.autoScaling ?? new AutoScalingClient({});
        this.ec2 = options.ec2 ?? new EC2Client({});
        this.retry = options.retry ?? defaultAwsRetry;
        this.heartbeatGraceMs = options.heartbeatGraceMs ?? DEFAULT_HEARTBEAT_GRACE_MS;
        this.now = options.now ?? Date.now;
    }
    async apply(desired, workers) {
        // Growing: ask first, instances take a minute to boot. Shrinking: protect busy workers first.
        const growing = this.applied === undefined || desired > this.applied;
        if (growing)
            await this.setDesiredCapacity(desired);
        const instances = await this.runningInstances();
        const byAddress = new Map(workers.map((worker) => [hostOf(worker.address), worker]));
        await this.updateProtection(instances, byAddress);
        if (!growing && desired !== this.applied)
            await this.setDesiredCapacity(desired);
        const silent = this.silentInstances(instances, byAddress);
        await this.markUnhealthy(silent.filter((instance) => !this.markedUnhealthy.has(instance.id)));
        return { actual: instances.length, silent: silent.map((instance) => instance.description) };
    }
    /**
     * The group's MinSize and MaxSize (the bounds to scale within) and its current DesiredCapacity (where
     * a restarted master picks up, rather than dropping a busy pool to min).
     */
    async describeGroup() {
        const { groupName } = this.options;
        const output = await withAwsRetry(`DescribeAutoScalingGroups(${groupName})`, () => this.autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [groupName] })), this.retry);
        const group = output.AutoScalingGroups?.[0];
        if (!group)
            throw new ScalingConfigError(`Auto Scaling group "${groupName}" (DIPS_ASG_NAME) does not exist`);
        return { min: group.MinSize ?? 0, max: group.MaxSize ?? 0, desired: group.DesiredCapacity ?? 0 };
    }
    async close() {
        this.autoScaling.destroy();
        this.ec2.destroy();
    }
    async setDesiredCapacity(desired) {
        await withAwsRetry(`SetDesiredCapacity(${this.options.groupName}, ${desired})`, () => this.autoScaling.send(
        // HonorCooldown false: this loop already paces itself; cooldowns would only delay a burst.
        new SetDesiredCapacityCommand({ AutoScalingGroupName: this.options.groupName, DesiredCapacity: desired, HonorCooldown: false })), this.retry);
        this.applied = desired;
    }
    async runningInstances() {
        return withAwsRetry(`DescribeInstances(group ${this.options.groupName})`, async () => {
            const found = [];
            const pages = paginateDescribeInstances({ client: this.ec2 }, {
                Filters: [
                    { Name: 'tag:aws:autoscaling:groupName', Values: [this.options.groupName] },
                    { Name: 'instance-state-name', Values: ['running'] },
                ],
            });
            for await (const page of pages) {
                for (const reservation of page.Reservations ?? []) {
                    for (const instance of reservation.Instances ?? []) {
                        if (instance.InstanceId)
                            found.push(toRunningInstance(instance));
                    }
                }
            }
            return found;
        }, this.retry);
    }
    /**
     * Protected while holding work, unprotected when idle. A worker that vanished from the registry
     * (crashed, stopped heartbeating) is unprotected too, so the group can replace its instance.
     */
    async updateProtection(instances, byAddress) {
        const changes = new Map([
            [true, []],
            [false, []],
        ]);
        for (const instance of instances) {
            const worker = instance.privateAddress ? byAddress.get(instance.privateAddress) : undefined;
            const known = this.protection.get(instance.id);
            if (!worker && known === undefined)
                continue; // still booting, launched unprotected
            const wanted = (worker?.inflight ?? 0) > 0;
            if (known !== wanted)
                changes.get(wanted).push(instance.id);
        }
        const running = new Set(instances.map((instance) => instance.id));
        for (const id of this.protection.keys())
            if (!running.has(id))
                this.protection.delete(id);
        for (const [protect, ids] of changes) {
            for (let start = 0; start < ids.length; start += PROTECTION_BATCH) {
                const batch = ids.slice(start, start + PROTECTION_BATCH);
                await withAwsRetry(`SetInstanceProtection(${protect}, ${batch.join(' ')})`, () => this.autoScaling.send(new SetInstanceProtectionCommand({
                    AutoScalingGroupName: this.options.groupName,
                    InstanceIds: batch,
                    ProtectedFromScaleIn: protect,
                })), this.retry);
                for (const id of batch)
                    this.protection.set(id, protect);
            }
        }
    }
    /** Instances past their boot grace that no registered worker runs on: a broken image, security group or token. */
    silentInstances(instances, byAddress) {
        const silent = [];
        for (const instance of instances) {
            const upForMs = this.now() - instance.launchedAt;
            if (upForMs < this.heartbeatGraceMs)
                continue;
            if (instance.privateAddress && byAddress.has(instance.privateAddress))
                continue;
            silent.push({ id: instance.id, description: `${instance.id} (${instance.privateAddress ?? 'no private address'}) running ${Math.round(upForMs / 1000)} s without a heartbeat` });
        }
        const running = new Set(instances.map((instance) => instance.id));
        for (const id of this.markedUnhealthy)
            if (!running.has(id))
                this.markedUnhealthy.delete(id);
        return silent;
    }
    /**
     * Tells the group that silent instances are unhealthy, so it terminates and replaces them (its own
     * EC2 health check sees a running instance, however broken the worker on it). Once per instance.
     */
    async markUnhealthy(instances) {
        for (const instance of instances) {
            this.options.logger.warn({ instanceId: instance.id }, `no worker heartbeats from this instance, marking it Unhealthy for replacement: ${instance.description}`);
            await withAwsRetry(`SetInstanceHealth(${instance.id}, Unhealthy)`, 
            // Respecting the grace period: a worker still booting (and slow) is not cut short.
            () => this.autoScaling.send(new SetInstanceHealthCommand({ InstanceId: instance.id, HealthStatus: 'Unhealthy', ShouldRespectGracePeriod: true })), this.retry);
            this.markedUnhealthy.add(instance.id);
        }
    }
}
function toRunningInstance(instance) {
    return {
        id: instance.InstanceId,
        privateAddress: instance.PrivateIpAddress,
        launchedAt: instance.LaunchTime?.getTime() ?? 0,
    };
}
function hostOf(address) {
    try {
        return new URL(address).hostname;
    }
    catch {
        return address;
    }
}
//# sourceMappingURL=aws-provider.js.map