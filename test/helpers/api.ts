import { openAsBlob } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import yauzl from 'yauzl';
import { isTerminalStatus, jobAccepted, jobWithImages, parseResponse, type JobWithImages } from '../../services/protocol/api.js';
import { clusterAnswer, type ClusterAnswer } from '../../services/protocol/newcomer.js';

const corpusDir = process.env.DIPS_CORPUS_DIR ?? path.resolve(import.meta.dirname, '../fixtures/corpus');
/** A photograph of the repository's test corpus (test/fixtures/corpus, or DIPS_CORPUS_DIR). */
export const corpus = (name: string): string => path.join(corpusDir, name);

const auth = (token?: string): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

/** POST /v1/jobs with files from disk (or in-memory parts), as a client would. */
export async function postJob(
  baseUrl: string,
  images: Array<string | { name: string; data: Buffer }>,
  fields: Record<string, string>,
  token?: string,
): Promise<Response> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.set(name, value);
  for (const image of images) {
    if (typeof image === 'string') form.append('images', await openAsBlob(image), path.basename(image));
    else form.append('images', new Blob([new Uint8Array(image.data)]), image.name);
  }
  return fetch(`${baseUrl}/v1/jobs`, { method: 'POST', body: form, headers: auth(token) });
}

export async function submit(baseUrl: string, images: Array<string | { name: string; data: Buffer }>, fields: Record<string, string>, token?: string): Promise<string> {
  const response = await postJob(baseUrl, images, fields, token);
  if (response.status !== 202) throw new Error(`POST /v1/jobs answered ${response.status}: ${await response.text()}`);
  return (await parseResponse(jobAccepted, response)).id;
}

export async function getJob(baseUrl: string, id: string, token?: string): Promise<JobWithImages> {
  const response = await fetch(`${baseUrl}/v1/jobs/${id}`, { headers: auth(token) });
  if (!response.ok) throw new Error(`GET /v1/jobs/${id} answered ${response.status}`);
  return parseResponse(jobWithImages, response);
}

/** GET /v1/cluster, read through its protocol schema. */
export async function getCluster(baseUrl: string, token?: string): Promise<ClusterAnswer> {
  const response = await fetch(`${baseUrl}/v1/cluster`, { headers: auth(token) });
  if (!response.ok) throw new Error(`GET /v1/cluster answered ${response.status}`);
  return parseResponse(clusterAnswer, response);
}

/** Polls until the condition holds; fails with the last value seen when it never does. */
export async function waitUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 60_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    try {
      last = await read();
      if (done(last)) return last;
    } catch {
      // the process may be restarting; try again
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(last)}`);
}

/** Polls /v1/cluster until the worker at `address` is in the state (or, for 'busy', ready and holding work). */
export async function waitForWorker(masterUrl: string, address: string, state: 'busy' | 'dead' | 'ready', timeoutMs = 30_000): Promise<void> {
  await waitUntil(
    async () => (await getCluster(masterUrl)).workers,
    (workers) => workers.some((w) => w.address === address && (state === 'busy' ? w.state === 'ready' && w.inflight > 0 : w.state === state)),
    timeoutMs,
    `worker ${address} to be ${state}`,
  );
}

export function waitForJob(baseUrl: string, id: string, token?: string, timeoutMs = 90_000): Promise<JobWithImages> {
  return waitUntil(() => getJob(baseUrl, id, token), (job) => isTerminalStatus(job.status), timeoutMs, `job ${id} to finish`);
}

export async function download(baseUrl: string, id: string, index: number, token?: string): Promise<Buffer> {
  const response = await fetch(`${baseUrl}/v1/jobs/${id}/images/${index}`, { headers: auth(token) });
  if (!response.ok) throw new Error(`GET image ${index} of ${id} answered ${response.status}: ${await response.text()}`);
  return Buffer.from(await response.arrayBuffer());
}

/** Decoded pixels and layout, for exact comparison of two encoded images. */
export async function pixelsOf(image: Buffer | string) {
  const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: info.channels, data };
}

/** Mean absolute difference of two equally long sample buffers: 0 when identical, 255 at most. */
export function meanDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`cannot compare ${a.length} samples with ${b.length}`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

export async function metric(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const values = text
    .split('\n')
    .filter((line) => line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{'))
    .map((line) => Number(line.split(' ').pop()));
  return values.reduce((sum, value) => sum + value, 0);
}

/** The entries of a zip (GET /v1/jobs/{id}/archive), by file name. */
export function unzip(zip: Buffer): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true }, (error, file) => {
      if (error) return reject(error);
      const entries = new Map<string, Buffer>();
      file.on('entry', (entry: yauzl.Entry) => {
        file.openReadStream(entry, (streamError, stream) => {
          if (streamError) return reject(streamError);
          const chunks: Buffer[] = [];
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('end', () => {
            entries.set(entry.fileName, Buffer.concat(chunks));
            file.readEntry();
          });
        });
      });
      file.on('end', () => resolve(entries));
      file.on('error', reject);
      file.readEntry();
    });
  });
}
