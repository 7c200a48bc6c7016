import fs from 'node:fs/promises';
import path from 'node:path';
import type { MasterConfig } from '../shared/config.js';
import { filesId } from '../shared/files-id.js';
import type { Logger } from '../shared/logger.js';
import type { ClusterView, ScalerStartup, ScalerStatus } from '../protocol/api.js';
import { diskLedgerFile, freeDiskBytes, UploadDisk } from './admission.js';
import { BatchRunner } from './batch/runner.js';
import { FileObjects, objectStores, S3Objects } from './batch/objects.js';
import { Roots } from './batch/uri.js';
import { Blobs } from './blobs.js';
import { Dispatcher, type Backlog } from './dispatcher.js';
import { ImageRunner } from './image-runner.js';
import { JobStore } from './job-store.js';
import { jobPrefix } from './keys.js';
import { LocalStorage } from './local-storage.js';
import { createMetrics, type Metrics } from './metrics.js';
import { OrphanedJobFiles, orphanSweepMs } from './orphaned-job-files.js';
import { openPresets, type Presets } from './presets.js';
import type { Storage } from './storage.js';
import { StagedObjects } from './upload-sessions-objects.js';
import { UploadSessions } from './upload-sessions.js';
import { WorkerAdmission } from './worker-admission.js';
import { WorkerRegistry, type WorkerRecord } from './worker-registry.js';
import type { WorkItem } from '../scaler/work.js';

/** All the work the cluster holds. */
export interface ClusterBacklog extends Backlog {
  /** Images accepted and not yet started (not yet cut into units). */
  waitingImages: number;
  /**
   * The one figure a scaler sizes the pool from: every kind of work and how much of it, each counted
   * once (waiting images, whole images queued or on workers, the rest of active tiled images).
   */
  work: WorkItem[];
}

/**
 * The injection point for autoscaling: given the backlog and the workers, how many workers the
 * cluster should have. Without one, desiredCapacity is the number of live workers.
 */
export interface Scaler {
  desiredCapacity(backlog: ClusterBacklog, workers: readonly WorkerRecord[]): number;
  /** Backlog, desired and actual capacity, last decision and reason: shown as /v1/cluster's "scaler". */
  status?(): ScalerStatus | ScalerStartup;
  /** A job was accepted: decide now (wakes a pool scaled to zero without waiting for the next tick). */
  wake?(): void;
}

export interface MasterDeps {
  scaler?: Scaler;
  storage?: Storage;
}

/** The master's parts wired together; app.ts serves it over HTTP and server.ts listens. */
export class Master {
  readonly store: JobStore;
  readonly storage: Storage;
  readonly registry: WorkerRegistry;
  readonly dispatcher: Dispatcher;
  readonly blobs = new Blobs();
  readonly admission: WorkerAdmission;
  /** The secret of the worker routes and of the master's requests to workers. */
  readonly workerCredential: string | undefined;
  readonly runner: ImageRunner;
  readonly batch: BatchRunner;
  readonly metrics: Metrics;
  readonly presets: Presets;
  readonly spoolDir: string;
  readonly uploads: UploadSessions;
  /** The disk space promised to uploads: session PUTs and multipart POST /v1/jobs hold it from one budget. */
  readonly uploadDisk: UploadDisk;
  scaler: Scaler | undefined;
  /** Job folders on local disk that no job owns (a crash between storing inputs and committing the job); none with S3. */
  readonly orphanedFiles: OrphanedJobFiles | undefined;
  private readonly retentionTimer: NodeJS.Timeout;
  private readonly orphanTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly config: MasterConfig,
    readonly logger: Logger,
    deps: MasterDeps & { storage: Storage },
  ) {
    this.scaler = deps.scaler;
    this.metrics = createMetrics();
    this.store = new JobStore(config.dataDir);
    this.presets = openPresets(config);
    this.storage = deps.storage;
    this.spoolDir = path.join(config.dataDir, 'spool');
    this.uploadDisk = new UploadDisk(config.minFreeDiskBytes, () => freeDiskBytes(config.dataDir), Date.now, diskLedgerFile(config.dataDir));
    this.uploads = new UploadSessions(this.storage, config.dataDir, config, logger);
    this.admission = new WorkerAdmission(config.workerNetworks);
    // Without a worker secret the cluster has one secret (the client's), as before DIPS_WORKER_TOKEN.
    this.workerCredential = config.workerToken ?? config.token;
    if (config.token && !config.workerToken) logger.warn('DIPS_WORKER_TOKEN is not set: workers authenticate with the client token DIPS_TOKEN, so any client could register as a worker');
    this.registry = new WorkerRegistry(config.heartbeatTimeoutMs, filesId());
    this.dispatcher = new Dispatcher(
      this.registry,
      this.blobs,
      {
        leaseMs: config.leaseMs,
        lateResultGraceMs: config.lateResultGraceMs,
        maxAttempts: config.maxAttempts,
        retryBaseMs: config.retryBaseMs,
        ...(this.workerCredential ? { token: this.workerCredential } : {}),
      },
      this.metrics,
      logger,
      (units) => this.store.markImagesStarted(units.map((unit) => ({ jobId: unit.jobId, index: unit.imageIndex }))),
    );
    this.runner = new ImageRunner({
      config,
      store: this.store,
      storage: this.storage,
      dispatcher: this.dispatcher,
      registry: this.registry,
      blobs: this.blobs,
      metrics: this.metrics,
      logger,
    });
    this.batch = createBatchRunner(this, config, logger);
    this.retentionTimer = setInterval(() => void this.deleteExpired(), Math.min(60_000, config.retentionSeconds * 250));
    this.retentionTimer.unref();
    if (this.storage instanceof LocalStorage) {
      this.orphanedFiles = new OrphanedJobFiles(this.storage, (jobId) => this.store.hasJob(jobId), logger);
      this.orphanTimer = setInterval(() => void this.sweepOrphanedFiles(), orphanSweepMs);
      this.orphanTimer.unref();
    }
  }

  static async create(config: MasterConfig, logger: Logger, deps: MasterDeps = {}): Promise<Master> {
    await fs.mkdir(config.dataDir, { recursive: true });
    // Spooled uploads of a crashed master were never acknowledged: nobody waits for them.
    await fs.rm(path.join(config.dataDir, 'spool'), { recursive: true, force: true });
    const master = new Master(config, logger, { ...deps, storage: deps.storage ?? (await defaultStorage(config)) });
    master.runner.start();
    master.batch.start();
    void master.sweepOrphanedFiles();
    return master;
  }

  backlog(): ClusterBacklog {
    // The scaler's figures count claims exactly: held ones would still be queued in the table.
    this.store.commitHeld();
    const waiting = this.store.pendingImages();
    return {
      ...this.dispatcher.backlog(),
      waitingImages: waiting.queued,
      work: [...this.store.waitingWork(), ...this.dispatcher.wholeWork(), ...this.runner.tiledWork()],
    };
  }

  cluster(): ClusterView {
    const workers = this.registry.list();
    const backlog = this.backlog();
    const live = workers.filter((worker) => worker.state !== 'dead');
    for (const state of ['ready', 'draining', 'dead'] as const) {
      this.metrics.workers.set({ state }, workers.filter((worker) => worker.state === state).length);
    }
    return {
      workers: workers.map((worker) => ({
        id: worker.id,
        address: worker.address,
        state: worker.state,
        inflight: worker.inflight,
        slots: worker.slots,
        lastHeartbeat: new Date(worker.lastHeartbeat).toISOString(),
      })),
      queueDepth: backlog.queuedUnits + backlog.waitingImages,
      desiredCapacity: this.scaler ? this.scaler.desiredCapacity(backlog, workers) : live.length,
      ...(this.scaler?.status ? { scaler: this.scaler.status() } : {}),
    };
  }

  /** Expired jobs, then the upload sessions nobody can use any more (expired, or their job gone). */
  private async deleteExpired(): Promise<void> {
    await this.deleteExpiredJobs();
    await this.uploads.sweep({ exists: (jobId) => this.store.hasJob(jobId), readingSession: (id) => this.store.batchJobReadingUpload(id) }).catch((error: unknown) => this.logger.warn({ err: error }, 'sweeping upload sessions failed'));
  }

  private async sweepOrphanedFiles(): Promise<void> {
    await this.orphanedFiles?.sweep().catch((error: unknown) => this.logger.warn({ err: error }, 'sweeping files of no job failed'));
  }

  /** Deletes jobs (rows and files) that finished longer ago than the retention period. */
  async deleteExpiredJobs(): Promise<number> {
    const expired = this.store.finishedJobsBefore(Date.now() - this.config.retentionSeconds * 1000);
    for (const jobId of expired) {
      await this.storage.deletePrefix(jobPrefix(jobId));
      this.store.deleteJob(jobId);
      this.logger.info({ job: jobId }, 'job expired and deleted');
    }
    return expired.length;
  }

  close(): void {
    clearInterval(this.retentionTimer);
    clearInterval(this.orphanTimer);
    this.runner.stop();
    this.batch.stop();
    this.dispatcher.close();
    this.registry.close();
    this.store.close();
    this.presets.close();
    this.uploads.close();
    this.uploadDisk.close();
  }
}

function createBatchRunner(master: Master, config: MasterConfig, logger: Logger): BatchRunner {
  const sources = new Roots('DIPS_SOURCES', config.sources);
  const destinations = new Roots('DIPS_DESTINATIONS', config.destinations);
  return new BatchRunner({
    store: master.store,
    storage: master.storage,
    dispatcher: master.dispatcher,
    blobs: master.blobs,
    metrics: master.metrics,
    stores: objectStores(new FileObjects([...sources.roots, ...destinations.roots]), () => new S3Objects(), new StagedObjects(master.uploads, master.storage)),
    sources,
    destinations,
    logger,
    config,
    workDir: path.join(config.dataDir, 'work'),
    retryBaseMs: config.retryBaseMs,
  });
}

/** The AWS SDK is loaded only for S3 storage: a master on local disk starts without it (~0.3 s CPU less). */
async function defaultStorage(config: MasterConfig): Promise<Storage> {
  if (config.storage === 's3') {
    const [{ S3Client }, { S3Storage }] = await Promise.all([import('@aws-sdk/client-s3'), import('./s3-storage.js')]);
    return new S3Storage(
      // Checksums only where S3 requires them: a streamed upload with a trailing checksum is not
      // understood by every S3-compatible server, and TLS already guards the bytes in transit.
      new S3Client({ requestChecksumCalculation: 'WHEN_REQUIRED' }),
      config.s3Bucket!,
      config.s3Prefix,
    );
  }
  return LocalStorage.inDataDir(config.dataDir, config.storageUrl);
}
