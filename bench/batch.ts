import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { startLocalCluster } from './cluster.js';
import { peakRss } from './proc.js';
import { processCounters } from './proc.js';
import { isTerminalStatus, jobView, parseResponse } from '../services/protocol/api.js';
import { batchAccepted } from '../services/protocol/batch.js';
import { scratchDir } from './scratch.js';

/*
 * Batch jobs at scale: images/s and peak memory of master and workers for a file:// job of N small
 * synthetic images, for each N given (default 1,000 and 100,000), each on a fresh `dips up --workers 2`,
 * with the master's CPU and bytes (rchar + wchar: sockets, files, SQLite) per item.
 *   npm run build && node dist/bench/batch.js [N ...]
 * Workers on the master's machine read and write the files themselves; DIPS_WORKER_FILE_ACCESS=off in
 * the environment makes them go through the master, as workers on other machines do.
 */

/** Files per folder: a realistic layout, and no single directory of 100,000 entries. */
const perFolder = 1000;
/** Distinct 32x32 PNGs the inputs cycle through (decoding cost is what matters, not variety). */
const distinctImages = 16;
const pollMs = 1000;

async function writeInputs(dir: string, count: number): Promise<void> {
  const images = await Promise.all(
    Array.from({ length: distinctImages }, (_, n) => sharp({ create: { width: 32, height: 32, channels: 3, background: { r: n * 16, g: 128, b: 255 - n * 16 } } }).png().toBuffer()),
  );
  for (let folder = 0; folder * perFolder < count; folder++) {
    const sub = path.join(dir, `f${folder}`);
    await fs.mkdir(sub, { recursive: true });
    const files = Math.min(perFolder, count - folder * perFolder);
    await Promise.all(Array.from({ length: files }, (_, n) => fs.writeFile(path.join(sub, `img-${n}.png`), images[n % distinctImages]!)));
  }
}

async function runOne(count: number) {
  const tmp = await scratchDir(`batch-${count}-`);
  const sources = path.join(tmp, 'in');
  const destinations = path.join(tmp, 'out');
  const dataDir = path.join(tmp, 'data');
  await fs.mkdir(dataDir, { recursive: true });
  await writeInputs(sources, count);
  const cluster = await startLocalCluster({
    workers: 2,
    dataDir,
    env: { DIPS_SOURCES: `file://${sources}`, DIPS_DESTINATIONS: `file://${destinations}`, DIPS_LOG_LEVEL: 'warn' },
  });
  try {
    const started = performance.now();
    const response = await fetch(`${cluster.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pipeline: [{ op: 'invert' }], inputs: { prefix: `file://${sources}` }, output: { prefix: `file://${destinations}`, format: 'png' } }),
    });
    if (response.status !== 202) throw new Error(`POST /v1/jobs answered ${response.status}: ${await response.text()}`);
    const { id } = await parseResponse(batchAccepted, response);
    const { master, workers } = await cluster.pids();
    const before = await Promise.all([master, ...workers].map(processCounters));
    let job;
    for (;;) {
      job = await parseResponse(jobView, await fetch(`${cluster.url}/v1/jobs/${id}`));
      if (isTerminalStatus(job.status)) break;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
    const seconds = (performance.now() - started) / 1000;
    const after = await Promise.all([master, ...workers].map(processCounters));
    const result = {
      items: count,
      status: job.status,
      done: job.progress.done,
      failed: job.progress.failed,
      seconds,
      imagesPerSecond: job.progress.done / seconds,
      masterPeakMiB: (await peakRss(master)) / 2 ** 20,
      workerPeakMiB: await Promise.all(workers.map(async (pid) => (await peakRss(pid)) / 2 ** 20)),
      masterCpuSeconds: (after[0]!.cpuMs - before[0]!.cpuMs) / 1000,
      masterCpuMsPerItem: (after[0]!.cpuMs - before[0]!.cpuMs) / count,
      masterKiBPerItem: (after[0]!.ioBytes - before[0]!.ioBytes) / count / 1024,
      workerCpuSeconds: after.slice(1).map((counters, n) => (counters.cpuMs - before[n + 1]!.cpuMs) / 1000),
    };
    return result;
  } finally {
    await cluster.stop();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

const sizes = process.argv.slice(2).map(Number);
const runs = [];
for (const count of sizes.length > 0 ? sizes : [1000, 100_000]) {
  const result = await runOne(count);
  runs.push(result);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
process.stdout.write(
  `\n| items | status | wall s | images/s | master peak MiB | worker peak MiB | master CPU s | master CPU ms/item | master KiB/item | worker CPU s |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n`,
);
for (const run of runs) {
  process.stdout.write(
    `| ${run.items} | ${run.status} | ${run.seconds.toFixed(1)} | ${run.imagesPerSecond.toFixed(1)} | ${run.masterPeakMiB.toFixed(0)} | ${run.workerPeakMiB.map((mib) => mib.toFixed(0)).join(', ')} | ${run.masterCpuSeconds.toFixed(1)} | ${run.masterCpuMsPerItem.toFixed(2)} | ${run.masterKiBPerItem.toFixed(2)} | ${run.workerCpuSeconds.map((s) => s.toFixed(1)).join(', ')} |\n`,
  );
}
