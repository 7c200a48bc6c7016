import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AutoScalingClient, AutoScalingServiceException, DescribeAutoScalingGroupsCommand, SetDesiredCapacityCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RunningMaster, startMaster } from '../../services/master/server.js';
import { startMasterScaler } from '../../services/scaler/master-scaler.js';
import { startScalerWithRetry } from '../../services/scaler/startup.js';
import { parseResponse } from '../../services/protocol/api.js';
import { clusterAnswer } from '../../services/protocol/newcomer.js';

// The AWS SDK faked at the client boundary; the master is real, on loopback.
const autoScaling = mockClient(AutoScalingClient);
const ec2 = mockClient(EC2Client);
const groupName = 'DipsTest-workers';
const quick = { attempts: 4, minDelayMs: 20, maxDelayMs: 50 };
const silent = pino({ level: 'silent' });

let dataDir: string;
let running: RunningMaster;
const region = process.env.AWS_REGION;

beforeAll(async () => {
  process.env.AWS_REGION = 'eu-west-3';
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'dips-scaler-startup-'));
  running = await startMaster({ port: 0, dataDir });
});

/** The scaler a test started: stopped after it, so its loop makes no more calls. */
let started: { stop(): Promise<void> } | undefined;

afterEach(async () => {
  await started?.stop();
  started = undefined;
  autoScaling.reset();
  ec2.reset();
});

afterAll(async () => {
  await running.close();
  rmSync(dataDir, { recursive: true, force: true });
  if (region === undefined) delete process.env.AWS_REGION;
  else process.env.AWS_REGION = region;
});

const cluster = async () => parseResponse(clusterAnswer, await fetch(`${running.url}/v1/cluster`));
const group = { AutoScalingGroupName: groupName, MinSize: 0, MaxSize: 4, DesiredCapacity: 0 };

describe('scaler start-up', () => {
  it('stops retrying as soon as the master is stopping, with the stop\'s reason, and makes no attempt after it', async () => {
    let attempts = 0;
    const stopping = new AbortController();
    const failing = async (): Promise<never> => {
      attempts++;
      setTimeout(() => stopping.abort(new Error('the master is stopping')), 10);
      throw new Error('the group does not exist yet');
    };
    const startedAt = performance.now();
    await expect(startScalerWithRetry(running.master, failing, silent, { attempts: 5, minDelayMs: 5_000, maxDelayMs: 5_000 }, stopping.signal)).rejects.toThrow('the master is stopping');
    expect(performance.now() - startedAt).toBeLessThan(2_000);
    expect(attempts).toBe(1);
  });

  it('retries a group that does not exist yet, shows that in /v1/cluster, then runs', async () => {
    const seen: Record<string, unknown>[] = [];
    let calls = 0;
    autoScaling.on(DescribeAutoScalingGroupsCommand).callsFake(async () => {
      calls++;
      if (calls <= 2) {
        seen.push((await cluster()).scaler!);
        return { AutoScalingGroups: [] };
      }
      return { AutoScalingGroups: [group] };
    });
    autoScaling.on(SetDesiredCapacityCommand).resolves({});
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });

    const scaler = await startScalerWithRetry(running.master, () => startMasterScaler(running.master, { provider: 'aws', groupName }), silent, quick);
    started = scaler;
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(seen[0]).toMatchObject({ state: 'starting', attempt: 1, attempts: 4 });
    expect(seen[1]).toMatchObject({ state: 'starting', attempt: 2, lastError: expect.stringContaining(`"${groupName}" (DIPS_ASG_NAME) does not exist`) });
    expect(running.master.scaler).toBe(scaler);
    expect((await cluster()).scaler).not.toHaveProperty('state', 'starting');
  });

  it('retries AccessDenied (a new role still propagating), and gives up after the last attempt, showing "failed"', async () => {
    autoScaling.on(DescribeAutoScalingGroupsCommand).rejects(
      new AutoScalingServiceException({ name: 'AccessDenied', $fault: 'client', $metadata: { httpStatusCode: 403 }, message: 'not authorized to perform: autoscaling:DescribeAutoScalingGroups' }),
    );
    await expect(startScalerWithRetry(running.master, () => startMasterScaler(running.master, { provider: 'aws', groupName }), silent, quick)).rejects.toThrow(
      /did not start after 4 attempts: .*not authorized/,
    );
    expect(autoScaling.commandCalls(DescribeAutoScalingGroupsCommand)).toHaveLength(4);
    expect((await cluster()).scaler).toMatchObject({ state: 'failed', attempt: 4, lastError: expect.stringContaining('AccessDenied') });
  });
});
