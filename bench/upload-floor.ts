import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { uploadSession } from '../services/protocol/uploads.js';
import { exitWithMasterImport } from '../services/shared/child-processes.js';
import { startLocalCluster, type LocalCluster } from './cluster.js';
import { processCounters } from './proc.js';
import { scratchDir } from './scratch.js';

/*
 * What receiving an upload costs any Node process here, against what it costs the storage service: the
 * same files PUT to an upload session's signed URLs (local disk: the storage service `dips up` starts)
 * and to a bare node:http server in its own process that streams each body into a file and renames it
 * (no routing, no signature, no limits). The two are measured in alternating rounds, so both see the
 * same state of this shared machine; the master's CPU during the signed PUTs shows that it takes none.
 *   npm run build && node dist/bench/upload-floor.js
 */

/** Files per round: one upload session's worth at the master's default DIPS_MAX_FILES. */
const filesPerRound = 100;
/** Rounds per side, alternating; the first of each side warms it up and is not counted. */
const rounds = 4;
/** PUTs in flight, as `dips submit` sends them. */
const inFlight = 4;

export interface UploadFloor {
  /** Storage service CPU per file received through a signed URL, ms. */
  storageMs: number;
  /** Master CPU per file meanwhile, ms: the bytes do not pass it. */
  masterMs: number;
  /** CPU of the bare server per file, ms: what a Node process pays to take the bytes at all. */
  bareMs: number;
  files: number;
  bytesPerFile: number;
}

const agent = new http.Agent({ keepAlive: true });

function put(url: URL, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'PUT', agent, headers: { 'content-length': body.length } }, (response) => {
      response.resume();
      response.once('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`PUT ${url.pathname} answered ${response.statusCode}`))));
    });
    request.once('error', reject);
    request.end(body);
  });
}

async function putAll(urls: readonly URL[], bodies: readonly Buffer[]): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < urls.length) {
        const at = next++;
        await put(urls[at]!, bodies[at]!);
      }
    }),
  );
}

/** CPU (ms) that each of `pids` spent while `work` ran. */
async function cpuOf(pids: number[], work: () => Promise<void>): Promise<number[]> {
  const before = await Promise.all(pids.map(processCounters));
  await work();
  const after = await Promise.all(pids.map(processCounters));
  return after.map((counters, at) => counters.cpuMs - before[at]!.cpuMs);
}

/** One session's signed URLs, for these bodies. */
async function sessionUrls(cluster: LocalCluster, bodies: readonly Buffer[]): Promise<URL[]> {
  const response = await fetch(`${cluster.url}/v1/uploads`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ files: bodies.map((body, index) => ({ name: `${index}.jpg`, size: body.length })) }),
  });
  if (response.status !== 201) throw new Error(`POST /v1/uploads answered ${response.status}: ${await response.text()}`);
  return uploadSession.parse(await response.json()).files.map((file) => new URL(file.parts[0]!.url, cluster.url));
}

/** Measures both sides on `files` (cycled to filesPerRound) against a running local-disk cluster. */
export async function uploadFloor(cluster: LocalCluster, files: readonly string[]): Promise<UploadFloor> {
  const photos = await Promise.all(files.map((file) => readFile(file)));
  const bodies = Array.from({ length: filesPerRound }, (_, index) => photos[index % photos.length]!);
  // It stops with this process however that goes (exit-with-master.ts), removing its folder (serve).
  const bare = fork(import.meta.filename, ['serve'], { execArgv: ['--import', exitWithMasterImport], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  try {
    const [port] = (await once(bare, 'message')) as [number];
    const bareUrls = bodies.map((_, index) => new URL(`http://127.0.0.1:${port}/${index}`));
    const { master, storage } = await cluster.pids();
    if (storage === undefined) throw new Error('the upload floor needs a local-disk cluster, which runs a storage service');
    let storageMs = 0;
    let masterMs = 0;
    let bareMs = 0;
    for (let round = 0; round < rounds; round++) {
      const urls = await sessionUrls(cluster, bodies);
      const [storageCpu, masterCpu] = await cpuOf([storage, master], () => putAll(urls, bodies));
      const [plain] = await cpuOf([bare.pid!], () => putAll(bareUrls, bodies));
      if (round === 0) continue;
      storageMs += storageCpu!;
      masterMs += masterCpu!;
      bareMs += plain!;
    }
    const counted = (rounds - 1) * filesPerRound;
    return { storageMs: storageMs / counted, masterMs: masterMs / counted, bareMs: bareMs / counted, files: counted, bytesPerFile: bodies.reduce((sum, body) => sum + body.length, 0) / bodies.length };
  } finally {
    bare.kill();
  }
}

/** The bare server: each PUT's body into a file beside its target, then renamed over it. */
async function serve(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dips-upload-floor-'));
  const server = http.createServer((request, response) => {
    const target = path.join(dir, path.basename(request.url ?? 'file'));
    const partial = `${target}.partial`;
    pipeline(request, createWriteStream(partial))
      .then(() => rename(partial, target))
      .then(
        () => response.end('{}'),
        (error: Error) => {
          response.statusCode = 500;
          response.end(error.message);
        },
      );
  });
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as AddressInfo).port));
  process.once('SIGTERM', () => {
    server.close();
    void rm(dir, { recursive: true, force: true }).then(() => process.exit(0));
  });
}

async function main(): Promise<void> {
  const { sustainedBatch } = await import('./images.js');
  const { photos } = await sustainedBatch();
  const dataDir = await scratchDir('upload-floor-cluster-');
  const cluster = await startLocalCluster({ workers: 1, dataDir });
  try {
    console.log(JSON.stringify(await uploadFloor(cluster, photos)));
  } finally {
    await cluster.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  if (process.argv[2] === 'serve') await serve();
  else await main();
}
