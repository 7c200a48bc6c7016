import { z } from 'zod';
import { annotations, imageStatus, imageView, jobStatus, jobView, outputFormat, quality } from './api.js';
import { outputOptions } from './output.js';
import { presetName } from './presets.js';
import { maxVariantsPerTask } from './tasks.js';
import { MAX_NAMED_KEYS, strictBody } from './strict-body.js';
import { uploadSessionId } from './uploads.js';
import { keysMeant } from '../shared/suggest.js';

/*
 * The batch-job part of the API (contract: "Batch jobs from storage"): the JSON job body, the job list,
 * item pages, manifest lines and the retry answer. Master, CLI, console and tests read these schemas.
 */

/** `s3://bucket/key` or `file:///absolute/path`; the master checks roots and `..` itself (403). */
export const storageUri = z
  .string()
  .max(2048)
  .regex(/^(s3:\/\/[^/]+|file:\/\/\/)/, 'must be an s3://bucket/key or file:///absolute/path URI');

/** Most URLs a job body may list itself; more go in a manifest file. */
export const maxListedUrls = 10_000;

/** The forms of `inputs`, one key each, in the order of batchInputs' options. */
const inputForms = { prefix: '{"prefix": URI}', urls: '{"urls": [URI, ...]}', manifest: '{"manifest": URI of a .jsonl or .csv file}', upload: '{"upload": upload session id}' };

export const batchInputs = z.union(
  [
    z.object({ prefix: storageUri }).strict(),
    z.object({ urls: z.array(storageUri).min(1).max(maxListedUrls) }).strict(),
    z.object({ manifest: storageUri.regex(/\.(jsonl|csv)$/i, 'a manifest is a .jsonl or .csv file') }).strict(),
    /** The files of an upload session (POST /v1/uploads), staged in the master's storage. */
    z.object({ upload: uploadSessionId }).strict(),
  ],
  { error: inputsRefusal },
);

/**
 * What is wrong with `inputs`: for a body of one known form (one key), that form's own problems
 * (`prefix: must be an s3://bucket/key or file:///absolute/path URI`); else the forms there are, and the
 * key likely meant. Zod's own message for a union is only "Invalid input".
 */
function inputsRefusal(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code !== 'invalid_union' || !('errors' in issue)) return undefined;
  const keys = typeof issue.input === 'object' && issue.input !== null && !Array.isArray(issue.input) ? Object.keys(issue.input) : [];
  const form = keys.length === 1 ? Object.keys(inputForms).indexOf(keys[0]!) : -1;
  const problems = form >= 0 ? issue.errors[form] : undefined;
  if (problems && problems.length > 0) return problems.map((problem) => `${problem.path.length > 0 ? problem.path.join('.') : keys[0]}: ${problem.message}`).join('; ');
  const unknown = keys.filter((key) => !(key in inputForms)).slice(0, MAX_NAMED_KEYS);
  return `give one of ${Object.values(inputForms).join(', ')}${keysMeant(unknown, Object.keys(inputForms))}`;
}
export type BatchInputs = z.infer<typeof batchInputs>;

/** Most results one input may give (sizes x formats): one variants task makes them. */
export const maxOutputsPerInput = maxVariantsPerTask;

/**
 * Where results go. `sizes` and `formats` ask for several results from one decode (responsive images):
 * each size is a largest width in pixels (never enlarged), each pair is named `<stem>-<size>w.<ext>`.
 */
export const batchOutput = strictBody({
  prefix: storageUri,
  format: outputFormat.optional(),
  quality: quality.optional(),
  formats: z.array(outputFormat).min(1).max(5).optional(),
  sizes: z.array(z.number().int().min(1).max(65_535)).min(1).max(6).optional(),
})
  .refine((output) => !(output.format && output.formats), { message: 'give "format" or "formats", not both' })
  .refine((output) => (output.formats?.length ?? 1) * (output.sizes?.length ?? 1) <= maxOutputsPerInput, {
    message: `at most ${maxOutputsPerInput} outputs (sizes x formats) per input`,
  });
export type BatchOutput = z.infer<typeof batchOutput>;

/** A count of failed items, or a percentage of the job's items such as "5%". */
const maxFailuresForms = 'a count of items (0 or more) or a percentage such as "5%"';
export const maxFailures = z.union([z.number().int().min(0, maxFailuresForms), z.string().regex(/^\d+(\.\d+)?%$/, maxFailuresForms)], { error: maxFailuresForms });

/**
 * `pipeline` or `preset` (a name of GET /v1/presets, whose format, quality and options the body's override).
 * `webhook` is called once when the job finishes (README "Webhooks"); it is not part of what the job does,
 * so a body sent again resumes its unfinished job whatever webhook it names.
 */
export const batchJobBody = strictBody({
  pipeline: z.array(z.record(z.string(), z.unknown())).optional(),
  preset: presetName.optional(),
  inputs: batchInputs,
  output: batchOutput.optional(),
  format: outputFormat.optional(),
  quality: quality.optional(),
  options: outputOptions.optional(),
  maxFailures: maxFailures.optional(),
  webhook: z.string().max(2048).optional(),
});
export type BatchJobBody = z.infer<typeof batchJobBody>;
/** A body once its preset is resolved: the pipeline it runs, the preset's settings under the body's. */
export type ResolvedBatchJobBody = Omit<BatchJobBody, 'preset' | 'pipeline'> & { pipeline: NonNullable<BatchJobBody['pipeline']> };

export const itemStatus = imageStatus;

/** POST /v1/jobs (JSON) answer: 202; `resumed` when an unfinished job with the same body already existed. */
export const batchAccepted = z.object({ id: z.string(), status: jobStatus, resumed: z.boolean().optional() });

/** An entry of GET /v1/jobs: a job view without its images, and always saying its kind. */
export const jobSummary = jobView.omit({ images: true }).required({ kind: true });
export type JobSummary = z.infer<typeof jobSummary>;

export const jobsPage = z.object({ jobs: z.array(jobSummary), next: z.string().optional() });
export type JobsPage = z.infer<typeof jobsPage>;

/** An item is an image of the job view (size, QR texts, annotations) with where it came from and went. */
export const itemView = imageView.extend({
  status: itemStatus,
  /** permanent: the input itself is bad, retrying cannot help; transient: storage or workers failed. */
  errorKind: z.enum(['permanent', 'transient']).optional(),
  input: z.string().optional(),
  output: z.string().optional(),
  outputs: z.array(z.string()).optional(),
  skipped: z.boolean().optional(),
});
export type ItemView = z.infer<typeof itemView>;

export const itemsPage = z.object({ items: z.array(itemView), next: z.string().optional() });
export type ItemsPage = z.infer<typeof itemsPage>;

export const manifestLine = z.object({
  input: z.string(),
  output: z.string().optional(),
  outputs: z.array(z.string()).optional(),
  status: z.enum(['succeeded', 'skipped', 'failed', 'canceled', 'queued', 'running']),
  error: z.string().optional(),
  annotations: annotations.optional(),
});
export type ManifestLine = z.infer<typeof manifestLine>;

export const retryAccepted = z.object({ id: z.string(), status: jobStatus, retried: z.number().int() });

/** A query parameter given empty (`?status=&limit=`, as a form or the contract's template sends it) is one left out. */
function leftOutWhenEmpty<Schema extends z.ZodType>(schema: Schema) {
  return z.preprocess((value) => (value === '' ? undefined : value), schema);
}

/**
 * Query of GET /v1/jobs and /items: `limit` 1-1000 (default 100), `cursor` from the previous page's `next`.
 * Strict: a misspelt filter (`statsu=failed`) is refused, not ignored into a page of everything.
 */
export const pageQuery = strictBody({
  status: leftOutWhenEmpty(z.string().optional()),
  limit: leftOutWhenEmpty(z.coerce.number().int().min(1).max(1000).default(100)),
  cursor: leftOutWhenEmpty(z.string().max(200).optional()),
});

/** Query of DELETE /v1/jobs/{id}: `purge=true` removes the job and its files; anything else is refused before the job is touched. */
export const cancelQuery = strictBody({
  purge: z.enum(['true', 'false'], { error: 'purge is "true" or "false"' }).optional(),
});
