import type { Node } from 'constructs';
import { z } from 'zod';

/** Fixed facts of the deployment that are not worth a context switch. */
export const API_PORT = 8080;
export const WORKER_PORT = 12345;
/** Canonical's public SSM parameter: resolves at deploy time, so synth needs no AWS lookup. */
export const UBUNTU_AMI_PARAMETER = '/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id';
/** The master's local data directory (SQLite job store, intermediates). */
export const MASTER_DATA_DIR = '/var/lib/dips';
/** Key prefix of job data in the bucket; the master's write access is limited to it. */
export const JOB_DATA_PREFIX = 'jobs/';

const cidr = z
  .cidrv4({
    error: (issue) =>
      issue.input === undefined
        ? 'context "allowedCidr" is required: the IPv4 CIDR allowed to reach the API, e.g. cdk deploy -c allowedCidr=203.0.113.7/32'
        : 'context "allowedCidr" must be an IPv4 CIDR such as 203.0.113.7/32',
  })
  .refine((value) => value !== '0.0.0.0/0', 'context "allowedCidr" must not be 0.0.0.0/0: name the network that may reach the API');
const count = (name: string, fallback: number) =>
  z.coerce.number({ error: `context "${name}" must be a whole number` }).int(`context "${name}" must be a whole number`).min(0, `context "${name}" must be 0 or more`).default(fallback);
const instanceType = (name: string) =>
  z.string().regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, `context "${name}" must be an EC2 instance type such as t3.micro`).default('t3.micro');

const configSchema = z
  .object({
    allowedCidr: cidr,
    stackName: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,100}$/, 'context "stackName" must start with a letter and hold only letters, digits and hyphens')
      .default('Dips'),
    masterInstanceType: instanceType('masterInstanceType'),
    workerInstanceType: instanceType('workerInstanceType'),
    minWorkers: count('minWorkers', 1),
    maxWorkers: count('maxWorkers', 4),
    masterVolumeGiB: count('masterVolumeGiB', 20),
    workerVolumeGiB: count('workerVolumeGiB', 10),
    jobDataExpiryDays: count('jobDataExpiryDays', 7),
  })
  .refine((config) => config.maxWorkers >= config.minWorkers && config.maxWorkers >= 1, {
    message: 'context "maxWorkers" must be at least 1 and at least "minWorkers"',
    path: ['maxWorkers'],
  });

/** Every tunable of the stack, read from CDK context (`cdk deploy -c name=value` or cdk.json). */
export type DipsConfig = z.infer<typeof configSchema>;

export class DipsConfigError extends Error {
  override readonly name = 'DipsConfigError';
}

/** Reads and validates the tunables; throws a message naming each bad context value. */
export function readConfig(node: Node): DipsConfig {
  const raw = Object.fromEntries(Object.keys(configSchema.shape).map((key) => [key, node.tryGetContext(key)]));
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new DipsConfigError(result.error.issues.map((issue) => issue.message).join('\n'));
  return result.data;
}
