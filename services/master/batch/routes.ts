import { once } from 'node:events';
import express from 'express';
import { z } from 'zod';
import { jobStatuses, type JobStatus } from '../../protocol/api.js';
import { batchJobBody, pageQuery } from '../../protocol/batch.js';
import { parseQuery } from '../../protocol/strict-body.js';
import { HttpError } from '../../shared/http-error.js';
import { parseItemStatus } from '../job-store.js';
import type { Master } from '../master.js';
import { resolveBatchBody } from '../presets.js';
import type { Webhooks } from '../webhooks.js';

/** Largest JSON job body: 10,000 URLs of up to ~1 kB each; longer lists go in a manifest. */
const maxJsonBody = '12mb';

/**
 * The batch routes of the contract: POST /v1/jobs with a JSON body, GET /v1/jobs, /items, /retry and
 * /manifest. Mounted on the /v1 router before the multipart POST /v1/jobs, which gets other bodies.
 */
export function batchRoutes(master: Master, webhooks: Webhooks): express.Router {
  const { store, batch } = master;
  const router = express.Router();

  router.post('/jobs', express.json({ limit: maxJsonBody }), async (req, res, next) => {
    if (!req.is('application/json')) return next();
    const parsed = batchJobBody.safeParse(req.body);
    if (!parsed.success) throw new HttpError(400, 'bad_job', `job body: ${z.prettifyError(parsed.error)}`);
    const { webhook, ...body } = parsed.data;
    const url = webhooks.parse(webhook);
    const submit = () => batch.submit(resolveBatchBody(master.presets, body));
    // A session becomes a job only when every file is there whole (metadata checks); until then nothing is consumed.
    const accepted = 'upload' in body.inputs ? await master.uploads.becomeJob(body.inputs.upload, submit) : await submit();
    webhooks.register(accepted.id, url);
    master.scaler?.wake?.();
    res.status(202).location(`/v1/jobs/${accepted.id}`).json(accepted);
  });

  router.get('/jobs', (req, res) => {
    const query = parseQuery(pageQuery, req.query);
    if (query.status !== undefined && !(jobStatuses as readonly string[]).includes(query.status)) {
      throw new HttpError(400, 'bad_status', `status "${query.status}" is not one of ${jobStatuses.join(', ')}`);
    }
    res.json(guardCursor(() => store.listJobs({ limit: query.limit, ...(query.status ? { status: query.status as JobStatus } : {}), ...(query.cursor ? { cursor: query.cursor } : {}) })));
  });

  router.get('/jobs/:id/items', (req, res) => {
    jobOr404(master, req.params.id);
    const query = parseQuery(pageQuery, req.query);
    let status;
    try {
      status = parseItemStatus(query.status);
    } catch (error) {
      throw new HttpError(400, 'bad_status', (error as Error).message);
    }
    res.json(guardCursor(() => store.itemsPage(req.params.id, { limit: query.limit, ...(status ? { status } : {}), ...(query.cursor ? { cursor: query.cursor } : {}) })));
  });

  router.post('/jobs/:id/retry', (req, res) => {
    const job = jobOr404(master, req.params.id);
    if (job.status === 'canceled') throw new HttpError(409, 'job_canceled', `job ${req.params.id} was canceled; submit it again instead`);
    const retried = store.retryFailed(req.params.id) ?? 0;
    master.runner.fill();
    batch.fill();
    res.status(202).json({ id: req.params.id, status: store.jobSummary(req.params.id)!.status, retried });
  });

  router.get('/jobs/:id/manifest', async (req, res) => {
    jobOr404(master, req.params.id);
    res.type('application/x-ndjson').attachment(`manifest-${req.params.id}.jsonl`);
    for await (const line of batch.manifestLines(req.params.id)) {
      if (!res.write(`${JSON.stringify(line)}\n`)) await once(res, 'drain');
      if (res.destroyed) return;
    }
    res.end();
  });

  return router;
}

function guardCursor<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof RangeError) throw new HttpError(400, 'bad_cursor', error.message);
    throw error;
  }
}

function jobOr404(master: Master, id: string) {
  const job = master.store.jobSummary(id);
  if (!job) throw new HttpError(404, 'job_not_found', `no job with id "${id}"`);
  return job;
}
