import fs from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { MasterClient } from '../services/cli/client.js';
import { isTerminalStatus, jobView, jobWithImages, parseResponse, type ImageView } from '../services/protocol/api.js';
import { batchAccepted } from '../services/protocol/batch.js';
import { ResultFetcher } from '../services/cli/result-fetcher.js';
import { processedCount, submitFiles } from '../services/cli/submit.js';
import { startLocalCluster, type LocalCluster } from './cluster.js';
import { countersAround } from './proc.js';
import { startS3Server } from './s3-server.js';
import { scratchDir } from './scratch.js';

/*
 * Batch jobs read from storage, results kept in the master's storage: the master's share of a job
 * when no byte of it passes through the master. Each job lists one folder (file:// under DIPS_SOURCES,
 * or s3:// on a loopback S3 server); the client follows each job's event stream, as `dips submit`
 * does, and downloads every result as it is reported with the CLI's own fetcher (URLs asked for in
 * batches, 4 results at a time; in S3 mode the bytes come from the bucket).
 * With --sessions the photos are not staged: each job is sent as `dips submit` sends it, through an
 * upload session (the master's share of uploads, local disk: a signed PUT per file).
 *   npm run build && node dist/bench/storage-batch.js local|s3 [--sessions] [--cpu-prof DIR]
 */

export interface StorageBatchOptions {
  pipeline: unknown[];
  format: string;
  quality: number;
}

export interface StorageBatchRun {
  images: number;
  /** Result bytes the client downloaded. */
  downloadedBytes: number;
}


/** Copies each job's photos into its own folder under `root` (a local directory). */
export async function stageLocal(root: string, jobs: ReadonlyArray<readonly string[]>): Promise<string[]> {
  const folders: string[] = [];
  for (const [job, files] of jobs.entries()) {
    const folder = path.join(root, `job-${job}`);
    await fs.mkdir(folder, { recursive: true });
    await Promise.all(files.map((file, index) => fs.copyFile(file, path.join(folder, `${index}-${path.basename(file)}`))));
    folders.push(`file://${folder}/`);
  }
  return folders;
}

/** Puts each job's photos under its own prefix `<under>/job-<n>/` in the bucket. */
export async function stageS3(s3: Awaited<ReturnType<typeof startS3Server>>, under: string, jobs: ReadonlyArray<readonly string[]>): Promise<string[]> {
  const prefixes: string[] = [];
  for (const [job, files] of jobs.entries()) {
    for (const [index, file] of files.entries()) {
      // A buffer, not a stream: the SDK would send a stream with a checksum trailer, which s3rver refuses.
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${under}/job-${job}/${index}-${path.basename(file)}`, Body: await fs.readFile(file) }));
    }
    prefixes.push(`s3://${s3.bucket}/${under}/job-${job}/`);
  }
  return prefixes;
}

/** Follows one job's event stream until it ends, handing each succeeded item to the fetcher once. */
async function followJob(baseUrl: string, id: string, results: ResultFetcher): Promise<string> {
  const offered = new Set<number>();
  const response = await fetch(`${baseUrl}/v1/jobs/${id}/events`, { headers: { accept: 'text/event-stream' } });
  if (!response.ok) throw new Error(`events of ${id} answered ${response.status}`);
  const events = response.body!.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream()).getReader();
  const offer = (items: readonly ImageView[]) => {
    for (const item of items) {
      if (item.status !== 'succeeded' || offered.has(item.index)) continue;
      offered.add(item.index);
      results.add(id, item.index);
    }
  };
  try {
    for (;;) {
      const { done, value: event } = await events.read();
      if (done) throw new Error(`event stream of ${id} ended before the job did`);
      if (event.event !== 'progress') continue;
      const job = jobWithImages.parse(JSON.parse(event.data));
      offer(job.images);
      if (isTerminalStatus(job.status)) {
        results.flush(id);
        return job.status;
      }
    }
  } finally {
    await events.cancel().catch(() => undefined);
  }
}

/** Submits one batch job per folder together, follows them and downloads every result. */
export async function runStorageBatch(cluster: LocalCluster, folders: readonly string[], options: StorageBatchOptions): Promise<StorageBatchRun> {
  let downloadedBytes = 0;
  // As `dips submit` fetches results: URLs in batches, the bytes from the bucket in S3 mode.
  const results = new ResultFetcher(new MasterClient(cluster.url, {}), async (_jobId, _download, response) => {
    const reader = response.body!.getReader();
    for (let read = await reader.read(); !read.done; read = await reader.read()) downloadedBytes += read.value.byteLength;
  });
  const ids = await Promise.all(
    folders.map(async (prefix) => {
      const response = await fetch(`${cluster.url}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ pipeline: options.pipeline, inputs: { prefix }, format: options.format, quality: options.quality }),
      });
      if (response.status !== 202) throw new Error(`POST /v1/jobs answered ${response.status}: ${await response.text()}`);
      return (await parseResponse(batchAccepted, response)).id;
    }),
  );
  const statuses = await Promise.all(ids.map((id) => followJob(cluster.url, id, results)));
  await results.finished();
  if (statuses.some((status) => status !== 'succeeded')) {
    const views = await Promise.all(ids.map(async (id) => (await fetch(`${cluster.url}/v1/jobs/${id}`)).text()));
    throw new Error(`batch jobs ended ${statuses.join(', ')}: ${views.join('\n').slice(0, 2000)}`);
  }
  const done = await Promise.all(ids.map(async (id) => (await parseResponse(jobView, await fetch(`${cluster.url}/v1/jobs/${id}`))).progress.done));
  return { images: done.reduce((sum, count) => sum + count, 0), downloadedBytes };
}

/**
 * The same photos sent as `dips submit` sends them (one upload session per job, through the CLI's own
 * code), followed and downloaded into `outDir`: the master's share of the upload path.
 */
export async function runSessionBatch(cluster: LocalCluster, jobs: ReadonlyArray<readonly string[]>, options: StorageBatchOptions, outDir: string): Promise<StorageBatchRun> {
  const states = await Promise.all(
    jobs.map((files, job) =>
      submitFiles(new MasterClient(cluster.url, {}), [...files], {
        pipeline: JSON.stringify(options.pipeline),
        format: options.format,
        quality: String(options.quality),
        out: path.join(outDir, `job-${job}`),
        progress: false,
        quiet: true,
      }),
    ),
  );
  const failed = states.filter((state) => state.status !== 'succeeded');
  if (failed.length > 0) throw new Error(`session jobs ended ${failed.map((state) => `${state.id} ${state.status}`).join(', ')}`);
  let downloadedBytes = 0;
  for (const [job] of jobs.entries()) {
    for (const name of await fs.readdir(path.join(outDir, `job-${job}`))) downloadedBytes += (await fs.stat(path.join(outDir, `job-${job}`, name))).size;
  }
  return { images: states.reduce((sum, state) => sum + processedCount(state), 0), downloadedBytes };
}

/** A cluster whose master may read the given roots; S3 mode when `s3` is given. */
async function withStorageCluster<T>(
  options: { dataDir: string; workers: number; sources: string; s3Env?: Record<string, string>; nodeArgs?: string[] },
  work: (cluster: LocalCluster) => Promise<T>,
): Promise<T> {
  const cluster = await startLocalCluster({
    workers: options.workers,
    dataDir: options.dataDir,
    env: { DIPS_SOURCES: options.sources, ...options.s3Env },
    ...(options.nodeArgs ? { nodeArgs: options.nodeArgs } : {}),
  });
  try {
    return await work(cluster);
  } finally {
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const { sustainedBatch, warmedUp } = await import('./images.js');
  const mode = process.argv[2] === 's3' ? 's3' : 'local';
  const sessions = process.argv.includes('--sessions');
  const profileAt = process.argv.indexOf('--cpu-prof');
  const nodeArgs = profileAt > 0 ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(process.argv[profileAt + 1]!)] : undefined;
  const { jobs, warmUp: warm } = await sustainedBatch();
  const tmp = await scratchDir('storage-');
  const options = { pipeline: [{ op: 'blur', sigma: 2 }], format: 'jpeg', quality: 90 };
  const s3 = mode === 's3' ? await startS3Server('dips-bench') : undefined;
  try {
    const [warmFolders, folders] = sessions
      ? [[], []]
      : s3
        ? [await stageS3(s3, 'warm', warm), await stageS3(s3, 'in', jobs)]
        : [await stageLocal(path.join(tmp, 'warm'), warm), await stageLocal(path.join(tmp, 'in'), jobs)];
    const batch = (cluster: LocalCluster, warmUp: number | undefined) =>
      sessions
        ? runSessionBatch(cluster, warmUp === undefined ? jobs : warm, options, path.join(tmp, warmUp === undefined ? 'out' : `out-warm-${warmUp}`))
        : runStorageBatch(cluster, warmUp === undefined ? folders : warmFolders, options);
    const sources = s3 ? `s3://${s3.bucket}/` : `file://${tmp}/`;
    const dataDir = path.join(tmp, 'data');
    await fs.mkdir(dataDir, { recursive: true });
    await withStorageCluster({ dataDir, workers: 2, sources, ...(s3 ? { s3Env: s3.env } : {}), ...(nodeArgs ? { nodeArgs } : {}) }, async (cluster) => {
      await warmedUp((round) => batch(cluster, round));
      let run: StorageBatchRun | undefined;
      const counters = await countersAround(await cluster.pids(), async () => (run = await batch(cluster, undefined)));
      const { images, downloadedBytes } = run!;
      process.stdout.write(
        `${JSON.stringify({ mode: sessions ? `${mode} sessions` : mode, images, ...counters, masterCpuMsPerImage: counters.masterCpuMs / images, masterKiBPerImage: counters.masterBytes / images / 1024, downloadedKiBPerImage: downloadedBytes / images / 1024 })}\n`,
      );
    });
  } finally {
    await s3?.close();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) await main();
