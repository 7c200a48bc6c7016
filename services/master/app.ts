import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import express from 'express';
import yazl from 'yazl';
import { requireToken } from '../shared/auth.js';
import { errorHandler, HttpError, notFound } from '../shared/http-error.js';
import { describeOperations } from '../image-core/catalogue.js';
import { contentTypeFor, extensionFor, type OutputFormat } from '../image-core/encode.js';
import { isTerminal, type ImageRow, type JobView } from './job-store.js';
import { batchRoutes } from './batch/routes.js';
import { inputKey, outputKey } from './keys.js';
import type { Master } from './master.js';
import { validateSubmission } from './submission.js';
import { workerRoutes } from './worker-routes.js';
import { discard, receiveUpload } from './upload.js';

/** The master's HTTP API (the contract's routes), the web console and the worker heartbeat routes. */
export function createApp(master: Master) {
  const { config, store, storage, runner, metrics, logger } = master;
  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/metrics', async (_req, res) => {
    master.cluster(); // refreshes the worker gauges
    metrics.pendingImages.set(store.pendingImages().count);
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  const api = express.Router();
  api.use(requireToken(config.token));

  api.get('/operations', (_req, res) => {
    res.json(describeOperations());
  });

  api.use(batchRoutes(master));
  api.post('/jobs', async (req, res) => {
    const retryAfter = 5;
    if (store.pendingImages().count >= config.maxQueuedImages) {
      req.resume();
      throw new HttpError(429, 'saturated', `the queue holds ${config.maxQueuedImages} images; retry later`, retryAfter);
    }
    const upload = await receiveUpload(req, master.spoolDir, config);
    try {
      const job = await validateSubmission(config, upload.files, upload.fields);
      if (store.pendingImages().count + upload.files.length > config.maxQueuedImages) {
        throw new HttpError(429, 'saturated', `the queue cannot take ${upload.files.length} more images; retry later`, retryAfter);
      }
      const id = randomUUID();
      for (const [index, file] of upload.files.entries()) await storage.putFile(inputKey(id, index), file.path);
      store.createJob({ id, ...job });
      logger.info({ job: id, images: upload.files.length }, 'job accepted');
      runner.fill();
      master.scaler?.wake?.();
      res.status(202).location(`/v1/jobs/${id}`).json({ id, status: 'queued' });
    } finally {
      await discard(upload.files);
    }
  });

  api.get('/jobs/:id', (req, res) => {
    res.json(jobOr404(master, req.params.id));
  });

  api.delete('/jobs/:id', (req, res) => {
    if (!store.cancelJob(req.params.id)) throw jobNotFound(req.params.id);
    runner.cancelJob(req.params.id);
    res.json(store.getJob(req.params.id));
  });

  api.get('/jobs/:id/events', (req, res) => {
    const id = req.params.id;
    jobOr404(master, id);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    let last = '';
    const send = () => {
      const job = store.getJob(id);
      if (!job) return close();
      const text = JSON.stringify(job);
      if (text !== last) res.write(`event: progress\ndata: ${text}\n\n`);
      last = text;
      if (isTerminal(job.status)) close();
    };
    const onJob = (changed: string) => {
      if (changed === id) send();
    };
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    const close = () => {
      clearInterval(keepAlive);
      store.off('job', onJob);
      res.end();
    };
    store.on('job', onJob);
    req.on('close', close);
    send();
  });

  api.get('/jobs/:id/images/:index', async (req, res) => {
    const image = finishedImage(master, req.params.id, req.params.index);
    const format = image.out_format!;
    const key = outputKey(image.job_id, image.idx);
    // With S3 the client fetches the bytes from the bucket itself.
    const direct = await storage.downloadUrl(key, { fileName: outputName(image), contentType: contentTypeFor(format as OutputFormat) });
    if (direct) return res.redirect(302, direct);
    const stream = await storage.getStream(key);
    res.attachment(outputName(image)).type(contentTypeFor(format as OutputFormat));
    stream.on('error', (error) => res.destroy(error));
    stream.pipe(res);
  });

  api.get('/jobs/:id/archive', (req, res) => {
    jobOr404(master, req.params.id);
    const images = store.imagesOf(req.params.id).filter((image) => image.status === 'succeeded');
    if (images.length === 0) throw new HttpError(409, 'no_results', `job ${req.params.id} has no finished images yet`);
    const zip = new yazl.ZipFile();
    const used = new Set<string>();
    for (const image of images) {
      zip.addReadStreamLazy(uniqueName(outputName(image), used), (callback) => {
        storage.getStream(outputKey(image.job_id, image.idx)).then((stream) => callback(null, stream), (error) => callback(error, undefined as never));
      });
    }
    zip.end();
    res.type('application/zip').attachment(`${req.params.id}.zip`);
    zip.outputStream.on('error', (error) => res.destroy(error as Error));
    zip.outputStream.pipe(res);
  });

  api.get('/cluster', (_req, res) => {
    res.json(master.cluster());
  });

  // Worker routes first: they take the worker credential, not the client token.
  app.use('/v1', workerRoutes(master));
  app.use('/v1', api);
  if (existsSync(config.webDir)) app.use(express.static(config.webDir, { index: 'index.html' }));
  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}

function jobNotFound(id: string): HttpError {
  return new HttpError(404, 'job_not_found', `no job with id "${id}"`);
}

function jobOr404(master: Master, id: string): JobView {
  const job = master.store.getJob(id);
  if (!job) throw jobNotFound(id);
  return job;
}

function finishedImage(master: Master, jobId: string, indexText: string): ImageRow {
  jobOr404(master, jobId);
  const index = Number(indexText);
  const image = Number.isInteger(index) ? master.store.image(jobId, index) : undefined;
  if (!image) throw new HttpError(404, 'image_not_found', `job ${jobId} has no image ${indexText}`);
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

