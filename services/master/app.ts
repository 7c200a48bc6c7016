import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import express from 'express';
import yazl from 'yazl';
import { z } from 'zod';
import { requireToken } from '../shared/auth.js';
import { packageRoot } from '../shared/config.js';
import { withSummary } from '../shared/cluster-summary.js';
import { errorHandler, HttpError, notFound } from '../shared/http-error.js';
import { sendFile, sendStream } from '../shared/http-server.js';
import { describeCatalogue } from '../image-core/catalogue.js';
import { contentTypeFor, extensionFor } from '../image-core/encode.js';
import { type OutputFormat } from '../protocol/output.js';
import { downloadsBody, type DownloadsAnswer } from '../protocol/api.js';
import { cancelQuery } from '../protocol/batch.js';
import { parseQuery } from '../protocol/strict-body.js';
import type { OperationList } from '../protocol/newcomer.js';
import type { ImageRow, JobView } from './job-store.js';
import { inputPrefix, jobPrefix, outputKey } from './keys.js';
import { batchRoutes } from './batch/routes.js';
import type { Master } from './master.js';
import type { Storage } from './storage.js';
import { duplicatesRoutes } from './duplicates.js';
import { openApiRouter } from './openapi-route.js';
import { presetRoutes } from './presets-routes.js';
import { processRouter } from './process-route.js';
import { workerRoutes } from './worker-routes.js';
import { uploadSessionRoutes } from './upload-sessions-routes.js';
import { uploadJobRoutes } from './upload-jobs.js';
import { reachableBy } from './client-urls.js';
import { LocalStorage } from './local-storage.js';
import { storageRoutes } from '../storage/routes.js';
import { Admission } from './admission.js';
import { ProgressStreams } from './progress-stream.js';
import { Webhooks } from './webhooks.js';

/** The master's HTTP API (the contract's routes), the web console and the worker heartbeat routes. */
export function createApp(master: Master) {
  const { config, store, storage, runner, metrics, logger } = master;
  const admission = new Admission(config, () => store.pendingImages().uploads, master.uploadDisk);
  const streams = new ProgressStreams(store, config);
  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // A scraper on a private network may be given /metrics without the token (DIPS_METRICS_PUBLIC=true).
  app.get('/metrics', config.metricsPublic ? [] : [requireToken(config.token)], async (_req: express.Request, res: express.Response) => {
    master.cluster(); // refreshes the worker gauges
    metrics.pendingImages.set(store.pendingImages().count);
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  const webhooks = new Webhooks(master);
  app.use('/v1', openApiRouter(config));
  const api = express.Router();
  api.use(requireToken(config.token));
  api.use(processRouter(master));

  api.get('/operations', (_req, res) => {
    const catalogue: OperationList = describeCatalogue();
    res.json(catalogue);
  });
  api.use(presetRoutes(master));
  api.use(duplicatesRoutes(master));

  api.use(uploadSessionRoutes(master));
  api.use(batchRoutes(master, webhooks));
  api.use(uploadJobRoutes(master, admission, webhooks));

  api.get('/jobs/:id', (req, res) => {
    res.json(jobOr404(master, req.params.id));
  });

  // DELETE cancels (finished images stay downloadable; the inputs are removed); ?purge=true removes
  // the job, its rows and all its files.
  api.delete('/jobs/:id', async (req, res) => {
    const id = req.params.id;
    const { purge } = parseQuery(cancelQuery, req.query);
    if (!store.cancelJob(id)) throw jobNotFound(id);
    runner.cancelJob(id);
    if (purge === 'true') {
      await storage.deletePrefix(jobPrefix(id));
      store.deleteJob(id);
      res.status(204).end();
      return;
    }
    await storage.deletePrefix(inputPrefix(id));
    res.json(store.getJob(id));
  });

  api.get('/jobs/:id/events', (req, res) => {
    streams.subscribe(req.params.id, res);
  });

  // Many results' URLs in one request: with S3 a client then fetches each result from the bucket and
  // the master answers one request per batch of results, not one 302 per result.
  api.post('/jobs/:id/downloads', express.json({ limit: '64kb' }), async (req, res) => {
    const parsed = downloadsBody.safeParse(req.body);
    if (!parsed.success) throw new HttpError(400, 'bad_downloads', `downloads body: ${z.prettifyError(parsed.error)}`);
    const rows = master.store.imagesAt(req.params.id, parsed.data.indexes);
    const images = parsed.data.indexes.map((index) => finishedImage(master, req.params.id, index, rows.get(index)));
    const answer: DownloadsAnswer = {
      downloads: await Promise.all(
        images.map(async (image) => {
          const { name, contentType, direct } = await resultOf(storage, image);
          return { index: image.idx, name, contentType, url: direct ? reachableBy(req, direct) : `/v1/jobs/${image.job_id}/images/${image.idx}` };
        }),
      ),
    };
    res.json(answer);
  });

  api.get('/jobs/:id/images/:index', async (req, res) => {
    const index = Number(req.params.index);
    const image = finishedImage(master, req.params.id, req.params.index, Number.isInteger(index) ? master.store.image(req.params.id, index) : undefined);
    const key = outputKey(image.job_id, image.idx);
    const { name, contentType } = resultFile(image);
    // A local file is sent from here, same origin as the console's requests; with S3 the client fetches the bytes from the bucket itself.
    const file = await storage.locate(key, 'get', sameMachine);
    if (file?.via === 'file') return sendFile(res.attachment(name).type(contentType), file.path);
    const direct = await storage.downloadUrl(key, { fileName: name, contentType });
    if (direct) return res.redirect(302, direct);
    res.attachment(name).type(contentType);
    await sendStream(await storage.getStream(key), res);
  });

  api.get('/jobs/:id/archive', async (req, res) => {
    jobOr404(master, req.params.id);
    const images = store.imagesOf(req.params.id).filter((image) => image.status === 'succeeded');
    if (images.length === 0) throw new HttpError(409, 'no_results', `job ${req.params.id} has no finished images yet`);
    const zip = new yazl.ZipFile();
    const used = new Set<string>();
    // yazl reads one entry at a time and does not end the entry it is reading when its output is
    // destroyed: a client that leaves mid-archive would leave that result's file open.
    let reading: Readable | undefined;
    res.once('close', () => reading?.destroy());
    for (const image of images) {
      zip.addReadStreamLazy(uniqueName(outputName(image), used), (callback) => {
        storage.getStream(outputKey(image.job_id, image.idx)).then(
          (stream) => {
            reading = stream;
            if (res.destroyed) stream.destroy();
            callback(null, stream);
          },
          (error) => callback(error, undefined as never),
        );
      });
    }
    zip.end();
    res.type('application/zip').attachment(`${req.params.id}.zip`);
    await sendStream(zip.outputStream, res);
  });

  api.get('/cluster', (_req, res) => {
    res.json(withSummary(master.cluster()));
  });

  // Worker routes first: they take the worker credential, not the client token.
  app.use('/v1', workerRoutes(master));
  // Local storage without its own service (DIPS_STORAGE_URL unset): the master serves its signed URLs,
  // which carry their own authorisation as presigned S3 URLs do.
  if (storage instanceof LocalStorage && storage.servedByMaster) app.use('/storage', storageRoutes(storage, master.uploadDisk));
  app.use('/v1', api);
  if (existsSync(config.webDir)) app.use(express.static(config.webDir, { index: 'index.html' }));
  // The console decodes ThumbHash placeholders with the thumbhash package's own ES module.
  app.get('/vendor/thumbhash.js', (_req, res) => res.sendFile(fileURLToPath(import.meta.resolve('thumbhash'))));
  // The console reads every answer through the protocol's schemas, bundled with zod by `npm run build` (vite.config.ts).
  app.get('/protocol.js', (_req, res) => res.sendFile(path.join(packageRoot(), 'dist/services/protocol/browser.js')));
  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}

/** The master reads its own storage as a co-located worker would: local disk gives the file's path. */
const sameMachine = { colocated: true };
/** A finished result as a client downloads it: its file name, type and the URL it is fetched from without the master (S3, the storage service). */
async function resultOf(storage: Storage, image: ImageRow): Promise<{ name: string; contentType: string; direct: string | undefined }> {
  const { name, contentType } = resultFile(image);
  return { name, contentType, direct: await storage.downloadUrl(outputKey(image.job_id, image.idx), { fileName: name, contentType }) };
}

function resultFile(image: ImageRow): { name: string; contentType: string } {
  return { name: outputName(image), contentType: contentTypeFor(image.out_format as OutputFormat) };
}

function jobNotFound(id: string): HttpError {
  return new HttpError(404, 'job_not_found', `no job with id "${id}"`);
}

function jobOr404(master: Master, id: string): JobView {
  const job = master.store.getJob(id);
  if (!job) throw jobNotFound(id);
  return job;
}

/**
 * The row read for a result to download (a download reads rows, not the job's view of every image:
 * clients fetch results by the hundred), checked: 404 or 409 when there is no result at `index`.
 */
function finishedImage(master: Master, jobId: string, index: number | string, image: ImageRow | undefined): ImageRow {
  if (!image) {
    if (!master.store.jobSummary(jobId)) throw jobNotFound(jobId);
    throw new HttpError(404, 'image_not_found', `job ${jobId} has no image ${index}`);
  }
  if (image.status !== 'succeeded') {
    throw new HttpError(409, 'image_not_ready', `image ${index} of job ${jobId} is ${image.status}${image.error ? `: ${image.error}` : ''}`);
  }
  return image;
}

/** The result's file name: the upload's name with the output format's extension. */
function outputName(image: Pick<ImageRow, 'name' | 'out_format'>): string {
  const stem = image.name.replace(/\.[^.]*$/, '') || image.name;
  return `${stem}.${extensionFor(image.out_format as OutputFormat)}`;
}

function uniqueName(name: string, used: Set<string>): string {
  let candidate = name;
  for (let n = 2; used.has(candidate); n += 1) candidate = name.replace(/(\.[^.]*)?$/, `-${n}$1`);
  used.add(candidate);
  return candidate;
}

