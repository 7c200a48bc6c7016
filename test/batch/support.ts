import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import { createInterface } from 'node:readline';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import { isTerminalStatus, jobView, parseResponse } from '../../services/protocol/api.js';
import { batchAccepted, itemsPage, type ItemView } from '../../services/protocol/batch.js';
import { waitUntil } from '../helpers/api.js';

/** A job as GET /v1/jobs/{id} shows it to a batch client. */
/** A batch job's view (GET /v1/jobs/{id}): its images listed up to 1,000 items. */
const batchJob = jobView.required({ kind: true });
export type BatchJob = z.infer<typeof batchJob>;

export const finished = (job: BatchJob) => isTerminalStatus(job.status);

export async function tempDir(name: string): Promise<string> {
  return fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), `dips-${name}-`)));
}

/** A tiny PNG whose colour encodes its number, so each output can be traced to its input. */
export function colourOf(n: number): { r: number; g: number; b: number } {
  return { r: n % 256, g: Math.floor(n / 256) % 256, b: 200 };
}

/** Writes `count` 32x32 PNGs as dir/<sub>/img-<n>.png, `perFolder` to a folder. Returns their relative paths. */
export async function writeImages(dir: string, count: number, perFolder = 500): Promise<string[]> {
  const names: string[] = [];
  for (let n = 0; n < count; n++) {
    const name = `set-${Math.floor(n / perFolder)}/img-${n}.png`;
    names.push(name);
  }
  const folders = new Set(names.map((name) => path.dirname(name)));
  for (const folder of folders) await fs.mkdir(path.join(dir, folder), { recursive: true });
  // Each PNG differs only in colour: encode once per colour, a few at a time.
  for (let start = 0; start < count; start += 64) {
    await Promise.all(
      names.slice(start, start + 64).map(async (name, offset) => {
        const data = await sharp({ create: { width: 32, height: 32, channels: 3, background: colourOf(start + offset) } }).png().toBuffer();
        await fs.writeFile(path.join(dir, name), data);
      }),
    );
  }
  return names;
}

export async function postBatch(masterUrl: string, body: unknown): Promise<Response> {
  return fetch(`${masterUrl}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

export async function submitBatch(masterUrl: string, body: unknown): Promise<z.infer<typeof batchAccepted>> {
  const response = await postBatch(masterUrl, body);
  if (response.status !== 202) throw new Error(`POST /v1/jobs answered ${response.status}: ${await response.text()}`);
  return parseResponse(batchAccepted, response);
}

export async function getBatchJob(masterUrl: string, id: string): Promise<BatchJob> {
  const response = await fetch(`${masterUrl}/v1/jobs/${id}`);
  if (!response.ok) throw new Error(`GET /v1/jobs/${id} answered ${response.status}`);
  return parseResponse(batchJob, response);
}

export function waitForBatch(masterUrl: string, id: string, timeoutMs = 120_000): Promise<BatchJob> {
  return waitUntil(() => getBatchJob(masterUrl, id), finished, timeoutMs, `batch job ${id} to finish`);
}

/** Every item of a job, read through /items page by page; also returns how many pages it took. */
export async function allItems(masterUrl: string, id: string, query = '', limit = 500): Promise<{ items: ItemView[]; pages: number }> {
  const items: ItemView[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const response = await fetch(`${masterUrl}/v1/jobs/${id}/items?limit=${limit}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (!response.ok) throw new Error(`/items answered ${response.status}: ${await response.text()}`);
    const page = await parseResponse(itemsPage, response);
    items.push(...page.items);
    cursor = page.next;
    pages += 1;
  } while (cursor);
  return { items, pages };
}

export async function manifestOf(masterUrl: string, id: string): Promise<Array<Record<string, unknown>>> {
  const response = await fetch(`${masterUrl}/v1/jobs/${id}/manifest`);
  if (!response.ok) throw new Error(`/manifest answered ${response.status}`);
  return parseJsonLines(await response.text());
}

export function parseJsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Every file under dir, relative, sorted. */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

/** A real S3-protocol server on loopback (the maintained s3rver) in its own process, keeping its objects in `directory`. */
export async function startS3Server(directory: string, buckets: string[], port = 0): Promise<{ endpoint: string; stop(): void }> {
  const script = path.resolve(import.meta.dirname, 's3-server.mjs');
  const child = spawn(process.execPath, ['--openssl-legacy-provider', script, directory, String(port), ...buckets], { stdio: ['ignore', 'pipe', 'inherit'] });
  const listening = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const found = /listening on [\d.]+:(\d+)/.exec(line)?.[1];
      if (found) resolve(found);
    });
    child.once('exit', (code) => reject(new Error(`the S3 server exited (${code}) before listening`)));
  });
  return { endpoint: `http://127.0.0.1:${listening}`, stop: () => void child.kill('SIGKILL') };
}

/**
 * A response schema of the master's served OpenAPI document (generated from services/protocol/batch.ts),
 * as zod reads it back: answers checked with it are checked against what the master publishes.
 */
export async function servedSchema(masterUrl: string, route: string, method: string, status: string, contentType = 'application/json'): Promise<z.ZodType> {
  const doc = (await (await fetch(`${masterUrl}/v1/openapi.json`)).json()) as { paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, { schema: unknown }> }> }>> };
  return z.fromJSONSchema(doc.paths[route]![method]!.responses[status]!.content[contentType]!.schema as Parameters<typeof z.fromJSONSchema>[0]);
}
