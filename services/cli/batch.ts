import type { Command } from 'commander';
import { batchAccepted, jobSummary, jobsPage, retryAccepted, type BatchJobBody, type JobSummary, type JobsPage } from '../protocol/batch.js';
import { isTerminalStatus, jobView } from '../protocol/api.js';
import type { MasterClient } from './client.js';

/* `dips submit --from`, `dips jobs`, `dips retry`: batch jobs read from storage. */

export interface BatchSubmitOptions {
  from: string;
  to?: string;
  /** Steps as JSON, or a preset's name. */
  pipeline?: string;
  preset?: string;
  /** Output options as JSON. */
  options?: string;
  format?: string;
  quality?: string;
  maxFailures?: string;
  /** Called by the master once the job finishes (README "Webhooks"). */
  webhook?: string;
  /** Draw the progress bar (off when stderr is not a terminal). */
  progress: boolean;
}

const pollIntervalMs = 500;

/** The job body for `--from URI [--to URI]`: a .jsonl/.csv file is a manifest, anything else a prefix. */
export function batchBody(options: Omit<BatchSubmitOptions, 'progress'>): BatchJobBody {
  const json = (text: string | undefined, flag: string): unknown => {
    try {
      return text === undefined ? undefined : JSON.parse(text);
    } catch (error) {
      throw new Error(`${flag} is not valid JSON: ${(error as Error).message}`);
    }
  };
  const pipeline = json(options.pipeline, '--pipeline') as BatchJobBody['pipeline'];
  const outputOptions = json(options.options, '--options') as BatchJobBody['options'];
  const format = options.format as NonNullable<BatchJobBody['output']>['format'];
  const quality = options.quality === undefined ? undefined : Number(options.quality);
  const maxFailures = options.maxFailures === undefined ? undefined : /%$/.test(options.maxFailures) ? options.maxFailures : Number(options.maxFailures);
  return {
    ...(pipeline ? { pipeline } : {}),
    ...(options.preset ? { preset: options.preset } : {}),
    ...(outputOptions ? { options: outputOptions } : {}),
    inputs: /\.(jsonl|csv)$/i.test(options.from) ? { manifest: options.from } : { prefix: options.from },
    ...(options.to ? { output: { prefix: options.to, ...(format ? { format } : {}), ...(quality ? { quality } : {}) } } : {}),
    ...(!options.to && format ? { format } : {}),
    ...(!options.to && quality ? { quality } : {}),
    ...(maxFailures === undefined ? {} : { maxFailures }),
    ...(options.webhook === undefined ? {} : { webhook: options.webhook }),
  };
}

/**
 * Submits the batch job and follows it with a progress bar (items/s, ETA). Submitting the same job
 * again while it runs attaches to it (the master answers with the same id), so a run cut short by
 * Ctrl-C resumes where it is.
 */
export async function submitBatch(client: MasterClient, options: BatchSubmitOptions): Promise<JobSummary> {
  const { default: cliProgress } = await import('cli-progress');
  const accepted = await client.json('/v1/jobs', batchAccepted, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(batchBody(options)),
  });
  process.stderr.write(`${accepted.resumed ? 'attached to unfinished' : 'accepted'} job ${accepted.id}\n`);
  const bar = options.progress
    ? new cliProgress.SingleBar(
        { format: 'items [{bar}] {value}/{total} | {failed} failed | {rate} items/s | ETA {eta_formatted} | {status}', stream: process.stderr, etaBuffer: 50 },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const started = Date.now();
  let first: number | undefined;
  let job: JobSummary;
  for (;;) {
    job = await client.json(`/v1/jobs/${accepted.id}`, jobSummary);
    const finished = job.progress.done + job.progress.failed;
    first ??= finished;
    const seconds = (Date.now() - started) / 1000;
    const payload = { failed: job.progress.failed, rate: seconds > 0 ? ((finished - first) / seconds).toFixed(1) : '0', status: job.status };
    if (bar && !bar.isActive) bar.start(job.progress.total, finished, payload);
    bar?.setTotal(job.progress.total);
    bar?.update(finished, payload);
    if (isTerminalStatus(job.status)) break;
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
  }
  bar?.stop();
  return job;
}

/** Prints a job list as aligned columns. */
function printJobs(page: JobsPage): void {
  const rows = page.jobs.map((job) => [job.id, job.status, `${job.progress.done}/${job.progress.total}`, String(job.progress.failed), job.kind, job.createdAt]);
  const header = ['ID', 'STATUS', 'DONE', 'FAILED', 'KIND', 'CREATED'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  for (const row of [header, ...rows]) process.stdout.write(`${row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()}\n`);
  if (page.next) process.stdout.write(`more: dips jobs --cursor ${page.next}\n`);
}

async function clientFor(master: string | undefined): Promise<MasterClient> {
  const { MasterClient } = await import('./client.js');
  return new MasterClient(master);
}

/** Registers `dips jobs`, `dips retry` and `dips cancel`. */
export function registerBatchCommands(program: Command): void {
  program
    .command('jobs')
    .description('the master\'s jobs, newest first (every job, whoever submitted it)')
    .option('--status <status>', 'only jobs in this state')
    .option('--limit <n>', 'jobs per page (1-1000)', '50')
    .option('--cursor <cursor>', 'the next page, as the previous one said')
    .option('--json', 'print the page as GET /v1/jobs answers it')
    .option('--master <url>', 'master URL')
    .action(async (options: { status?: string; limit: string; cursor?: string; json?: boolean; master?: string }) => {
      const query = new URLSearchParams({ limit: options.limit, ...(options.status ? { status: options.status } : {}), ...(options.cursor ? { cursor: options.cursor } : {}) });
      const page = await (await clientFor(options.master)).json(`/v1/jobs?${query}`, jobsPage);
      if (options.json) process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
      else printJobs(page);
    });

  program
    .command('retry')
    .description('re-queue the failed items of a job')
    .argument('<id>', 'job id')
    .option('--master <url>', 'master URL')
    .action(async (id: string, options: { master?: string }) => {
      const answer = await (await clientFor(options.master)).json(`/v1/jobs/${encodeURIComponent(id)}/retry`, retryAccepted, { method: 'POST' });
      process.stdout.write(`job ${answer.id}: ${answer.retried} failed item${answer.retried === 1 ? '' : 's'} re-queued (${answer.status})\n`);
    });

  program
    .command('cancel')
    .description('cancel a job: what has not run will not; finished results stay downloadable (DELETE /v1/jobs/{id})')
    .argument('<id>', 'job id')
    .option('--purge', 'also remove the job, its records and all its files')
    .option('--master <url>', 'master URL')
    .action(async (id: string, options: { purge?: boolean; master?: string }) => {
      const client = await clientFor(options.master);
      const jobPath = `/v1/jobs/${encodeURIComponent(id)}`;
      if (options.purge) {
        await client.request(`${jobPath}?purge=true`, { method: 'DELETE' });
        process.stdout.write(`job ${id} removed, with its records and files\n`);
        return;
      }
      const job = await client.json(jobPath, jobView, { method: 'DELETE' });
      const { done, failed, total } = job.progress;
      const finished = job.status === 'canceled' ? '' : ' (it had finished: nothing to cancel)';
      process.stdout.write(`job ${job.id} ${job.status}: ${done} done, ${failed} failed of ${total}${finished}\n`);
    });
}

/** Exit status of `dips submit`: 0 all done, 2 some items failed, 1 nothing done. */
export function exitCodeFor(job: Pick<JobSummary, 'status'>): number {
  return job.status === 'succeeded' ? 0 : job.status === 'partial' ? 2 : 1;
}
