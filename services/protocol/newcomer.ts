import { z } from 'zod';
import { clusterView, jobView } from './api.js';

/**
 * The answers added for newcomers (h16): the catalogue as served, the cluster's meaning in words, the
 * webhook payload and the headers of POST /v1/process. The master builds them, the CLI and console read them, openapi.ts
 * publishes them.
 */

/** An operation of the catalogue as served (services/image-core/catalogue.ts describeOperations). */
export const operationDescription = z.object({
  name: z.string(),
  description: z.string(),
  tiling: z.enum(['pointwise', 'neighbourhood', 'statistics', 'move', 'whole']).meta({ description: 'how the planner splits the step across tiles' }),
  tileable: z.boolean(),
  runsWholeBecause: z.string().optional().meta({ description: 'present when tiling is "whole": why the step needs the whole image' }),
  runsWholeWhen: z.string().optional().meta({ description: 'present when tiling is "move": which parameters make the step run whole' }),
  params: z.record(z.string(), z.unknown()).meta({ description: "JSON Schema of the step's parameters (type, range, default)" }),
});

/** GET /v1/operations: every operation, and the JSON Schema of a job's output options (field `options`). */
export const operationList = z.object({
  operations: z.array(operationDescription),
  outputOptions: z.record(z.string(), z.unknown()).meta({ description: 'JSON Schema of the "options" a job, batch body or preset may give (metadata, progressive, ...)' }),
});
export type OperationList = z.infer<typeof operationList>;

/** GET /v1/cluster as served: the numbers and a summary of them. */
export const clusterAnswer = clusterView.extend({
  summary: z.string().meta({ description: 'the numbers in words: "3 workers, 40 s of work queued, adding 1"' }),
  waiting: z.string().optional().meta({ description: 'present when queued work cannot start now, saying why (no worker registered, workers starting)' }),
});
export type ClusterAnswer = z.infer<typeof clusterAnswer>;

/**
 * Why a submission's `webhook` field cannot be a webhook, or undefined when it can: an http(s) URL
 * (the master also refuses private addresses unless allowed, and needs a secret to sign with). The
 * master answers it as 422 bad_webhook; the console shows it at the field before uploading anything.
 */
export function webhookRefusal(field: string): string | undefined {
  return z.url({ protocol: /^https?$/ }).safeParse(field).success ? undefined : `webhook "${field.slice(0, 200)}" is not an http(s) URL`;
}

/** The body POSTed to a job's webhook URL when the job finishes. */
export const webhookEvent = z.object({
  event: z.literal('job.finished'),
  job: jobView,
});
export type WebhookEvent = z.infer<typeof webhookEvent>;

/** Headers of a POST /v1/process answer besides the content type. */
export const processHeaders = {
  'X-DIPS-Job': 'the id of the one-image job that produced the answer (GET /v1/jobs/{id})',
  'X-DIPS-QR': 'the decoded QR texts as a JSON array, when the pipeline has a qr step',
} as const;
