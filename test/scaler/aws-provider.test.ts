import {
  type AutoScalingGroup,
  AutoScalingClient,
  AutoScalingServiceException,
  DescribeAutoScalingGroupsCommand,
  SetDesiredCapacityCommand,
  SetInstanceHealthCommand,
  SetInstanceProtectionCommand,
} from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AwsCapacityProvider } from '../../services/scaler/aws-provider.js';
import type { WorkerSnapshot } from '../../services/scaler/capacity-provider.js';

const groupName = 'dips-workers-test';
const now = Date.parse('2026-03-01T12:00:00Z');
const autoScaling = mockClient(AutoScalingClient);
const ec2 = mockClient(EC2Client);

function throttling(): AutoScalingServiceException {
  return new AutoScalingServiceException({
    name: 'Throttling',
    $fault: 'client',
    $metadata: { httpStatusCode: 400 },
    message: 'Rate exceeded',
  });
}

function instance(index: number, launchedSecondsAgo = 600): Instance {
  return { InstanceId: `i-${index}`, PrivateIpAddress: `10.0.1.${index}`, LaunchTime: new Date(now - launchedSecondsAgo * 1000) };
}

function worker(index: number, inflight: number): WorkerSnapshot {
  return { id: `w${index}`, address: `http://10.0.1.${index}:12345`, inflight };
}

function provider(logger = pino({ level: 'silent' })): AwsCapacityProvider {
  return new AwsCapacityProvider({
    groupName,
    logger,
    autoScaling: new AutoScalingClient({ region: 'eu-west-1' }),
    ec2: new EC2Client({ region: 'eu-west-1' }),
    retry: { retries: 3, minDelayMs: 1, maxDelayMs: 5 },
    heartbeatGraceMs: 120_000,
    now: () => now,
  });
}

beforeEach(() => {
  autoScaling.reset();
  ec2.reset();
  autoScaling.on(SetDesiredCapacityCommand).resolves({});
  autoScaling.on(SetInstanceProtectionCommand).resolves({});
  autoScaling.on(SetInstanceHealthCommand).resolves({});
});
afterEach(() => {
  autoScaling.reset();
  ec2.reset();
});

describe('AwsCapacityProvider', () => {
  it('sets the group desired capacity without honouring cooldowns, and finds running workers by the group tag', async () => {
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [instance(1), instance(2)] }] });
    const report = await provider().apply(3, [worker(1, 0), worker(2, 0)]);

    expect(autoScaling).toHaveReceivedCommandExactlyOnceWith(SetDesiredCapacityCommand, {
      AutoScalingGroupName: groupName,
      DesiredCapacity: 3,
      HonorCooldown: false,
    });
    expect(ec2).toHaveReceivedCommandWith(DescribeInstancesCommand, {
      Filters: [
        { Name: 'tag:aws:autoscaling:groupName', Values: [groupName] },
        { Name: 'instance-state-name', Values: ['running'] },
      ],
    });
    expect(report).toEqual({ actual: 2, silent: [] });
  });

  it('follows DescribeInstances pages', async () => {
    ec2
      .on(DescribeInstancesCommand)
      .resolvesOnce({ Reservations: [{ Instances: [instance(1)] }], NextToken: 'page-2' })
      .resolvesOnce({ Reservations: [{ Instances: [instance(2), instance(3)] }] });
    const report = await provider().apply(3, [worker(1, 0), worker(2, 0), worker(3, 0)]);
    expect(report.actual).toBe(3);
    expect(ec2).toHaveReceivedCommandTimes(DescribeInstancesCommand, 2);
    expect(ec2).toHaveReceivedNthCommandWith(DescribeInstancesCommand, 2, { NextToken: 'page-2' });
  });

  it('protects busy workers, unprotects idle ones, and does so before lowering capacity', async () => {
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [instance(1), instance(2), instance(3), instance(4)] }] });
    const aws = provider();
    await aws.apply(4, [worker(1, 0), worker(2, 0), worker(3, 0), worker(4, 0)]);
    autoScaling.resetHistory();

    await aws.apply(2, [worker(1, 2), worker(2, 0), worker(3, 1), worker(4, 0)]);
    expect(autoScaling).toHaveReceivedCommandExactlyOnceWith(SetInstanceProtectionCommand, {
      AutoScalingGroupName: groupName,
      InstanceIds: ['i-1', 'i-3'],
      ProtectedFromScaleIn: true,
    });
    const calls = autoScaling.calls().map((call) => call.args[0].constructor.name);
    expect(calls).toEqual(['SetInstanceProtectionCommand', 'SetDesiredCapacityCommand']);
    expect(autoScaling).toHaveReceivedLastCommandWith(SetDesiredCapacityCommand, { DesiredCapacity: 2 });

    // Work done: protection comes off; unchanged capacity is not set again.
    autoScaling.resetHistory();
    await aws.apply(2, [worker(1, 0), worker(2, 0), worker(3, 0), worker(4, 0)]);
    expect(autoScaling).toHaveReceivedCommandExactlyOnceWith(SetInstanceProtectionCommand, {
      AutoScalingGroupName: groupName,
      InstanceIds: ['i-1', 'i-3'],
      ProtectedFromScaleIn: false,
    });
    expect(autoScaling).not.toHaveReceivedCommand(SetDesiredCapacityCommand);
  });

  it('sends protection in batches of at most 50 instance ids', async () => {
    const many = Array.from({ length: 120 }, (_, index) => index + 1);
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: many.map((index) => instance(index)) }] });
    await provider().apply(120, many.map((index) => worker(index, 1)));
    const batches = autoScaling.commandCalls(SetInstanceProtectionCommand).map((call) => call.args[0].input.InstanceIds ?? []);
    expect(batches.map((ids) => ids.length)).toEqual([50, 50, 20]);
    expect(batches.flat()).toEqual(many.map((index) => `i-${index}`));
  });

  it('reports an instance that never heartbeats once its boot grace is over, and logs it', async () => {
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [{ Instances: [instance(1), instance(2, 600), instance(3, 30)] }],
    });
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const report = await provider(logger).apply(3, [worker(1, 0)]);
    expect(report.silent).toHaveLength(1);
    expect(report.silent[0]).toContain('i-2 (10.0.1.2)');
    expect(lines.join('')).toContain('i-2');
    expect(lines.join('')).not.toContain('i-3'); // still booting
  });

  it('marks an instance whose worker stopped heartbeating Unhealthy, once, so the group replaces it', async () => {
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [instance(1), instance(2), instance(3, 30)] }] });
    const scaler = provider();
    await scaler.apply(3, [worker(1, 0), worker(2, 0)]);
    expect(autoScaling).not.toHaveReceivedCommand(SetInstanceHealthCommand);
    // Worker 2 stops heartbeating: the registry drops it.
    await scaler.apply(3, [worker(1, 0)]);
    await scaler.apply(3, [worker(1, 0)]);
    expect(autoScaling).toHaveReceivedCommandTimes(SetInstanceHealthCommand, 1);
    expect(autoScaling).toHaveReceivedCommandWith(SetInstanceHealthCommand, { InstanceId: 'i-2', HealthStatus: 'Unhealthy', ShouldRespectGracePeriod: true });
  });

  it('retries a throttled SetDesiredCapacity and then succeeds', async () => {
    autoScaling.on(SetDesiredCapacityCommand).rejectsOnce(throttling()).resolves({});
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    await expect(provider().apply(2, [])).resolves.toEqual({ actual: 0, silent: [] });
    expect(autoScaling).toHaveReceivedCommandTimes(SetDesiredCapacityCommand, 2);
  });

  it('retries throttled EC2 discovery (RequestLimitExceeded)', async () => {
    ec2
      .on(DescribeInstancesCommand)
      .rejectsOnce(Object.assign(new Error('Request limit exceeded.'), { name: 'RequestLimitExceeded' }))
      .resolves({ Reservations: [{ Instances: [instance(1)] }] });
    await expect(provider().apply(1, [worker(1, 0)])).resolves.toMatchObject({ actual: 1 });
    expect(ec2).toHaveReceivedCommandTimes(DescribeInstancesCommand, 2);
  });

  it('surfaces persistent throttling as an error after a bounded number of tries, and tries again on the next call', async () => {
    autoScaling.on(SetDesiredCapacityCommand).rejects(throttling());
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    const aws = provider();
    await expect(aws.apply(2, [])).rejects.toThrow(/SetDesiredCapacity\(dips-workers-test, 2\) failed: Throttling/);
    expect(autoScaling).toHaveReceivedCommandTimes(SetDesiredCapacityCommand, 4); // 1 try + 3 retries

    autoScaling.on(SetDesiredCapacityCommand).resolves({});
    await expect(aws.apply(2, [])).resolves.toMatchObject({ actual: 0 });
    expect(autoScaling).toHaveReceivedLastCommandWith(SetDesiredCapacityCommand, { DesiredCapacity: 2 });
  });

  it('does not retry a validation error', async () => {
    autoScaling.on(SetDesiredCapacityCommand).rejects(
      new AutoScalingServiceException({
        name: 'ValidationError',
        $fault: 'client',
        $metadata: { httpStatusCode: 400 },
        message: 'New SetDesiredCapacity value 9 is above max value 4 for the AutoScalingGroup.',
      }),
    );
    await expect(provider().apply(9, [])).rejects.toThrow(/above max value 4/);
    expect(autoScaling).toHaveReceivedCommandTimes(SetDesiredCapacityCommand, 1);
  });
});

describe('AwsCapacityProvider.describeGroup', () => {
  it("reads the group's MinSize, MaxSize and DesiredCapacity", async () => {
    autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [{ AutoScalingGroupName: groupName, MinSize: 1, MaxSize: 6, DesiredCapacity: 2 } as AutoScalingGroup],
    });
    await expect(provider().describeGroup()).resolves.toEqual({ min: 1, max: 6, desired: 2 });
    expect(autoScaling).toHaveReceivedCommandWith(DescribeAutoScalingGroupsCommand, { AutoScalingGroupNames: [groupName] });
  });

  it('names the group when it does not exist', async () => {
    autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [] });
    await expect(provider().describeGroup()).rejects.toThrow(/dips-workers-test.*DIPS_ASG_NAME/);
  });
});
