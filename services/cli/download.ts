import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse as parseContentDisposition } from 'content-disposition';
import { isTerminalStatus, jobView, type ImageView, type JobView, type ResultDownload } from '../protocol/api.js';
import { itemsPage } from '../protocol/batch.js';
import { fileStreamBytes } from '../shared/file-streams.js';
import type { MasterClient } from './client.js';
import { ResultFetcher } from './result-fetcher.js';
import type { TerminalOutput } from './terminal-output.js';

/* Saving a job's results as files: as `dips submit` follows its jobs, and `dips download` for a job later. */

/**
 * Downloads every succeeded image once, a few at a time, as the jobs report them (their URLs asked
 * for in batches: with S3 the bytes come from the bucket, not through the master). Files are named
 * like `dips process` names them; a name that two images share gets the image's index, so no result
 * overwrites another. A file already in the output directory is kept unless `overwrite` is set.
 */
export class ResultDownloader {
  private readonly started = new Set<string>();
  private readonly namesTaken = new Set<string>();
  private readonly fetcher: ResultFetcher;

  constructor(
    client: MasterClient,
    private readonly outDir: string,
    private readonly overwrite: boolean,
    private readonly output: TerminalOutput,
  ) {
    this.fetcher = new ResultFetcher(client, (_jobId, download, response) => this.save(download, response));
  }

  /** Takes the job's succeeded images not taken yet; once the job has ended, asks for what still waits. */
  offer(job: Pick<JobView, 'id' | 'status'> & { images: ReadonlyArray<Pick<ImageView, 'index' | 'status'>> }): void {
    for (const image of job.images) {
      const key = `${job.id}/${image.index}`;
      if (image.status !== 'succeeded' || this.started.has(key)) continue;
      this.started.add(key);
      this.fetcher.add(job.id, image.index);
    }
    if (isTerminalStatus(job.status)) this.fetcher.flush(job.id);
  }

  finished(): Promise<void> {
    return this.fetcher.finished();
  }

  private async save(download: ResultDownload, response: Response): Promise<void> {
    await fs.mkdir(this.outDir, { recursive: true });
    const offered = download.name || attachmentName(response.headers.get('content-disposition')) || `${download.index}`;
    const target = path.join(this.outDir, this.uniqueName(offered, download.index));
    let file;
    try {
      // 'wx' creates the file only if it does not exist: no result silently replaces an older one.
      file = createWriteStream(target, { flags: this.overwrite ? 'w' : 'wx', highWaterMark: fileStreamBytes });
      await new Promise<void>((resolve, reject) => file!.once('open', () => resolve()).once('error', reject));
    } catch (error) {
      await response.body?.cancel();
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      this.output.note(`${target}: exists, kept (--overwrite replaces it)`);
      return;
    }
    await pipeline(Readable.fromWeb(response.body! as import('node:stream/web').ReadableStream), file);
    this.output.result(target);
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

/** Items asked for per page: the most GET /v1/jobs/{id}/items gives. */
const itemsPerPage = 1000;

/**
 * `dips download ID --out DIR`: every finished result of a job, saved as `dips submit --out` saves them,
 * page by page of its items (a job of any size). A job that wrote its results to a destination prefix
 * has none in the master's storage: that is an error naming where they are.
 */
export async function downloadJob(client: MasterClient, jobId: string, options: { out: string; overwrite: boolean }, output: TerminalOutput): Promise<{ job: JobView; results: number }> {
  const id = encodeURIComponent(jobId);
  const job = await client.json(`/v1/jobs/${id}`, jobView);
  const downloader = new ResultDownloader(client, options.out, options.overwrite, output);
  let cursor: string | undefined;
  let results = 0;
  do {
    const query = new URLSearchParams({ status: 'succeeded', limit: String(itemsPerPage), ...(cursor ? { cursor } : {}) });
    const page = await client.json(`/v1/jobs/${id}/items?${query}`, itemsPage);
    const written = page.items.find((item) => item.output !== undefined);
    if (written) throw new Error(`job ${job.id} wrote its results to storage (the first: ${written.output}); the master keeps none to download`);
    downloader.offer({ id: job.id, status: job.status, images: page.items });
    results += page.items.length;
    cursor = page.next;
  } while (cursor);
  await downloader.finished();
  return { job, results };
}
