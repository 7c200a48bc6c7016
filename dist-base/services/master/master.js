import fs from 'node:fs/promises';
import path from 'node:path';
import { filesId } from '../shared/files-id.js';
import { freeDiskBytes, UploadDisk } from './admission.js';
import { BatchRunner } from './batch/runner.js';
import { FileObjects, objectStores, S3Objects } from './batch/objects.js';
import { Roots } from './batch/uri.js';
import { Blobs } from './blobs.js';
import { Dispatcher } from './dispatcher.js';
import { ImageRunner } from './image-runner.js';
import { JobStore } from './job-store.js';
import { jobPrefix } from './keys.js';
import { LocalStorage } from './local-storage.js';
import { createMetrics } from './metrics.js';
import { openPresets } from './presets.js';
import { StagedObjects } from './upload-sessions-objects.js';
import { UploadSessions } from './upload-sessions.js';
import { WorkerAdmission } from './worker-admission.js';
import { WorkerRegistry } from './worker-registry.js';
/** The master's parts wired together; app.ts serves it over HTTP and server.ts listens. */
export class Master {
    config;
    logger;
    store;
    storage;
    registry;
    dispatcher;
    blobs = new Blobs();
    admission;
    /** The secret of the worker routes and of the master's requests to workers. */
    workerCredential;
    runner;
    batch;
    metrics;
    presets;
    spoolDir;
    uploads;
    /** The disk space promised to uploads: session PUTs and multipart POST /v1/jobs hold it from one budget. */
    uploadDisk;
    scaler;
    retentionTimer;
    constructor(config, logger, deps) {
        this.config = config;
        this.logger = logger;
        this.scaler = deps.scaler;
        this.metrics = createMetrics();
        this.store = new JobStore(config.dataDir);
        this.presets = openPresets(config);
        this.storage = deps.storage;
        this.spoolDir = path.join(config.dataDir, 'spool');
        this.uploadDisk = new UploadDisk(config.minFreeDiskBytes, () => freeDiskBytes(config.dataDir));
        this.uploads = new UploadSessions(this.storage, config.dataDir, config, logger);
        this.admission = new WorkerAdmission(config.workerNetworks);
        // Without a worker secret the cluster has one secret (the client's), as before DIPS_WORKER_TOKEN.
        this.workerCredential = config.workerToken ?? config.token;
        if (config.token && !config.workerToken)
            logger.warn('DIPS_WORKER_TOKEN is not set: workers authenticate with the client token DIPS_TOKEN, so any client could register as a worker');
        this.registry = new WorkerRegistry(config.heartbeatTimeoutMs, filesId());
        this.dispatcher = new Dispatcher(this.registry, this.blobs, {
            leaseMs: config.leaseMs,
            lateResultGraceMs: config.lateResultGraceMs,
            maxAttempts: config.maxAttempts,
            retryBaseMs: config.retryBaseMs,
            ...(this.workerCredential ? { token: this.workerCredential } : {}),
        }, this.metrics, logger, (units) => this.store.markImagesStarted(units.map((unit) => ({ jobId: unit.jobId, index: unit.imageIndex }))));
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
    }
    static async create(config, logger, deps = {}) {
        await fs.mkdir(config.dataDir, { recursive: true });
        // Spooled uploads of a crashed master were never acknowledged: nobody waits for them.
        await fs.rm(path.join(config.dataDir, 'spool'), { recursive: true, force: true });
        const master = new Master(config, logger, { ...deps, storage: deps.storage ?? (await defaultStorage(config)) });
        master.runner.start();
        master.batch.start();
        return master;
    }
    backlog() {
        // The scaler's figures count claims exactly: held ones would still be queued in the table.
        this.store.commitHeld();
        const waiting = this.store.pendingImages();
        return {
            ...this.dispatcher.backlog(),
            waitingImages: waiting.queued,
            work: [...this.store.waitingWork(), ...this.dispatcher.wholeWork(), ...this.runner.tiledWork()],
        };
    }
    cluster() {
        const workers = this.registry.list();
        const backlog = this.backlog();
        const live = workers.filter((worker) => worker.state !== 'dead');
        for (const state of ['ready', 'draining', 'dead']) {
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
    async deleteExpired() {
        await this.deleteExpiredJobs();
        await this.uploads.sweep({ exists: (jobId) => this.store.jobSummary(jobId) !== undefined, readingSession: (id) => this.store.batchJobReadingUpload(id) }).catch((error) => this.logger.warn({ err: error }, 'sweeping upload sessions failed'));
    }
    /** Deletes jobs (rows and files) that finished longer ago than the retention period. */
    async deleteExpiredJobs() {
        const expired = this.store.finishedJobsBefore(Date.now() - this.config.retentionSeconds * 1000);
        for (const jobId of expired) {
            await this.storage.deletePrefix(jobPrefix(jobId));
            this.store.deleteJob(jobId);
            this.logger.info({ job: jobId }, 'job expired and deleted');
        }
        return expired.length;
    }
    close() {
        clearInterval(this.retentionTimer);
        this.runner.stop();
        this.batch.stop();
        this.dispatcher.close();
        this.registry.close();
        this.store.close();
        this.presets.close();
        this.uploads.close();
    }
}
function createBatchRunner(master, config, logger) {
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
async function defaultStorage(config) {
    if (config.storage === 's3') {
        const [{ S3Client }, { S3Storage }] = await Promise.all([import('@aws-sdk/client-s3'), import('./s3-storage.js')]);
        return new S3Storage(
        // Checksums only where S3 requires them: a streamed upload with a trailing checksum is not
        // understood by every S3-compatible server, and TLS already guards the bytes in transit.
        new S3Client({ requestChecksumCalculation: 'WHEN_REQUIRED' }), config.s3Bucket, config.s3Prefix);
    }
    return LocalStorage.inDataDir(config.dataDir, config.storageUrl);
}
//# sourceMappingURL=master.js.map