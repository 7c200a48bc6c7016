import fs from 'node:fs/promises';
import { openAsBlob } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import { ApiError, type MasterClient } from './client.js';

export interface SubmitOptions {
  pipeline: string;
  out?: string;
  format?: string;
  quality?: string;
  /** Draw the progress bar (off when stderr is not a terminal, e.g. in scripts). */
  progress: boolean;
}

interface JobState {
  id: string;
  status: string;
  progress: { done: number; total: number };
  images: Array<{ index: number; name: string; status: string; error?: string; qr?: string[] }>;
}

const terminal = new Set(['succeeded', 'failed', 'canceled']);
const maxSaturatedRetries = 60;

/** Submits files as one job, follows its progress, downloads the results; returns the final state. */
export async function submitFiles(client: MasterClient, files: string[], options: SubmitOptions): Promise<JobState> {
  const { id } = await postJob(client, files, options);
  process.stderr.write(`job ${id} accepted\n`);
  const bar = options.progress ? new cliProgress.SingleBar({ format: 'processing [{bar}] {value}/{total} images | {status}', stream: process.stderr }, cliProgress.Presets.shades_classic) : undefined;
  bar?.start(files.length, 0, { status: 'queued' });
  let job: JobState;
  for (;;) {
    job = await client.json<JobState>(`/v1/jobs/${id}`);
    bar?.update(job.progress.done, { status: job.status });
    if (terminal.has(job.status)) break;
    await sleep(250);
  }
  bar?.stop();
  if (options.out) await downloadResults(client, job, options.out);
  return job;
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

async function downloadResults(client: MasterClient, job: JobState, outDir: string): Promise<void> {
  await fs.mkdir(outDir, { recursive: true });
  for (const image of job.images) {
    if (image.status !== 'succeeded') continue;
    const response = await client.request(`/v1/jobs/${job.id}/images/${image.index}`);
    const name = attachmentName(response.headers.get('content-disposition')) ?? `${image.index}`;
    const target = path.join(outDir, path.basename(name));
    await fs.writeFile(target, Buffer.from(await response.arrayBuffer()));
    process.stdout.write(`${target}\n`);
  }
}

function attachmentName(header: string | null): string | undefined {
  const encoded = header?.match(/filename\*=UTF-8''([^;]+)/i)?.[1];
  if (encoded) return decodeURIComponent(encoded);
  return header?.match(/filename="?([^";]+)"?/i)?.[1];
}
