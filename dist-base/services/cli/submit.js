import fs from 'node:fs/promises';
import { createWriteStream, openAsBlob } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseContentDisposition } from 'content-disposition';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { batchAccepted } from '../protocol/batch.js';
import { clusterAnswer } from '../protocol/newcomer.js';
import { preset } from '../protocol/presets.js';
import { storedFile, uploadSession, uploadSessionTerms } from '../protocol/uploads.js';
import { describeErrorResponse } from '../shared/http-error.js';
import { isTerminalStatus, jobAccepted, jobWithImages } from '../protocol/api.js';
import { ApiError } from './client.js';
import { ResultFetcher } from './result-fetcher.js';
import { TerminalOutput } from './terminal-output.js';
const maxSaturatedRetries = 60;
const pollIntervalMs = 250;
/** How often a job that has not started asks the cluster why (no worker, workers starting). */
const waitingCheckMs = 2_000;
/** Requests that send files (or parts of them) at once: enough to fill a link, few enough for a small master. */
const parallelUploads = 4;
/** Images that were really processed: succeeded or failed, not canceled before they ran. */
export const processedCount = (job) => job.images.filter((image) => image.status === 'succeeded' || image.status === 'failed').length;
/**
 * The exit code of `dips submit` (README "Exit codes"): 0 when every image succeeded, 2 when the jobs
 * ran to their end but some images failed or were canceled.
 */
export function exitCodeFor(jobs) {
    return jobs.every((job) => job.images.every((image) => image.status === 'succeeded')) ? 0 : 2;
}
/** One line per finished job: "job <id> partial: 8 succeeded, 1 failed". */
export function describeOutcome(job) {
    const count = (status) => job.images.filter((image) => image.status === status).length;
    const parts = [`${count('succeeded')} succeeded`, ...['failed', 'canceled'].filter((s) => count(s) > 0).map((s) => `${count(s)} ${s}`)];
    return `job ${job.id} ${job.status}: ${parts.join(', ')}`;
}
/** Submits files as one job, follows it and downloads its results (the library form, used by the benchmarks). */
export async function submitFiles(client, files, options) {
    const [job] = await submitJobs(client, [files], options, new TerminalOutput({ progress: options.progress, quiet: options.quiet === true }));
    return job;
}
/**
 * Submits each group of files as its own job (groups are kept under the master's file limit), follows
 * them all with one progress bar (Server-Sent Events, polling if a stream breaks) and downloads each
 * result as soon as it is ready. Returns the final states, in order.
 */
export async function submitJobs(client, groups, options, output) {
    const ids = [];
    const route = await submissionRoute(client, options);
    for (const files of groups) {
        const { id } = (await route(files)) === 'session' ? await postSession(client, files, options, output) : await postMultipart(client, files, options, output);
        output.note(`job ${id} accepted (${files.length} image${files.length === 1 ? '' : 's'})`);
        ids.push(id);
    }
    const total = groups.reduce((sum, files) => sum + files.length, 0);
    const latest = new Map();
    const downloads = options.out ? new ResultDownloader(client, options.out, options.overwrite === true, output) : undefined;
    const waiting = new WaitingReason(client, output);
    const reported = new Set();
    output.startProgress(total, 'queued');
    const onState = (job) => {
        latest.set(job.id, job);
        const states = [...latest.values()];
        const done = states.reduce((sum, state) => sum + processedCount(state), 0);
        const started = states.some((state) => state.status !== 'queued');
        const status = started || !waiting.reason ? [...new Set(states.map((state) => state.status))].join(', ') : `waiting: ${waiting.reason}`;
        output.progress(done, total, status);
        downloads?.offer(job);
        for (const image of job.images)
            if (isTerminalStatus(image.status))
                reportImage(job, image, output, reported);
        if (!started)
            waiting.check();
    };
    try {
        const jobs = await Promise.all(ids.map((id) => followJob(client, id, onState)));
        // The last downloads land above the bar, which is then drawn one last time below them.
        await downloads?.finished();
        return jobs;
    }
    finally {
        output.stopProgress();
    }
}
/** Prints each finished image's failure or QR texts once. */
function reportImage(job, image, output, reported) {
    const key = `${job.id}/${image.index}`;
    if (reported.has(key))
        return;
    reported.add(key);
    // The master's message names the image already ("x.jpg: cannot decode…").
    if (image.error)
        output.note(`${image.status}: ${image.error.startsWith(image.name) ? '' : `${image.name}: `}${image.error}`);
    if (image.qr?.length)
        output.result(`${image.name}\tqr: ${JSON.stringify(image.qr)}`);
}
async function followJob(client, id, onState) {
    let job = await followEvents(client, id, onState).catch(() => undefined);
    while (!job || !isTerminalStatus(job.status)) {
        job = await client.json(`/v1/jobs/${id}`, jobWithImages);
        onState(job);
        if (!isTerminalStatus(job.status))
            await sleep(pollIntervalMs);
    }
    return job;
}
/**
 * Why queued work does not start, from the master's cluster summary (no worker registered, workers
 * starting); said once as a line, and shown in the bar while it holds.
 */
class WaitingReason {
    client;
    output;
    reason;
    lastCheck = 0;
    said = new Set();
    constructor(client, output) {
        this.client = client;
        this.output = output;
    }
    check() {
        if (Date.now() - this.lastCheck < waitingCheckMs)
            return;
        this.lastCheck = Date.now();
        this.client.json('/v1/cluster', clusterAnswer).then(({ waiting }) => {
            this.reason = waiting?.replace('<master URL>', this.client.baseUrl);
            if (this.reason && !this.said.has(this.reason)) {
                this.said.add(this.reason);
                this.output.note(`the job is waiting: ${this.reason}`);
            }
        }, () => undefined);
    }
}
/** Reads the job's event stream until it reports a final state; undefined if the stream ended early. */
async function followEvents(client, id, onState) {
    const response = await client.request(`/v1/jobs/${id}/events`, { headers: { accept: 'text/event-stream' } });
    const events = response.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
    try {
        for (;;) {
            const { done, value: event } = await events.read();
            if (done)
                return undefined;
            if (event.event !== 'progress')
                continue;
            const job = jobWithImages.parse(JSON.parse(event.data));
            onState(job);
            if (isTerminalStatus(job.status))
                return job;
        }
    }
    finally {
        await events.cancel().catch(() => undefined);
    }
}
/**
 * How each group of files goes to the master. An upload session makes a batch job, whose items run
 * whole on one worker and fail (422 needs_tiling) when the master's planner would tile them; so a group
 * with such an image goes as one multipart POST /v1/jobs, which tiles, and so does every group for a
 * master without sessions (404). Each file's header is read here with the same openInput and planImage
 * the master and the worker use, under the budget the master publishes (GET /v1/uploads). When the
 * steps or a header cannot be read here (a bad pipeline, not an image), the session is used and the
 * master or the worker names the problem, as for any session.
 */
async function submissionRoute(client, options) {
    let budget;
    try {
        budget = (await client.json('/v1/uploads', uploadSessionTerms)).whole;
    }
    catch (error) {
        if (error instanceof ApiError && error.status === 404)
            return async () => 'multipart';
        throw error;
    }
    // Loaded only here: sharp and the operations are what the header reads need, and no other command.
    const [{ openInput }, { parsePipeline }, { planImage }] = await Promise.all([
        import('../image-core/decode.js'),
        import('../image-core/pipeline.js'),
        import('../image-core/planner.js'),
    ]);
    let steps;
    try {
        steps = parsePipeline(options.preset !== undefined ? (await client.json(`/v1/presets/${encodeURIComponent(options.preset)}`, preset)).pipeline : options.pipeline);
    }
    catch {
        return async () => 'session';
    }
    const tiles = async (file) => {
        try {
            // Header only, and no pixel limit here: an image beyond the master's plans tiled, so it goes
            // multipart, where the master refuses it (413) naming the file.
            const opened = await openInput(file, { maxPixels: Number.MAX_SAFE_INTEGER, name: path.basename(file) });
            return planImage(opened, steps, budget).mode !== 'whole';
        }
        catch {
            return false;
        }
    };
    return async (files) => {
        for (const file of files)
            if (await tiles(file))
                return 'multipart';
        return 'session';
    };
}
/**
 * Submits the files as one job through an upload session: one request declares them all, the bytes go
 * where the master says (S3: straight to the bucket; local storage: signed URLs the master streams to
 * disk), a few requests at a time, then a JSON request makes the job.
 */
async function postSession(client, files, options, output) {
    const declared = await Promise.all(files.map(async (file) => ({ name: path.basename(file), size: (await fs.stat(file)).size })));
    const session = await whileSaturated(output, () => client.json('/v1/uploads', uploadSession, jsonPost({ files: declared })));
    await sendFiles(client, session, files);
    const body = {
        ...(options.pipeline !== undefined ? { pipeline: parseJsonFlag('pipeline', options.pipeline) } : {}),
        ...(options.preset !== undefined ? { preset: options.preset } : {}),
        ...(options.options !== undefined ? { options: parseJsonFlag('options', options.options) } : {}),
        ...(options.format ? { format: options.format } : {}),
        ...(options.quality ? { quality: Number(options.quality) } : {}),
        inputs: { upload: session.id },
    };
    return whileSaturated(output, () => client.json('/v1/jobs', batchAccepted, jsonPost(body)));
}
function jsonPost(body) {
    return { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}
/** A flag that holds JSON, parsed here so a mistake is named before anything is sent. */
function parseJsonFlag(field, text) {
    try {
        return JSON.parse(text);
    }
    catch (error) {
        throw new Error(`the "${field}" field is not valid JSON: ${error.message}`);
    }
}
/**
 * Sends every part of every file, `parallelUploads` at a time, each exactly as the session says (its
 * URL and headers, no token: the URL authorises itself), read from disk as it is sent; then completes
 * the files sent in parts with their ETags.
 */
async function sendFiles(client, session, files) {
    const blobs = await Promise.all(files.map((file) => openAsBlob(file)));
    const etags = session.files.map((file) => file.parts.map(() => ''));
    const work = session.files.flatMap((file) => file.parts.map((part, number) => ({ file, part, number })));
    const next = async () => {
        for (let item = work.shift(); item; item = work.shift()) {
            const { file, part, number } = item;
            const url = new URL(part.url, client.baseUrl);
            const response = await fetch(url, { method: 'PUT', headers: part.headers, body: blobs[file.index].slice(part.offset, part.offset + part.size) }).catch((error) => {
                throw new Error(`${files[file.index]}: cannot be sent to ${url.origin}: ${error.cause?.message ?? error.message}`);
            });
            if (!response.ok)
                throw new Error(`${files[file.index]}: storage answered ${response.status}: ${await describeErrorResponse(response)}`);
            await response.body?.cancel();
            etags[file.index][number] = response.headers.get('etag') ?? '';
        }
    };
    await Promise.all(Array.from({ length: parallelUploads }, next));
    for (const file of session.files) {
        if (file.complete)
            await client.json(file.complete, storedFile, jsonPost({ etags: etags[file.index] }));
    }
}
/** Retries a request while the master is saturated (429/503), waiting as its Retry-After says. */
async function whileSaturated(output, call) {
    for (let attempt = 0;; attempt++) {
        try {
            return await call();
        }
        catch (error) {
            const saturated = error instanceof ApiError && (error.status === 429 || error.status === 503);
            if (!saturated || attempt >= maxSaturatedRetries)
                throw error;
            const waitSeconds = Number(error.retryAfter) || 1;
            output.note(`master is busy; retrying in ${waitSeconds} s`);
            await sleep(waitSeconds * 1000);
        }
    }
}
/** The multipart submission: for a group with an image that tiles, and for a master without upload sessions. */
async function postMultipart(client, files, options, output) {
    return whileSaturated(output, async () => {
        const form = new FormData();
        for (const field of ['pipeline', 'preset', 'options'])
            if (options[field] !== undefined)
                form.set(field, options[field]);
        if (options.format)
            form.set('format', options.format);
        if (options.quality)
            form.set('quality', options.quality);
        // openAsBlob streams the file from disk when the request is sent: nothing is read whole.
        for (const file of files) {
            const blob = await openAsBlob(file).catch((error) => {
                throw new Error(`${file}: cannot be read: ${error.message}`);
            });
            form.append('images', blob, path.basename(file));
        }
        return client.json('/v1/jobs', jobAccepted, { method: 'POST', body: form });
    });
}
/**
 * Downloads every succeeded image once, a few at a time, as the jobs report them (their URLs asked
 * for in batches: with S3 the bytes come from the bucket, not through the master). Files are named
 * like `dips process` names them; a name that two images share gets the image's index, so no result
 * overwrites another. A file already in the output directory is kept unless `overwrite` is set.
 */
class ResultDownloader {
    outDir;
    overwrite;
    output;
    started = new Set();
    namesTaken = new Set();
    fetcher;
    constructor(client, outDir, overwrite, output) {
        this.outDir = outDir;
        this.overwrite = overwrite;
        this.output = output;
        this.fetcher = new ResultFetcher(client, (_jobId, download, response) => this.save(download, response));
    }
    offer(job) {
        for (const image of job.images) {
            const key = `${job.id}/${image.index}`;
            if (image.status !== 'succeeded' || this.started.has(key))
                continue;
            this.started.add(key);
            this.fetcher.add(job.id, image.index);
        }
        if (isTerminalStatus(job.status))
            this.fetcher.flush(job.id);
    }
    finished() {
        return this.fetcher.finished();
    }
    async save(download, response) {
        await fs.mkdir(this.outDir, { recursive: true });
        const offered = download.name || attachmentName(response.headers.get('content-disposition')) || `${download.index}`;
        const target = path.join(this.outDir, this.uniqueName(offered, download.index));
        let file;
        try {
            // 'wx' creates the file only if it does not exist: no result silently replaces an older one.
            file = createWriteStream(target, { flags: this.overwrite ? 'w' : 'wx' });
            await new Promise((resolve, reject) => file.once('open', () => resolve()).once('error', reject));
        }
        catch (error) {
            await response.body?.cancel();
            if (error.code !== 'EEXIST')
                throw error;
            this.output.note(`${target}: exists, kept (--overwrite replaces it)`);
            return;
        }
        await pipeline(Readable.fromWeb(response.body), file);
        this.output.result(target);
    }
    uniqueName(offered, index) {
        let name = path.basename(offered);
        if (this.namesTaken.has(name)) {
            const { name: stem, ext } = path.parse(name);
            name = `${stem}-${index}${ext}`;
        }
        this.namesTaken.add(name);
        return name;
    }
}
/** The file name the master gives a result (Content-Disposition, plain or RFC 5987 encoded). */
function attachmentName(header) {
    if (!header)
        return undefined;
    try {
        return parseContentDisposition(header).parameters.filename;
    }
    catch {
        return undefined;
    }
}
//# sourceMappingURL=submit.js.map