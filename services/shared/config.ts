import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { likelyMeant } from './suggest.js';

/**
 * All tunables of the master, worker and CLI in one place. Each setting is read from a flag when given,
 * else from its DIPS_* environment variable, else its default; zod validates the result and the error
 * names the variable at fault.
 */
const port = z.coerce.number().int().min(0).max(65_535);
const positiveInt = z.coerce.number().int().positive();
const milliseconds = z.coerce.number().int().positive();
/**
 * What a worker can hold (DIPS_WORKER_MEMORY_BYTES): the master's planner budgets each image by it, and a
 * worker lends PIXEL_MEMORY_SHARE of it to whole stages (services/worker/memory-gate.ts). The stack sets it
 * from the worker instance type; this default is a micro's (lib/config.ts).
 */
const workerMemoryBytes = positiveInt.default(512 * 1024 * 1024);
/** A yes/no setting: a flag's boolean, or an environment variable's text (zod's stringbool words). */
const yesNo = z.union([z.boolean(), z.stringbool()], { error: 'true or false (also 1/0, yes/no, on/off)' });
const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === '' ? undefined : value));

/** The checkout or installed package this file belongs to (the same from services/ and dist/services/). */
export function packageRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

const masterSchema = z.object({
  port: port.default(8080),
  host: z.string().default('127.0.0.1'),
  dataDir: z.string().default('./.dips-data'),
  token: optionalText,
  /** The workers' own secret (routes /v1/workers, /v1/blobs); unset, those routes take DIPS_TOKEN. */
  workerToken: optionalText,
  /** CIDR ranges (comma-separated) a worker may advertise addresses in besides its own connection's. */
  workerNetworks: z.string().default(''),
  tileSize: positiveInt.optional(),
  storage: z.enum(['local', 's3']).default('local'),
  s3Bucket: optionalText,
  s3Prefix: z.string().default(''),
  /** The local storage service clients send uploads to and fetch results from (services/storage/); unset, the master serves them. */
  storageUrl: z.url().optional(),
  maxUploadBytes: positiveInt.default(200 * 1024 * 1024),
  maxFiles: positiveInt.default(100),
  /** Upload sessions (services/master/upload-sessions.ts): open at once, and the part size of S3 multipart files (S3 wants >= 5 MiB). */
  maxUploadSessions: positiveInt.default(100),
  uploadPartBytes: positiveInt.default(16 * 1024 * 1024),
  maxPixels: positiveInt.default(268_402_689),
  maxPipelineSteps: positiveInt.default(32),
  maxQueuedImages: positiveInt.default(2_000),
  maxActiveImages: positiveInt.default(16),
  leaseMs: milliseconds.default(60_000),
  lateResultGraceMs: milliseconds.default(60_000),
  heartbeatTimeoutMs: milliseconds.default(10_000),
  maxAttempts: positiveInt.default(5),
  retryBaseMs: milliseconds.default(500),
  retentionSeconds: positiveInt.default(24 * 3600),
  workerMemoryBytes,
  webDir: z.string().default(path.join(packageRoot(), 'web')),
  scaleInAfter: positiveInt.default(120),
  // Hardening limits (services/master/admission.ts, progress-stream.ts, services/shared/http-server.ts).
  maxRequestBytes: positiveInt.default(1024 * 1024 * 1024),
  minFreeDiskBytes: z.coerce.number().int().nonnegative().default(1024 * 1024 * 1024),
  maxJobPixels: positiveInt.default(4_000_000_000),
  headersTimeoutMs: milliseconds.default(10_000),
  minUploadBytesPerSecond: positiveInt.default(64 * 1024),
  maxConnections: positiveInt.default(10_000),
  maxStreamsPerJob: positiveInt.default(1_000),
  maxStreams: positiveInt.default(5_000),
  streamWriteTimeoutMs: milliseconds.default(10_000),
  metricsPublic: yesNo.default(false),
  webhookSecret: optionalText,
  webhookAttempts: positiveInt.default(6),
  webhookRetryMs: milliseconds.default(1_000),
  /** Webhooks may call loopback, private and link-local addresses (a receiver on the cluster's own network). */
  webhookAllowPrivate: yesNo.default(false),
  /** Batch jobs: comma-separated s3:// and file:/// roots they may read from and write to (empty: none). */
  sources: z.string().default(''),
  destinations: z.string().default(''),
  /** Presets-only mode: jobs must name a preset, and the presets are those of presetsFile (services/master/presets.ts). */
  presetsOnly: yesNo.default(false),
  presetsFile: optionalText,
  // Unfinished batch items the master holds (SQLite rows, paged: ~300 bytes of disk each, never in memory).
  maxQueuedItems: positiveInt.default(1_000_000),
});

const workerSchema = z.object({
  port: port.default(12345),
  host: z.string().default('127.0.0.1'),
  masterUrl: z.url().default('http://127.0.0.1:8080'),
  token: optionalText,
  workerToken: optionalText,
  /** auto: read and write the master's files directly when on the same machine; off: always over HTTP. */
  fileAccess: z.enum(['auto', 'off']).default('auto'),
  /** The address the master uses to reach this worker; defaults to http://host:port as listened. */
  advertisedAddress: z.url().optional(),
  slots: positiveInt.default(os.availableParallelism()),
  heartbeatMs: milliseconds.default(2_000),
  maxPixels: positiveInt.default(268_402_689),
  maxTaskBytes: positiveInt.default(512 * 1024 * 1024),
  workerMemoryBytes,
});

export type MasterConfig = z.output<typeof masterSchema>;
export type WorkerConfig = z.output<typeof workerSchema>;
export type MasterOptions = Partial<z.input<typeof masterSchema>>;
export type WorkerOptions = Partial<z.input<typeof workerSchema>>;

const masterEnv: Record<keyof MasterConfig, string> = {
  port: 'DIPS_PORT',
  host: 'DIPS_HOST',
  dataDir: 'DIPS_DATA_DIR',
  token: 'DIPS_TOKEN',
  workerToken: 'DIPS_WORKER_TOKEN',
  workerNetworks: 'DIPS_WORKER_NETWORKS',
  tileSize: 'DIPS_TILE_SIZE',
  storage: 'DIPS_STORAGE',
  s3Bucket: 'DIPS_S3_BUCKET',
  s3Prefix: 'DIPS_S3_PREFIX',
  storageUrl: 'DIPS_STORAGE_URL',
  maxUploadBytes: 'DIPS_MAX_UPLOAD_BYTES',
  maxFiles: 'DIPS_MAX_FILES',
  maxUploadSessions: 'DIPS_MAX_UPLOAD_SESSIONS',
  uploadPartBytes: 'DIPS_UPLOAD_PART_BYTES',
  maxPixels: 'DIPS_MAX_PIXELS',
  maxPipelineSteps: 'DIPS_MAX_PIPELINE_STEPS',
  maxQueuedImages: 'DIPS_MAX_QUEUED_IMAGES',
  maxActiveImages: 'DIPS_MAX_ACTIVE_IMAGES',
  leaseMs: 'DIPS_LEASE_MS',
  lateResultGraceMs: 'DIPS_LATE_RESULT_GRACE_MS',
  heartbeatTimeoutMs: 'DIPS_HEARTBEAT_TIMEOUT_MS',
  maxAttempts: 'DIPS_MAX_ATTEMPTS',
  retryBaseMs: 'DIPS_RETRY_BASE_MS',
  retentionSeconds: 'DIPS_RETENTION_SECONDS',
  workerMemoryBytes: 'DIPS_WORKER_MEMORY_BYTES',
  webDir: 'DIPS_WEB_DIR',
  scaleInAfter: 'DIPS_SCALE_IN_AFTER',
  maxRequestBytes: 'DIPS_MAX_REQUEST_BYTES',
  minFreeDiskBytes: 'DIPS_MIN_FREE_DISK_BYTES',
  maxJobPixels: 'DIPS_MAX_JOB_PIXELS',
  headersTimeoutMs: 'DIPS_HEADERS_TIMEOUT_MS',
  minUploadBytesPerSecond: 'DIPS_MIN_UPLOAD_BYTES_PER_SECOND',
  maxConnections: 'DIPS_MAX_CONNECTIONS',
  maxStreamsPerJob: 'DIPS_MAX_STREAMS_PER_JOB',
  maxStreams: 'DIPS_MAX_STREAMS',
  streamWriteTimeoutMs: 'DIPS_STREAM_WRITE_TIMEOUT_MS',
  metricsPublic: 'DIPS_METRICS_PUBLIC',
  webhookSecret: 'DIPS_WEBHOOK_SECRET',
  webhookAttempts: 'DIPS_WEBHOOK_ATTEMPTS',
  webhookRetryMs: 'DIPS_WEBHOOK_RETRY_MS',
  webhookAllowPrivate: 'DIPS_WEBHOOK_ALLOW_PRIVATE',
  sources: 'DIPS_SOURCES',
  destinations: 'DIPS_DESTINATIONS',
  presetsOnly: 'DIPS_PRESETS_ONLY',
  presetsFile: 'DIPS_PRESETS_FILE',
  maxQueuedItems: 'DIPS_MAX_QUEUED_ITEMS',
};

const workerEnv: Record<keyof WorkerConfig, string> = {
  port: 'DIPS_WORKER_PORT',
  host: 'DIPS_WORKER_HOST',
  masterUrl: 'DIPS_MASTER_URL',
  token: 'DIPS_TOKEN',
  workerToken: 'DIPS_WORKER_TOKEN',
  fileAccess: 'DIPS_WORKER_FILE_ACCESS',
  advertisedAddress: 'DIPS_WORKER_ADDRESS',
  slots: 'DIPS_WORKER_SLOTS',
  heartbeatMs: 'DIPS_HEARTBEAT_MS',
  maxPixels: 'DIPS_MAX_PIXELS',
  maxTaskBytes: 'DIPS_MAX_TASK_BYTES',
  workerMemoryBytes: 'DIPS_WORKER_MEMORY_BYTES',
};

/**
 * DIPS_* variables the services read outside the master's and the worker's configurations: the
 * scaler's, the logger's and the CLI's. With masterEnv and workerEnv they are every DIPS_* variable the
 * services read (test/shared/settings.test.ts checks that against services/), so that misspeltSettings
 * can tell a typo from a setting. (An instance's boot script and the bench read others, which never
 * reach a service's environment.)
 */
const otherSettings = ['DIPS_BOOT_SECONDS', 'DIPS_COST_HALF_LIFE', 'DIPS_LOG_LEVEL', 'DIPS_ASG_NAME'];

/** Every DIPS_* variable the services read. */
export const knownSettings: ReadonlySet<string> = new Set([...Object.values(masterEnv), ...Object.values(workerEnv), ...otherSettings]);

/**
 * A warning for each DIPS_* variable of `env` that the services do not read but that is a likely typo of
 * one they do (settingMeant): silently ignored, it would leave the default in place. Other unknown names
 * are not judged: they may be another program's.
 */
export function misspeltSettings(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.keys(env)
    .filter((name) => name.startsWith('DIPS_') && !knownSettings.has(name))
    .flatMap((name) => {
      const meant = settingMeant(name);
      return meant === undefined ? [] : [`${name} is not a DIPS setting (did you mean ${meant}?); it has no effect`];
    });
}

/**
 * The setting `name` likely meant, judged word by word (words between "_"): all the same but one that is
 * a likely typo of its counterpart (WORKR for WORKER), or all the same but a last word missing or extra (a unit such as
 * MS or BYTES). Whole names are too alike to compare letter by letter: POLL_SECONDS is three letters from
 * BOOT_SECONDS, and the two have nothing to do with each other.
 */
function settingMeant(name: string): string | undefined {
  const words = name.split('_');
  return [...knownSettings].find((setting) => {
    const known = setting.split('_');
    if (known.length === words.length) {
      const differing = known.flatMap((word, at) => (word === words[at] ? [] : [at]));
      return differing.length === 1 && likelyMeant(words[differing[0]!]!, [known[differing[0]!]!]) !== undefined;
    }
    const [longer, shorter] = known.length > words.length ? [known, words] : [words, known];
    return longer.length === shorter.length + 1 && longer.slice(0, -1).join('_') === shorter.join('_');
  });
}

/** A configuration that cannot be used; the message names the flag or variable. */
class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function load<Schema extends z.ZodObject>(
  schema: Schema,
  envNames: Record<string, string>,
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): z.output<Schema> {
  const merged: Record<string, unknown> = {};
  for (const [key, envName] of Object.entries(envNames)) {
    merged[key] = flags[key] ?? env[envName];
  }
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0]);
      return `${key} (${envNames[key] ?? key}): ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration: ${issues.join('; ')}`);
  }
  return parsed.data;
}

export function loadMasterConfig(flags: MasterOptions = {}, env: NodeJS.ProcessEnv = process.env): MasterConfig {
  const config = load(masterSchema, masterEnv, flags, env);
  if (config.storage === 's3' && !config.s3Bucket) throw new ConfigError('DIPS_STORAGE=s3 needs DIPS_S3_BUCKET');
  return config;
}

export function loadWorkerConfig(flags: WorkerOptions = {}, env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  return load(workerSchema, workerEnv, flags, env);
}

/** Where clients (CLI, workers) find the master. */
export function masterUrlFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return (flag ?? env.DIPS_MASTER_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
}
