import express from 'express';
import { z } from 'zod';
import type { MasterConfig } from '../shared/config.js';
import { downloadsAnswer, downloadsBody, jobAccepted, jobView, outputFormat, quality } from '../protocol/api.js';
import { batchAccepted, batchJobBody, cancelQuery, itemsPage, jobsPage, manifestLine, pageQuery, retryAccepted } from '../protocol/batch.js';
import { errorBody } from '../protocol/errors.js';
import { clusterAnswer, operationList, processHeaders, webhookEvent } from '../protocol/newcomer.js';
import { duplicatesReport, preset, presetBody, presetList, presetName } from '../protocol/presets.js';
import { heartbeat, heartbeatAnswer } from '../protocol/tasks.js';
import { completeBody, sessionJobBody, storedFile, storedObject, uploadSession, uploadSessionBody, uploadSessionTerms } from '../protocol/uploads.js';

/** A binary file part of a multipart body. */
const file = z.string().meta({ format: 'binary' });

/** The multipart fields of a submission, with the master's own limits. */
function submissionFields(config: Pick<MasterConfig, 'maxFiles' | 'maxPipelineSteps'>) {
  return {
    pipeline: z
      .string()
      .optional()
      .meta({
        description: `JSON array of at most ${config.maxPipelineSteps} steps {"op": name, ...parameters}; [] converts the format only. Give this or "preset".`,
        examples: ['[{"op":"blur","sigma":2},{"op":"grayscale"}]'],
      }),
    preset: presetName.optional().meta({ description: 'the name of a preset (GET /v1/presets) to run instead of a pipeline' }),
    options: z.string().optional().meta({ description: 'output options as JSON, the schema "outputOptions" of GET /v1/operations', examples: ['{"metadata":"exif","progressive":true}'] }),
    format: outputFormat.optional().meta({ description: "output format (default: the input's)" }),
    quality: z.string().regex(/^\d{1,3}$/).optional().meta({ description: `encoder quality, an integer ${quality.minValue}-${quality.maxValue}` }),
    images: z.array(file).min(1).max(config.maxFiles),
  };
}

const schema = (type: z.ZodType) => z.toJSONSchema(type, { target: 'draft-2020-12', io: 'output', unrepresentable: 'any' });
const json = (type: z.ZodType, description: string) => ({ description, content: { 'application/json': { schema: schema(type) } } });
const binary = (contentType: string, description: string) => ({ description, content: { [contentType]: { schema: { type: 'string', format: 'binary' } } } });
const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [String(status), { $ref: '#/components/responses/Error' }]));
const jobId = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const workerId = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
/** A route's query parameters, from the schema it is parsed with. */
const queryParameters = (query: z.ZodObject) => Object.entries(query.shape).map(([name, type]) => ({ name, in: 'query', required: false, schema: schema(type) }));
/** The query of the paged routes (GET /v1/jobs, /items). */
const pageParameters = queryParameters(pageQuery);
/** The worker routes take the worker credential, not the client token. */
const workerSecurity = [{ workerToken: [] }];

/**
 * The master's API as an OpenAPI 3.1 document, generated from the zod schemas the master and its
 * clients use (services/protocol) and the master's configured limits. A test checks real answers
 * against it.
 */
export function openApiDocument(config: Pick<MasterConfig, 'maxFiles' | 'maxPipelineSteps' | 'maxUploadBytes'>) {
  const fields = submissionFields(config);
  const { images, ...options } = fields;
  return {
    openapi: '3.1.0',
    info: {
      title: 'DIPS master',
      version: '1',
      description: `Distributed image processing. Each image part may hold at most ${config.maxUploadBytes} bytes. With DIPS_TOKEN set, every /v1 route needs "Authorization: Bearer <token>".`,
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'DIPS_TOKEN' },
        workerToken: { type: 'http', scheme: 'bearer', description: 'DIPS_WORKER_TOKEN (or DIPS_TOKEN when unset): workers only' },
      },
      responses: { Error: json(errorBody, 'an error naming what is wrong: 400 malformed, 401 token, 404 unknown, 413 too large, 415 not an image, 422 bad pipeline, 429/503 busy (Retry-After)') },
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/jobs': {
        get: { summary: 'every job of the master, newest first', parameters: pageParameters, responses: { '200': json(jobsPage, 'a page of jobs'), ...errors(400, 401) } },
        post: {
          summary: 'submit images and a pipeline (multipart), or a batch job from storage (JSON, docs/batch.md)',
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: schema(z.object({ ...fields, webhook: z.url().optional().meta({ description: 'called once when the job finishes (README "Webhooks")' }) })),
              },
              'application/json': { schema: schema(batchJobBody) },
            },
          },
          responses: {
            '202': json(batchAccepted, 'accepted and queued; `resumed: true` when a JSON body equals an unfinished batch job\'s, whose id it answers'),
            ...errors(400, 401, 403, 413, 415, 422, 429, 503),
          },
          callbacks: {
            finished: { '{$request.body#/webhook}': { post: { requestBody: { content: { 'application/json': { schema: schema(webhookEvent) } } }, responses: { '200': { description: 'any 2xx acknowledges' } } } } },
          },
        },
      },
      '/v1/uploads': {
        get: {
          summary: 'what a session accepts: its file limits, and the budget its images must plan whole under as a batch job (a session with one that would tile becomes an upload job: POST /v1/uploads/{id}/job)',
          responses: { '200': json(uploadSessionTerms, "the session limits and the batch items' planning budget"), ...errors(401) },
        },
        post: {
          summary: 'open an upload session: where to send each file (presigned S3 URLs, or signed URLs on the storage service); then POST /v1/jobs with "inputs": {"upload": id}, or POST /v1/uploads/{id}/job',
          requestBody: { required: true, content: { 'application/json': { schema: schema(uploadSessionBody) } } },
          responses: { '201': json(uploadSession, 'the session, its expiry and per file the requests to send'), ...errors(400, 401, 413, 429) },
        },
      },
      '/storage/objects/{key}': {
        summary: "local storage's signed URLs, as a session or /downloads gives them (S3 storage gives presigned bucket URLs instead)",
        servers: [{ url: '/', description: 'the storage service (DIPS_STORAGE_URL; `dips up` starts one), or the master when it serves local storage itself' }],
        parameters: [{ name: 'key', in: 'path', required: true, schema: { type: 'string' } }, ...['expires', 'signature'].map((name) => ({ name, in: 'query', required: true, schema: { type: 'string' } }))],
        put: {
          summary: "a session file's bytes, exactly the signed size, into a new object; the signature authorises it",
          security: [],
          requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } },
          responses: { '200': json(storedObject, 'stored whole'), ...errors(400, 403, 409, 503) },
        },
        get: {
          summary: 'a result, as an attachment with the signed file name and type; the signature authorises it',
          security: [],
          responses: { '200': binary('application/octet-stream', 'the object'), ...errors(403, 404) },
        },
      },
      '/v1/uploads/{id}/job': {
        parameters: [jobId],
        post: {
          summary: "make the session's files the images of an upload job, as a multipart POST /v1/jobs does with its parts (each planned from its header, tiled when too large to run whole); the bytes stay in storage",
          requestBody: { required: true, content: { 'application/json': { schema: schema(sessionJobBody.extend({ webhook: z.url().optional() })) } } },
          responses: { '202': json(jobAccepted, 'accepted and queued'), ...errors(400, 401, 404, 409, 410, 413, 415, 422, 429, 503) },
        },
      },
      '/v1/uploads/{id}/files/{index}/complete': {
        parameters: [jobId, { name: 'index', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } }],
        post: {
          summary: 'complete a file sent in parts (S3 multipart) from the ETags its parts answered',
          requestBody: { required: true, content: { 'application/json': { schema: schema(completeBody) } } },
          responses: { '200': json(storedFile, 'assembled'), ...errors(400, 401, 404, 409, 410) },
        },
      },
      '/v1/jobs/{id}/items': {
        parameters: [jobId],
        get: { summary: "a page of a job's items", parameters: pageParameters, responses: { '200': json(itemsPage, 'a page of items, by index'), ...errors(400, 401, 404) } },
      },
      '/v1/jobs/{id}/retry': {
        parameters: [jobId],
        post: { summary: "re-queue a job's failed items", responses: { '202': json(retryAccepted, 'how many were re-queued'), ...errors(401, 404, 409) } },
      },
      '/v1/jobs/{id}/manifest': {
        parameters: [jobId],
        get: {
          summary: 'one line per item',
          responses: { '200': { description: 'JSON Lines, each line one of these', content: { 'application/x-ndjson': { schema: schema(manifestLine) } } }, ...errors(401, 404) },
        },
      },
      '/v1/jobs/{id}': {
        parameters: [jobId],
        get: { summary: "a job's state", responses: { '200': json(jobView, 'the job'), ...errors(401, 404) } },
        delete: {
          summary: 'cancel a job; with purge=true remove it and its files',
          parameters: queryParameters(cancelQuery),
          responses: { '200': json(jobView, 'the job, canceled'), '204': { description: 'purged' }, ...errors(400, 401, 404) },
        },
      },
      '/v1/jobs/{id}/events': {
        parameters: [jobId],
        get: {
          summary: 'progress as Server-Sent Events',
          responses: { '200': { description: '"progress" events whose data is the job, as GET /v1/jobs/{id}', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors(401, 404) },
        },
      },
      '/v1/jobs/{id}/images/{index}': {
        parameters: [jobId, { name: 'index', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } }],
        get: { summary: 'one processed image', responses: { '200': binary('image/*', 'the image, with its content type'), ...errors(401, 404, 409) } },
      },
      '/v1/jobs/{id}/downloads': {
        parameters: [jobId],
        post: {
          summary: 'where to fetch many finished results at once: presigned GETs of the bucket (S3; send no token there), or this master\'s /v1/jobs/{id}/images/{index}',
          requestBody: { required: true, content: { 'application/json': { schema: schema(downloadsBody) } } },
          responses: { '200': json(downloadsAnswer, 'one entry per index, in the order given'), ...errors(400, 401, 404, 409) },
        },
      },
      '/v1/jobs/{id}/archive': {
        parameters: [jobId],
        get: { summary: 'a zip of all results', responses: { '200': binary('application/zip', 'the finished images'), ...errors(401, 404, 409) } },
      },
      '/v1/process': {
        post: {
          summary: 'one image in, the processed image out, synchronously',
          requestBody: { required: true, content: { 'multipart/form-data': { schema: schema(z.object({ ...options, image: file })) } } },
          responses: {
            '200': { ...binary('image/*', 'the processed image'), headers: Object.fromEntries(Object.entries(processHeaders).map(([name, description]) => [name, { description, schema: { type: 'string' } }])) },
            ...errors(400, 401, 413, 415, 422, 429, 503),
          },
        },
      },
      '/v1/operations': { get: { summary: 'the operation catalogue', responses: { '200': json(operationList, 'every operation'), ...errors(401) } } },
      '/v1/presets': { get: { summary: 'every preset, and whether the master runs only presets', responses: { '200': json(presetList, 'the presets'), ...errors(401) } } },
      '/v1/presets/{name}': {
        parameters: [{ name: 'name', in: 'path', required: true, schema: schema(presetName) }],
        get: { summary: 'one preset', responses: { '200': json(preset, 'the preset'), ...errors(401, 404) } },
        put: {
          summary: 'create or replace a preset',
          requestBody: { required: true, content: { 'application/json': { schema: schema(presetBody) } } },
          responses: { '200': json(preset, 'replaced'), '201': json(preset, 'created'), ...errors(400, 401, 403, 409, 413, 422) },
        },
        delete: { summary: 'delete a preset', responses: { '204': { description: 'deleted' }, ...errors(401, 403, 404) } },
      },
      '/v1/jobs/{id}/duplicates': {
        parameters: [jobId],
        get: { summary: "groups of a job's items with close perceptual hashes (a phash step)", responses: { '200': json(duplicatesReport, 'the groups'), ...errors(401, 404, 409, 413) } },
      },
      '/v1/cluster': { get: { summary: 'workers, backlog and scaling', responses: { '200': json(clusterAnswer, 'the cluster'), ...errors(401) } } },
      '/v1/workers/{id}': {
        parameters: [workerId],
        put: {
          summary: "a worker's registration and heartbeat",
          security: workerSecurity,
          requestBody: { required: true, content: { 'application/json': { schema: schema(heartbeat) } } },
          responses: { '200': json(heartbeatAnswer, "the worker's state as the master sees it"), ...errors(400, 401, 403) },
        },
        delete: { summary: 'a worker leaves', security: workerSecurity, responses: { '204': { description: 'removed' }, ...errors(401) } },
      },
      '/v1/blobs/{lease}/{direction}': {
        parameters: [
          { name: 'lease', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'direction', in: 'path', required: true, schema: { type: 'string' } },
        ],
        get: { summary: "a leased task's input bytes, for workers that cannot reach storage", security: workerSecurity, responses: { '200': binary('application/octet-stream', 'the bytes'), ...errors(401, 404) } },
        put: { summary: "a leased task's output bytes", security: workerSecurity, requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } }, responses: { '204': { description: 'stored' }, ...errors(401, 404) } },
      },
      '/v1/openapi.json': { get: { summary: 'this document', security: [], responses: { '200': { description: 'OpenAPI 3.1' } } } },
      '/healthz': { get: { summary: 'liveness', security: [], responses: { '200': { description: '{"status":"ok"}' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
    },
  };
}

/** GET /v1/openapi.json, mounted before the token check: describing the API gives nothing away. */
export function openApiRouter(config: MasterConfig): express.Router {
  const document = openApiDocument(config);
  const router = express.Router();
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  return router;
}
