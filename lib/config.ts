import type { Node } from 'constructs';
import { z } from 'zod';
import { PIXEL_MEMORY_SHARE } from '../services/image-core/pixel-memory.js';
import { ARCH_FACTS, archOfInstanceType } from './bundle/target.js';

/** Fixed facts of the deployment that are not worth a context switch. */
export const API_PORT = 8080;
export const WORKER_PORT = 12345;
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
const instanceType = (name: string, fallback: string) =>
  z.string().regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, `context "${name}" must be an EC2 instance type such as t4g.micro`).default(fallback);
const amiId = (name: string) => z.string().regex(/^ami-[0-9a-f]{8,17}$/, `context "${name}" must be an AMI id such as ami-0123456789abcdef0`).optional();

/** An S3 location the master may use for batch jobs: `bucket`, and `prefix` as a folder ('' for all of it). */
export interface S3Root {
  uri: string;
  bucket: string;
  prefix: string;
}

/**
 * Parses `s3://bucket/prefix,...`: S3's bucket naming rules (3-63 lowercase letters, digits, dots and
 * hyphens, a letter or digit at each end) and no "." or ".." segment, as the master's URI check. A
 * prefix is a folder, as the master reads DIPS_SOURCES: `s3://b/in` covers `in/...`, not `inx`.
 */
export function parseS3Roots(name: string, text: string | undefined, context: z.RefinementCtx): S3Root[] {
  const roots: S3Root[] = [];
  for (const uri of (text ?? '').split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')) {
    const match = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(uri);
    const refuse = (why: string) => context.addIssue({ code: 'custom', message: `context "${name}": ${JSON.stringify(uri)} ${why}` });
    if (!match) {
      refuse('is not an s3://bucket/prefix URI (several are separated by commas)');
      continue;
    }
    const [, bucket = '', key = ''] = match;
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      refuse(`names the bucket ${JSON.stringify(bucket)}: S3 bucket names are 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit`);
      continue;
    }
    if (key.split('/').some((segment) => segment === '.' || segment === '..') || /[*?'"\\\s]/.test(key)) {
      refuse('has a ".", ".." segment, a wildcard, a quote or a space in its prefix: name the folder itself');
      continue;
    }
    roots.push({ uri, bucket, prefix: key === '' || key.endsWith('/') ? key : `${key}/` });
  }
  return roots;
}
const s3Roots = (name: string) => z.string({ error: `context "${name}" must be a comma-separated list of s3:// URIs` }).optional().transform((text, context) => parseS3Roots(name, text, context));

/** GiB per vCPU of the general families: compute (c), general purpose (m), memory (r). */
const GIB_PER_VCPU: Record<string, number> = { c: 2, m: 4, r: 8 };
/** Burstable (t) sizes: memory in MiB and vCPUs, t2, t3, t3a and t4g alike. */
const BURSTABLE: Record<string, { memoryMiB: number; vcpus: number }> = {
  nano: { memoryMiB: 512, vcpus: 2 },
  micro: { memoryMiB: 1024, vcpus: 2 },
  small: { memoryMiB: 2048, vcpus: 2 },
  medium: { memoryMiB: 4096, vcpus: 2 },
  large: { memoryMiB: 8192, vcpus: 2 },
  xlarge: { memoryMiB: 16384, vcpus: 4 },
  '2xlarge': { memoryMiB: 32768, vcpus: 8 },
};

/** An instance's memory and vCPUs: what a worker on it can hold, and how many tasks it runs at once (one per vCPU). */
export interface InstanceShape {
  memoryMiB: number;
  vcpus: number;
}

/**
 * An EC2 instance type's memory and vCPUs, from its name: t sizes, and c, m, r at 2, 4 and 8 GiB per
 * vCPU (medium 1 vCPU, large 2, xlarge 4, Nxlarge 4N). Undefined for other families (GPU, storage,
 * metal), for which the deployer gives workerMemoryMiB and workerVcpus.
 */
export function instanceShape(instanceType: string): InstanceShape | undefined {
  const [family = '', size = ''] = instanceType.split('.');
  const letters = /^([a-z]+)\d/.exec(family)?.[1];
  if (letters === 't') return BURSTABLE[size];
  const perVcpu = letters === undefined ? undefined : GIB_PER_VCPU[letters];
  const vcpus = size === 'medium' ? 1 : size === 'large' ? 2 : /^(\d*)xlarge$/.test(size) ? 4 * Number(size.slice(0, -'xlarge'.length) || 1) : undefined;
  return perVcpu === undefined || vcpus === undefined ? undefined : { memoryMiB: perVcpu * vcpus * 1024, vcpus };
}

/** What the Ubuntu instance, its agents and the worker's own Node and sharp keep of a worker's memory. */
const WORKER_OVERHEAD_MIB = 512;
/** The planner's budget on the default t4g.micro (its default DIPS_WORKER_MEMORY_BYTES), with which the tiling figures were measured. */
const MICRO_BUDGET_MIB = 512;

/**
 * DIPS_WORKER_MEMORY_BYTES for a worker instance: the planner lets one task of a whole stage fill
 * PIXEL_MEMORY_SHARE of it, and a worker runs one task per vCPU, so the budget is what is left after
 * WORKER_OVERHEAD_MIB divided among that many such tasks: all of them at once still fit. Never below the
 * micro's budget, which larger instances have more room for. Or the issue naming what to give.
 */
function workerImageMemory(config: { workerInstanceType: string; workerMemoryMiB?: number | undefined; workerVcpus?: number | undefined }): number | string {
  const named = instanceShape(config.workerInstanceType);
  const memoryMiB = config.workerMemoryMiB ?? named?.memoryMiB;
  const vcpus = config.workerVcpus ?? named?.vcpus;
  if (memoryMiB === undefined || vcpus === undefined) {
    return `context "workerInstanceType" is ${config.workerInstanceType}, whose memory and vCPUs synth cannot tell from its name: give them as "workerMemoryMiB" and "workerVcpus", e.g. -c workerMemoryMiB=16384 -c workerVcpus=4`;
  }
  if (memoryMiB < WORKER_OVERHEAD_MIB + MICRO_BUDGET_MIB) {
    return `a worker of ${memoryMiB} MiB (${config.workerInstanceType}) is too small: DIPS keeps ${WORKER_OVERHEAD_MIB} MiB of it for the system and needs at least ${WORKER_OVERHEAD_MIB + MICRO_BUDGET_MIB} MiB in all`;
  }
  const shared = (memoryMiB - WORKER_OVERHEAD_MIB) / (PIXEL_MEMORY_SHARE * vcpus);
  return Math.floor(Math.max(MICRO_BUDGET_MIB, shared)) * 1024 * 1024;
}

const configObject = z.object({
    allowedCidr: cidr,
    stackName: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,100}$/, 'context "stackName" must start with a letter and hold only letters, digits and hyphens')
      .default('Dips'),
    // Graviton (t4g) is about 20% cheaper than t3 for the same vCPUs and memory (docs/deploy.md).
    masterInstanceType: instanceType('masterInstanceType', 't4g.small'),
    workerInstanceType: instanceType('workerInstanceType', 't4g.micro'),
    /** A worker instance's memory and vCPUs, for types synth cannot tell them of from the name (instanceShape). */
    workerMemoryMiB: z.coerce.number({ error: 'context "workerMemoryMiB" must be a whole number' }).int('context "workerMemoryMiB" must be a whole number').optional(),
    workerVcpus: z.coerce.number({ error: 'context "workerVcpus" must be a whole number' }).int('context "workerVcpus" must be a whole number').min(1, 'context "workerVcpus" must be 1 or more').optional(),
    /** Images declaring more pixels are refused at upload (DIPS_MAX_PIXELS): the largest measured on the default instances. */
    maxImagePixels: count('maxImagePixels', 100_000_000),
    /** The architecture the deployer means: when given, both instance types must agree with it. */
    architecture: z.enum(['x64', 'arm64'], { error: 'context "architecture" must be x64 or arm64' }).optional(),
    /** Pinned images (else looked up once and cached in cdk.context.json). */
    masterAmi: amiId('masterAmi'),
    workerAmi: amiId('workerAmi'),
    /** The CDK bootstrap's customer-managed KMS key, when `cdk bootstrap --bootstrap-kms-key-id` made one. */
    bootstrapKmsKeyArn: z.string().regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]+$/, 'context "bootstrapKmsKeyArn" must be a KMS key ARN').optional(),
    logRetentionDays: count('logRetentionDays', 30),
    minWorkers: count('minWorkers', 1),
    maxWorkers: count('maxWorkers', 4),
    masterVolumeGiB: count('masterVolumeGiB', 20),
    /** The master's data volume (SQLite job store, tiling scratch): kept across instance replacement. */
    masterDataVolumeGiB: count('masterDataVolumeGiB', 20),
    workerVolumeGiB: count('workerVolumeGiB', 10),
    jobDataExpiryDays: count('jobDataExpiryDays', 7),
    /** Buckets (and prefixes) batch jobs may read from and write to, besides the stack's own (DIPS_SOURCES/DIPS_DESTINATIONS). */
    sources: s3Roots('sources'),
    destinations: s3Roots('destinations'),
  });
const configShape = configObject.shape;
const configSchema = configObject
  .refine((config) => config.maxWorkers >= config.minWorkers && config.maxWorkers >= 1, {
    message: 'context "maxWorkers" must be at least 1 and at least "minWorkers"',
    path: ['maxWorkers'],
  })
  .superRefine((config, context) => {
    if (!config.architecture) return;
    for (const key of ['masterInstanceType', 'workerInstanceType'] as const) {
      const arch = archOfInstanceType(config[key]);
      if (arch !== config.architecture) {
        context.addIssue({
          code: 'custom',
          path: [key],
          message: `context "${key}" is ${config[key]}, an ${ARCH_FACTS[arch].label} type, but "architecture" is ${config.architecture}: pick a ${ARCH_FACTS[config.architecture].label} type (t4g.* is arm64, t3.* is x64) or drop "architecture"`,
        });
      }
    }
  })
  .transform((config, context) => {
    const workerImageMemoryBytes = workerImageMemory(config);
    if (typeof workerImageMemoryBytes === 'string') {
      context.addIssue({ code: 'custom', path: ['workerMemoryMiB'], message: workerImageMemoryBytes });
      return z.NEVER;
    }
    return { ...config, workerImageMemoryBytes };
  });

/** Every tunable of the stack, read from CDK context (`cdk deploy -c name=value` or cdk.json). */
export type DipsConfig = z.infer<typeof configSchema>;

export class DipsConfigError extends Error {
  override readonly name = 'DipsConfigError';
}

/** Reads and validates the tunables; throws a message naming each bad context value. */
export function readConfig(node: Node): DipsConfig {
  const raw = Object.fromEntries(Object.keys(configShape).map((key) => [key, node.tryGetContext(key)]));
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new DipsConfigError(result.error.issues.map((issue) => issue.message).join('\n'));
  return result.data;
}
