import fs from 'node:fs/promises';
import { createReadStream, openAsBlob } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { batchAccepted } from '../protocol/batch.js';
import { clusterAnswer } from '../protocol/newcomer.js';
import { preset } from '../protocol/presets.js';
import type { WholeImageBudget } from '../protocol/tasks.js';
import { storedFile, uploadSession, uploadSessionTerms, type UploadPart, type UploadSession } from '../protocol/uploads.js';
import { fileStreamBytes } from '../shared/file-streams.js';
import { describeErrorResponse } from '../shared/http-error.js';
import { isTerminalStatus, jobAccepted, jobWithImages, type ImageView, type JobWithImages, type ResultDownload } from '../protocol/api.js';
import { ApiError, type MasterClient } from './client.js';
import { ResultDownloader } from './download.js';
import { TerminalOutput } from './terminal-output.js';

export interface SubmitOptions {
  /** Steps as JSON, or the name of one of the master's presets. */
  pipeline?: string;
  preset?: string;
  /** Output options as JSON (GET /v1/operations: outputOptions). */
  options?: string;
  out?: string;
  /** Replace result files that already exist in `out` (default: keep them and say so). */
  overwrite?: boolean;
  format?: string;
  quality?: string;
  /** Called by the master once each job finishes (README "Webhooks"). */
  webhook?: string;
  /** Draw the progress bar (off when stderr is not a terminal, e.g. in scripts). */
  progress: boolean;
  /** Print nothing (no job id, no downloaded paths): for programs that use this as a library. */
  quiet?: boolean;
}

const maxSaturatedRetries = 60;
const pollIntervalMs = 250;
/** How often a job that has not started asks the cluster why (no worker, workers starting). */
const waitingCheckMs = 2_000;
/** Requests that send files (or parts of them) at once: enough to fill a link, few enough for a small master. */
const parallelUploads = 4;

/** Images that were really processed: succeeded or failed, not canceled before they ran. */
export const processedCount = (job: JobWithImages): number => job.images.filter((image) => image.status === 'succeeded' || image.status === 'failed').length;

/**
 * The exit code of `dips submit` (README "Exit codes"): 0 when every image succeeded, 2 when the jobs
 * ran to their end but some images failed or were canceled.
 */
export function exitCodeFor(jobs: readonly JobWithImages[]): 0 | 2 {
  return jobs.every((job) => job.images.every((image) => image.status === 'succeeded')) ? 0 : 2;
}

/** One line per finished job: "job <id> partial: 8 succeeded, 1 failed". */
export function describeOutcome(job: JobWithImages): string {
  const count = (status: string) => job.images.filter((image) => image.status === status).length;
  const parts = [`${count('succeeded')} succeeded`, ...(['failed', 'canceled'] as const).filter((s) => count(s) > 0).map((s) => `${count(s)} ${s}`)];
  return `job ${job.id} ${job.status}: ${parts.join(', ')}`;
}

/** Submits files as one job, follows it and downloads its results (the library form, used by the benchmarks). */
export async function submitFiles(client: MasterClient, files: string[], options: SubmitOptions): Promise<JobWithImages> {
  const [job] = await submitJobs(client, [files], options, new TerminalOutput({ progress: options.progress, quiet: options.quiet === true }));
  return job!;
}

/**
 * Submits each group of files as its own job (groups are kept under the master's file limit), follows
 * them all with one progress bar (Server-Sent Events, polling if a stream breaks) and downloads each
 * result as soon as it is ready. Returns the final states, in order.
 */
export async function submitJobs(client: MasterClient, groups: string[][], options: SubmitOptions, output: TerminalOutput): Promise<JobWithImages[]> {
  const ids: string[] = [];
  const route = await submissionRoute(client, options);
  for (const files of groups) {
    const way = await route(files);
    const { id } = way === 'multipart' ? await postMultipart(client, files, options, output) : await postSession(client, files, options, output, way);
    output.note(`job ${id} accepted (${files.length} image${files.length === 1 ? '' : 's'})`);
    ids.push(id);
  }
  const total = groups.reduce((sum, files) => sum + files.length, 0);
  const latest = new Map<string, JobWithImages>();
  const downloads = options.out ? new ResultDownloader(client, options.out, options.overwrite === true, output) : undefined;
  const waiting = new WaitingReason(client, output);
  const reported = new Set<string>();
  output.startProgress(total, 'queued');
  const onState = (job: JobWithImages) => {
    latest.set(job.id, job);
    const states = [...latest.values()];
    const done = states.reduce((sum, state) => sum + processedCount(state), 0);
    const started = states.some((state) => state.status !== 'queued');
    const status = started || !waiting.reason ? [...new Set(states.map((state) => state.status))].join(', ') : `waiting: ${waiting.reason}`;
    output.progress(done, total, status);
    downloads?.offer(job);
    for (const image of job.images) if (isTerminalStatus(image.status)) reportImage(job, image, output, reported);
    if (!started) waiting.check();
  };
  try {
    const jobs = await Promise.all(ids.map((id) => followJob(client, id, onState)));
    // The last downloads land above the bar, which is then drawn one last time below them.
    await downloads?.finished();
    return jobs;
  } finally {
    output.stopProgress();
  }
}

/** Prints each finished image's failure or QR texts once. */
function reportImage(job: JobWithImages, image: ImageView, output: TerminalOutput, reported: Set<string>): void {
  const key = `${job.id}/${image.index}`;
  if (reported.has(key)) return;
  reported.add(key);
  // The master's message names the image already ("x.jpg: cannot decode…").
  if (image.error) output.note(`${image.status}: ${image.error.startsWith(image.name) ? '' : `${image.name}: `}${image.error}`);
  if (image.qr?.length) output.result(`${image.name}\tqr: ${JSON.stringify(image.qr)}`);
}

async function followJob(client: MasterClient, id: string, onState: (job: JobWithImages) => void): Promise<JobWithImages> {
  let job = await followEvents(client, id, onState).catch(() => undefined);
  while (!job || !isTerminalStatus(job.status)) {
    job = await client.json(`/v1/jobs/${id}`, jobWithImages);
    onState(job);
    if (!isTerminalStatus(job.status)) await sleep(pollIntervalMs);
  }
  return job;
}

/**
 * Why queued work does not start, from the master's cluster summary (no worker registered, workers
 * starting); said once as a line, and shown in the bar while it holds.
 */
class WaitingReason {
  reason: string | undefined;
  private lastCheck = 0;
  private said = new Set<string>();

  constructor(
    private readonly client: MasterClient,
    private readonly output: TerminalOutput,
  ) {}

  check(): void {
    if (Date.now() - this.lastCheck < waitingCheckMs) return;
    this.lastCheck = Date.now();
    this.client.json('/v1/cluster', clusterAnswer).then(
      ({ waiting }) => {
        this.reason = waiting?.replace('<master URL>', this.client.baseUrl);
        if (this.reason && !this.said.has(this.reason)) {
          this.said.add(this.reason);
          this.output.note(`the job is waiting: ${this.reason}`);
        }
      },
      () => undefined,
    );
  }
}

/** Reads the job's event stream until it reports a final state; undefined if the stream ended early. */
async function followEvents(client: MasterClient, id: string, onState: (job: JobWithImages) => void): Promise<JobWithImages | undefined> {
  const response = await client.request(`/v1/jobs/${id}/events`, { headers: { accept: 'text/event-stream' } });
  const events = response.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
  try {
    for (;;) {
      const { done, value: event } = await events.read();
      if (done) return undefined;
      if (event.event !== 'progress') continue;
      const job = jobWithImages.parse(JSON.parse(event.data));
      onState(job);
      if (isTerminalStatus(job.status)) return job;
    }
  } finally {
    await events.cancel().catch(() => undefined);
  }
}

/** How a group of files is sent: through an upload session as a batch job or an upload job, or multipart. */
type SubmissionRoute = (files: string[]) => Promise<'batch' | 'upload' | 'multipart'>;

/**
 * How each group of files goes to the master. Every group goes through an upload session. A session's
 * batch job runs its items whole on one worker, failing them (422 needs_tiling) when the master's
 * planner would tile them; so a group with such an image makes its session an upload job instead,
 * which the master plans image by image and tiles. Only a master without sessions (404) gets multipart.
 * Each file's header is read here with the same openInput and planImage the master and the worker use,
 * under the budget the master publishes (GET /v1/uploads). When the steps or a header cannot be read
 * here (a bad pipeline, not an image), the group makes a batch job and the master or the worker names
 * the problem, as for any session.
 */

async function submissionRoute(client: MasterClient, options: SubmitOptions): Promise<SubmissionRoute> {
  let budget: WholeImageBudget;
  try {
    budget = (await client.json('/v1/uploads', uploadSessionTerms)).whole;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return async () => 'multipart';
    throw error;
  }
  // Loaded only here: sharp and the operations are what the header reads need, and no other command.
  const [{ openInput }, { parsePipeline }, { planImage }] = await Promise.all([
    import('../image-core/decode.js'),
    import('../image-core/pipeline.js'),
    import('../image-core/planner.js'),
  ]);
  let steps: ReturnType<typeof parsePipeline>;
  try {
    steps = parsePipeline(options.preset !== undefined ? (await client.json(`/v1/presets/${encodeURIComponent(options.preset)}`, preset)).pipeline : options.pipeline);
  } catch {
    return async () => 'batch';
  }
  const tiles = async (file: string) => {
    try {
      // Header only, and no pixel limit here: an image beyond the master's plans tiled, so it goes to
      // an upload job, where the master refuses it (413) naming the file.
      const opened = await openInput(file, { maxPixels: Number.MAX_SAFE_INTEGER, name: path.basename(file) });
      return planImage(opened, steps, budget).mode !== 'whole';
    } catch {
      return false;
    }
  };
  return async (files) => {
    for (const file of files) if (await tiles(file)) return 'upload';
    return 'batch';
  };
}

/**
 * Submits the files as one job through an upload session: one request declares them all, the bytes go
 * where the master says (S3: straight to the bucket; local storage: signed URLs of the storage
 * service), a few requests at a time, then a JSON request makes the job of `kind` from them. A master
 * without upload jobs from sessions (404) gets the files multipart instead.
 */
async function postSession(client: MasterClient, files: string[], options: SubmitOptions, output: TerminalOutput, kind: 'batch' | 'upload'): Promise<{ id: string }> {
  const declared = await Promise.all(files.map(async (file) => ({ name: path.basename(file), size: (await fs.stat(file)).size })));
  const session = await whileSaturated(output, () => client.json('/v1/uploads', uploadSession, jsonPost({ files: declared })));
  await sendFiles(client, session, files);
  const recipe = {
    ...(options.pipeline !== undefined ? { pipeline: parseJsonFlag('pipeline', options.pipeline) } : {}),
    ...(options.preset !== undefined ? { preset: options.preset } : {}),
    ...(options.options !== undefined ? { options: parseJsonFlag('options', options.options) } : {}),
    ...(options.format ? { format: options.format } : {}),
    ...(options.quality ? { quality: Number(options.quality) } : {}),
    ...(options.webhook !== undefined ? { webhook: options.webhook } : {}),
  };
  if (kind === 'batch') return whileSaturated(output, () => client.json('/v1/jobs', batchAccepted, jsonPost({ ...recipe, inputs: { upload: session.id } })));
  try {
    return await whileSaturated(output, () => client.json(`/v1/uploads/${session.id}/job`, jobAccepted, jsonPost(recipe)));
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404 && error.code === 'not_found')) throw error;
    return postMultipart(client, files, options, output);
  }
}

function jsonPost(body: unknown): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/** A flag that holds JSON, parsed here so a mistake is named before anything is sent. */
function parseJsonFlag(field: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`the "${field}" field is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * Sends every part of every file, `parallelUploads` at a time, each exactly as the session says (its
 * URL and headers, no token: the URL authorises itself), read from disk as it is sent; then completes
 * the files sent in parts with their ETags.
 */
async function sendFiles(client: MasterClient, session: UploadSession, files: string[]): Promise<void> {
  const etags = session.files.map((file) => file.parts.map(() => ''));
  const work = session.files.flatMap((file) => file.parts.map((part, number) => ({ file, part, number })));
  const next = async (): Promise<void> => {
    for (let item = work.shift(); item; item = work.shift()) {
      const { file, part, number } = item;
      const url = new URL(part.url, client.baseUrl);
      const response = await fetch(url, { method: 'PUT', headers: { ...part.headers, 'content-length': String(part.size) }, ...partBody(files[file.index]!, part) }).catch((error: Error) => {
        throw new Error(`${files[file.index]}: cannot be sent to ${url.origin}: ${(error as Error & { cause?: Error }).cause?.message ?? error.message}`);
      });
      if (!response.ok) throw new Error(`${files[file.index]}: storage answered ${response.status}: ${await describeErrorResponse(response)}`);
      await response.body?.cancel();
      etags[file.index]![number] = response.headers.get('etag') ?? '';
    }
  };
  await Promise.all(Array.from({ length: parallelUploads }, next));
  for (const file of session.files) {
    if (file.complete) await client.json(file.complete, storedFile, jsonPost({ etags: etags[file.index] }));
  }
}

/** The bytes of one part, read from the file as they are sent (a stream body is sent with `duplex: 'half'`). */
function partBody(file: string, part: UploadPart): { body: string } | { body: ReadableStream; duplex: 'half' } {
  if (part.size === 0) return { body: '' };
  const bytes = createReadStream(file, { start: part.offset, end: part.offset + part.size - 1, highWaterMark: fileStreamBytes });
  return { body: Readable.toWeb(bytes) as ReadableStream, duplex: 'half' };
}

/** Retries a request while the master is saturated (429/503), waiting as its Retry-After says. */
async function whileSaturated<T>(output: TerminalOutput, call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const saturated = error instanceof ApiError && (error.status === 429 || error.status === 503);
      if (!saturated || attempt >= maxSaturatedRetries) throw error;
      const waitSeconds = Number(error.retryAfter) || 1;
      output.note(`master is busy; retrying in ${waitSeconds} s`);
      await sleep(waitSeconds * 1000);
    }
  }
}

/** The multipart submission: for a group with an image that tiles, and for a master without upload sessions. */
async function postMultipart(client: MasterClient, files: string[], options: SubmitOptions, output: TerminalOutput): Promise<{ id: string }> {
  return whileSaturated(output, async () => {
    const form = new FormData();
    for (const field of ['pipeline', 'preset', 'options', 'webhook'] as const) if (options[field] !== undefined) form.set(field, options[field]);
    if (options.format) form.set('format', options.format);
    if (options.quality) form.set('quality', options.quality);
    // openAsBlob streams the file from disk when the request is sent: nothing is read whole.
    for (const file of files) {
      const blob = await openAsBlob(file).catch((error: Error) => {
        throw new Error(`${file}: cannot be read: ${error.message}`);
      });
      form.append('images', blob, path.basename(file));
    }
    return client.json('/v1/jobs', jobAccepted, { method: 'POST', body: form });
  });
}
