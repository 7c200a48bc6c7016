import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, createWriteStream, openAsBlob } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileStreamBytes } from '../services/shared/file-streams.js';
import { hugeMosaic } from './huge-image.js';
import { scratchDir } from './scratch.js';

/*
 * What services/shared/file-streams.ts's size saves on a large file (the 100 MP mosaic, 11.7 MB) against
 * Node's defaults, in alternating rounds on loopback, CPU from process.cpuUsage on each side:
 * - a PUT as the CLI sends an upload (a Blob, or a stream of fileStreamBytes reads) to a server in another
 *   process that writes it to a file (with Node's 16 KiB write buffer, or fileStreamBytes), as the
 *   storage service takes it;
 * - a GET written to a file as the CLI saves a download (16 KiB, or fileStreamBytes).
 *   npm run build && node dist/bench/file-streams.js [ROUNDS]
 */

/** The receiving side, in its own process: PUT /small or /large writes the body with that buffer; GET serves the file. */
function serve(file: string, dir: string): void {
  let saved = 0;
  const server = http.createServer((req, res) => {
    void (async () => {
      if (req.method === 'GET') {
        res.setHeader('content-length', (await stat(file)).size);
        await pipeline(createReadStream(file, { highWaterMark: fileStreamBytes }), res);
        return;
      }
      const cpu = process.cpuUsage();
      const target = path.join(dir, `put-${saved++}`);
      await pipeline(req, createWriteStream(target, req.url === '/large' ? { highWaterMark: fileStreamBytes } : {}));
      await rm(target);
      const used = process.cpuUsage(cpu);
      res.end(String((used.user + used.system) / 1000));
    })();
  });
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as AddressInfo).port));
}

async function measure(rounds: number): Promise<void> {
  const file = await hugeMosaic();
  const { size } = await stat(file);
  const dir = await scratchDir('file-streams-');
  const server = fork(import.meta.filename, ['--serve', file, dir]);
  const [port] = (await once(server, 'message')) as [number];
  const url = `http://127.0.0.1:${port}`;
  const blob = await openAsBlob(file);
  const put = async (body: 'blob' | 'stream', server: 'small' | 'large') => {
    const response = await fetch(`${url}/${server}`, {
      method: 'PUT',
      headers: { 'content-length': String(size) },
      ...(body === 'blob' ? { body: blob } : { body: Readable.toWeb(createReadStream(file, { highWaterMark: fileStreamBytes })) as ReadableStream, duplex: 'half' }),
    });
    return Number(await response.text());
  };
  const get = async (buffer: 'small' | 'large') => {
    const response = await fetch(`${url}/`);
    const target = path.join(dir, 'got');
    await pipeline(Readable.fromWeb(response.body! as import('node:stream/web').ReadableStream), createWriteStream(target, buffer === 'large' ? { highWaterMark: fileStreamBytes } : {}));
    await rm(target);
  };
  const sides = {
    'PUT, Blob, server 16 KiB': () => put('blob', 'small'),
    'PUT, Blob, server 1 MiB': () => put('blob', 'large'),
    'PUT, 1 MiB reads, server 16 KiB': () => put('stream', 'small'),
    'PUT, 1 MiB reads, server 1 MiB': () => put('stream', 'large'),
    'GET, written with 16 KiB': () => get('small'),
    'GET, written with 1 MiB': () => get('large'),
  };
  const figures = new Map<string, Array<{ ms: number; clientCpuMs: number; serverCpuMs?: number }>>();
  try {
    for (let round = 0; round <= rounds; round++) {
      for (const [name, run] of Object.entries(sides)) {
        const cpu = process.cpuUsage();
        const start = performance.now();
        const serverCpuMs = await run();
        const used = process.cpuUsage(cpu);
        // Round 0 warms both sides up and is not counted.
        if (round > 0) figures.set(name, [...(figures.get(name) ?? []), { ms: performance.now() - start, clientCpuMs: (used.user + used.system) / 1000, ...(typeof serverCpuMs === 'number' ? { serverCpuMs } : {}) }]);
      }
    }
  } finally {
    server.kill();
    await rm(dir, { recursive: true, force: true });
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  console.log(`${(size / 1e6).toFixed(1)} MB, ${rounds} rounds each, medians:`);
  for (const [name, runs] of figures) {
    const server = runs[0]!.serverCpuMs === undefined ? '' : `, server CPU ${median(runs.map((run) => run.serverCpuMs!)).toFixed(1)} ms`;
    console.log(`${name.padEnd(34)} ${median(runs.map((run) => run.ms)).toFixed(0).padStart(4)} ms, client CPU ${median(runs.map((run) => run.clientCpuMs)).toFixed(1)} ms${server}`);
  }
}

if (process.argv[2] === '--serve') serve(process.argv[3]!, process.argv[4]!);
else if (process.argv[1] === import.meta.filename) await measure(Number(process.argv[2] ?? 20));
