import fs from 'node:fs/promises';
import { createWriteStream, openAsBlob } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import { parse as parseContentDisposition } from 'content-disposition';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { ApiError, type MasterClient } from './client.js';

export interface SubmitOptions {
  pipeline: string;
  out?: string;
  format?: string;
  quality?: string;
  /** Draw the progress bar (off when stderr is not a terminal, e.g. in scripts). */
  progress: boolean;
  /** Print nothing (no job id, no downloaded paths): for programs that use this as a library. */
  quiet?: boolean;
}

interface ImageState {
  index: number;
  name: string;
  status: string;
  error?: string;
  qr?: string[];
}

interface JobState {
  id: string;
  status: string;
  progress: { done: number; total: number };
  images: ImageState[];
}

const terminal = new Set(['succeeded', 'partial', 'failed', 'canceled']);
const maxSaturatedRetries = 60;
const pollIntervalMs = 250;
/** Results downloaded at once while the job is still running. */
const parallelDownloads = 4;

/**
 * Submits files as one job, follows its progress (Server-Sent Events, polling if the stream breaks)
 * and downloads each result as soon as it is ready, while the rest are still being processed.
 * Returns the final state.
 */
export async function submitFiles(client: MasterClient, files: string[], options: SubmitOptions): Promise<JobState> {
  const { id } = await postJob(client, files, options);
  if (!options.quiet) process.stderr.write(`job ${id} accepted\n`);
  const bar = options.progress
    ? new cliProgress.SingleBar({ format: 'processing [{bar}] {value}/{total} images | {status}', stream: process.stderr }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(files.length, 0, { status: 'queued' });
  const downloads = options.out ? new ResultDownloader(client, id, options.out, options.quiet === true) : undefined;
  const onState = (job: JobState) => {
    bar?.update(job.progress.done, { status: job.status });
    downloads?.offer(job);
  };
  let job = await followEvents(client, id, onState).catch(() => undefined);
  while (!job || !terminal.has(job.status)) {
    job = await client.json<JobState>(`/v1/jobs/${id}`);
    onState(job);
    if (!terminal.has(job.status)) await sleep(pollIntervalMs);
  }
  bar?.stop();
  await downloads?.finished();
  return job;
}

/** Reads the job's event stream until it reports a final state; undefined if the stream ended early. */
async function followEvents(client: MasterClient, id: string, onState: (job: JobState) => void): Promise<JobState | undefined> {
  const response = await client.request(`/v1/jobs/${id}/events`, { headers: { accept: 'text/event-stream' } });
  const events = response.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
  try {
    for (;;) {
      const { done, value: event } = await events.read();
      if (done) return undefined;
      if (event.event !== 'progress') continue;
      const job = JSON.parse(event.data) as JobState;
      onState(job);
      if (terminal.has(job.status)) return job;
    }
  } finally {
    await events.cancel().catch(() => undefined);
  }
}

/** Posts the job, waiting as the master's Retry-After says while it is saturated. */
async function postJob(client: MasterClient, files: string[], options: SubmitOptions): Promise<{ id: string }> {
  for (let attempt = 0; ; attempt++) {
    const form = new FormData();
    form.set('pipeline', options.pipeline);
    if (options.format) form.set('format', options.format);
    if (options.quality) form.set('quality', options.quality);
    // openAsBlob streams the file from disk when the request is sent: nothing is read whole.
    for (const file of files) form.append('images', await openAsBlob(file), path.basename(file));
    try {
      return await client.json<{ id: string }>('/v1/jobs', { method: 'POST', body: form });
    } catch (error) {
      const saturated = error instanceof ApiError && (error.status === 429 || error.status === 503);
      if (!saturated || attempt >= maxSaturatedRetries) throw error;
      const waitSeconds = Number(error.retryAfter) || 1;
      process.stderr.write(`master is busy; retrying in ${waitSeconds} s\n`);
      await sleep(waitSeconds * 1000);
    }
  }
}

/**
 * Downloads every succeeded image once, a few at a time, as the job reports them. Files are named
 * like `dips process` names them (the master's Content-Disposition); a name that two images of the
 * job share gets the image's index, so no result overwrites another.
 */
class ResultDownloader {
  private readonly started = new Set<number>();
  private readonly waiting: ImageState[] = [];
  private readonly running = new Set<Promise<void>>();
  private readonly namesTaken = new Set<string>();
  private failure: unknown;

  constructor(
    private readonly client: MasterClient,
    private readonly jobId: string,
    private readonly outDir: string,
    private readonly quiet: boolean,
  ) {}

  offer(job: JobState): void {
    for (const image of job.images) {
      if (image.status !== 'succeeded' || this.started.has(image.index)) continue;
      this.started.add(image.index);
      this.waiting.push(image);
    }
    this.pump();
  }

  async finished(): Promise<void> {
    while (this.running.size > 0) await Promise.race(this.running);
    if (this.failure) throw this.failure;
  }

  private pump(): void {
    while (this.running.size < parallelDownloads && this.waiting.length > 0) {
      const download = this.download(this.waiting.shift()!).catch((error: unknown) => {
        this.failure ??= error;
      });
      const tracked = download.finally(() => {
        this.running.delete(tracked);
        this.pump();
      });
      this.running.add(tracked);
    }
  }

  private async download(image: ImageState): Promise<void> {
    await fs.mkdir(this.outDir, { recursive: true });
    const response = await this.client.request(`/v1/jobs/${this.jobId}/images/${image.index}`);
    const target = path.join(this.outDir, this.uniqueName(attachmentName(response.headers.get('content-disposition')) ?? `${image.index}`, image.index));
    await pipeline(Readable.fromWeb(response.body! as import('node:stream/web').ReadableStream), createWriteStream(target));
    if (!this.quiet) process.stdout.write(`${target}\n`);
  }

  private uniqueName(offered: string, index: number): string {
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
function attachmentName(header: string | null): string | undefined {
  if (!header) return undefined;
  try {
    return parseContentDisposition(header).parameters.filename;
  } catch {
    return undefined;
  }
}
