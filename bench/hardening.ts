/**
 * Hardening figures (issue #17), on loopback against `dips up --workers 2`:
 * 1. SSE fan-out: a 100-image job alone, then with 500 subscribers on its event stream: job time,
 *    master CPU (from /proc), /healthz latency while it runs, bytes sent to the subscribers.
 * 2. Slowloris: how long a client dripping one header byte every 200 ms keeps its connection.
 * 3. The master's memory with 10,000 idle keep-alive connections, and /healthz latency meanwhile.
 * Every loop is bounded and stops by itself. `npm run build && node dist/bench/hardening.js`
 * (HARDENING_RUNS: alternating runs of each fan-out case, default 2).
 */
import { readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { startLocalCluster } from './cluster.js';
import { jobAccepted, jobView, parseResponse, type JobView } from '../services/protocol/api.js';
import { scratchDir } from './scratch.js';

const corpusDir = path.resolve(import.meta.dirname, '../../test/fixtures/corpus');
const subscribers = 500;
const idleConnections = 10_000;
const runs = Number(process.env.HARDENING_RUNS ?? 2);
const clockTicks = 100; // USER_HZ on Linux

/** 100 small JPEGs cut from the corpus photos (160 px wide): the job of the issue's probe. */
async function images(): Promise<Blob[]> {
  const names = ['aqua.jpg', 'storm.jpg', 'wood.jpg', 'ladybird.jpg', 'freshflower.jpg'];
  const photos = await Promise.all(names.map((name) => sharp(path.join(corpusDir, name)).resize(160).jpeg().toBuffer()));
  return Array.from({ length: 100 }, (_, i) => new Blob([new Uint8Array(photos[i % photos.length]!)], { type: 'image/jpeg' }));
}

async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks; // utime + stime
}

async function rssBytes(pid: number): Promise<number> {
  const match = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) * 1024;
}

/** Samples GET /healthz every 25 ms until stopped; resolves to the worst latency seen (ms). */
function watchHealth(url: string): { stop(): Promise<number> } {
  let running = true;
  let worst = 0;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      await fetch(`${url}/healthz`).then((response) => response.arrayBuffer()).catch(() => undefined);
      worst = Math.max(worst, performance.now() - started);
      await sleep(25);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return worst;
    },
  };
}

/** One SSE subscriber: counts bytes until the stream ends; resolves whether it saw the final state. */
function subscribe(url: string, id: string, counter: { bytes: number }): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get(`${url}/v1/jobs/${id}/events`, { agent: false }, (response) => {
      let tail = '';
      response.on('data', (chunk: Buffer) => {
        counter.bytes += chunk.length;
        tail = (tail + chunk.toString()).slice(-4096);
      });
      response.on('end', () => resolve(/"status":"(succeeded|failed|partial)"/.test(tail)));
      response.on('error', () => resolve(false));
    });
    request.on('error', () => resolve(false));
  });
}

async function fanOutRun(url: string, pid: number, files: Blob[], withSubscribers: boolean) {
  const form = new FormData();
  form.set('pipeline', JSON.stringify([{ op: 'invert' }]));
  files.forEach((file, i) => form.append('images', file, `img-${i}.jpg`));
  const health = watchHealth(url);
  const cpuBefore = await cpuSeconds(pid);
  const { id } = await parseResponse(jobAccepted, await fetch(`${url}/v1/jobs`, { method: 'POST', body: form }));
  const counter = { bytes: 0 };
  const streams = withSubscribers ? Array.from({ length: subscribers }, () => subscribe(url, id, counter)) : [];
  let job: JobView;
  for (let polls = 0; ; polls++) {
    job = await parseResponse(jobView, await fetch(`${url}/v1/jobs/${id}`));
    if (job.finishedAt || polls > 2_400) break; // at most 2 minutes
    await sleep(50);
  }
  const sawEnd = (await Promise.all(streams)).filter(Boolean).length;
  const cpu = (await cpuSeconds(pid)) - cpuBefore;
  const worstHealthMs = await health.stop();
  const jobSeconds = (Date.parse(job.finishedAt!) - Date.parse(job.createdAt)) / 1000;
  return { jobSeconds, cpu, worstHealthMs, bytes: counter.bytes, sawEnd };
}

/** Seconds until the master cuts a client that sends one header byte every 200 ms (bounded at 60 s). */
async function slowloris(url: string): Promise<number> {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  const started = performance.now();
  socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  const drip = setInterval(() => socket.writable && socket.write('X'), 200);
  await Promise.race([new Promise((resolve) => socket.once('close', resolve)), sleep(60_000)]);
  clearInterval(drip);
  socket.destroy();
  return (performance.now() - started) / 1000;
}

/**
 * Opens keep-alive connections that each make one request and then stay idle (the master holds them
 * for its 65 s keep-alive), then reads the master's memory and /healthz latency. Connections that never
 * send anything are closed at the header timeout (test/hardening/connections.test.ts).
 */
async function idle(url: string, pid: number) {
  const { port } = new URL(url);
  const before = await rssBytes(pid);
  const sockets: net.Socket[] = [];
  const answered = (socket: net.Socket) =>
    new Promise<void>((resolve) => {
      socket.once('data', () => resolve());
      socket.once('close', () => resolve());
    });
  for (let batch = 0; batch < idleConnections / 500; batch++) {
    const opened = Array.from({ length: 500 }, () => {
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
      socket.on('error', () => undefined);
      sockets.push(socket);
      return answered(socket);
    });
    await Promise.all(opened);
  }
  const open = sockets.filter((socket) => !socket.destroyed && socket.readyState === 'open').length;
  const during = await rssBytes(pid);
  const health = watchHealth(url);
  await sleep(2_000);
  const worstHealthMs = await health.stop();
  for (const socket of sockets) socket.destroy();
  return { before, during, open, worstHealthMs };
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

async function main(): Promise<void> {
  const dataDir = await scratchDir('hardening-');
  const cluster = await startLocalCluster({ workers: 2, dataDir, env: { DIPS_LOG_LEVEL: 'warn', DIPS_MAX_CONNECTIONS: String(idleConnections + 200) } });
  try {
    const { master } = await cluster.pids();
    const files = await images();
    await fanOutRun(cluster.url, master, files, false); // warm-up
    const results: Record<'alone' | 'subscribed', Array<Awaited<ReturnType<typeof fanOutRun>>>> = { alone: [], subscribed: [] };
    for (let run = 0; run < runs; run++) {
      results.alone.push(await fanOutRun(cluster.url, master, files, false));
      results.subscribed.push(await fanOutRun(cluster.url, master, files, true));
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    console.log(`## SSE fan-out: 100-image job (160 px JPEGs, invert), 2 workers, ${runs} alternating runs, medians`);
    console.log('| case | job time | master CPU | worst /healthz | bytes to subscribers | subscribers that saw the end |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const [name, list] of Object.entries(results)) {
      console.log(
        `| ${name === 'alone' ? 'no subscriber' : `${subscribers} subscribers`} | ${median(list.map((r) => r.jobSeconds)).toFixed(2)} s | ${median(list.map((r) => r.cpu)).toFixed(2)} s | ${median(list.map((r) => r.worstHealthMs)).toFixed(0)} ms | ${(median(list.map((r) => r.bytes)) / 1e6).toFixed(1)} MB | ${median(list.map((r) => r.sawEnd))} |`,
      );
    }
    const added = median(results.subscribed.map((r) => r.jobSeconds)) / median(results.alone.map((r) => r.jobSeconds)) - 1;
    console.log(`\njob time added by ${subscribers} subscribers: ${(added * 100).toFixed(0)} %`);
    console.log(`\n## Slowloris (one header byte per 200 ms): cut after ${(await slowloris(cluster.url)).toFixed(1)} s (headers timeout 10 s)`);
    const held = await idle(cluster.url, master);
    console.log(`\n## ${idleConnections} idle keep-alive connections (one request each): ${held.open} open; master RSS ${mib(held.before)} before, ${mib(held.during)} with them (${((held.during - held.before) / held.open / 1024).toFixed(1)} KiB each); worst /healthz meanwhile ${held.worstHealthMs.toFixed(0)} ms`);
  } finally {
    await cluster.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
