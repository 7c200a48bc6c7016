/**
 * One very large image (a 10000x10000 JPEG mosaic of corpus photos), blur σ2, JPEG q90 out: DIPS
 * (`dips up --workers <cores>`, upload, run, download) against plain sharp with the same JPEG settings,
 * each plain run in a process of its own (bench/plain-sharp-huge.ts). Part of `npm run bench`; alone,
 * `node dist/bench/huge-image.js [ROUNDS]` runs plain sharp and DIPS alternately ROUNDS times on one
 * cluster and prints one JSON line per round (wall, CPU of plain sharp, the master and each worker, the
 * units' round trips) for before/after comparisons.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import type { LocalCluster } from './cluster.js';
import { peakRss } from './proc.js';
import { runJob, withCluster } from './dips-job.js';
import { photoMosaic } from './images.js';
import { processCounters } from './proc.js';

const execFileAsync = promisify(execFile);
const outDir = path.resolve(import.meta.dirname, '../../bench/out');

interface PlainRun {
  seconds: number;
  cpuSeconds: number;
  peakBytes: number;
  threads: number;
}

export interface HugeResult {
  megapixels: number;
  plainSeconds: number;
  plainCpuSeconds: number;
  /** Plain sharp with DIPS' JPEG setting (no Huffman optimisation, which sharp does by default): the same encoder work on both sides. */
  plainUnoptimised: { seconds: number; cpuSeconds: number; peakBytes: number };
  /** libvips threads per image (sharp.concurrency()), the same in plain sharp's process and in each worker. */
  threads: number;
  dipsSeconds: number;
  /** CPU of the master and of the workers together over the DIPS run. */
  masterCpuSeconds: number;
  workerCpuSeconds: number;
  plainPeak: number;
  masterPeak: number;
  workerPeaks: number[];
  /** Units of each kind (tile, encode; decode when the first stage cannot decode its own rows): how many, and the seconds the master waited on them, summed. */
  phases: Phases;
}

type Phases = Record<string, { units: number; seconds: number }>;

/** Counts and sums of dips_unit_roundtrip_seconds by unit kind, from the master's /metrics. */
async function unitSeconds(masterUrl: string): Promise<Phases> {
  const text = await (await fetch(`${masterUrl}/metrics`)).text();
  const phases: Phases = {};
  for (const [, field, kind, value] of text.matchAll(/^dips_unit_roundtrip_seconds_(sum|count)\{kind="(\w+)"\} ([\d.e+-]+)$/gm)) {
    const phase = (phases[kind!] ??= { units: 0, seconds: 0 });
    if (field === 'sum') phase.seconds = Number(value);
    else phase.units = Number(value);
  }
  return phases;
}

const mosaic = () => photoMosaic({ file: path.join(outDir, 'mosaic-100mp.jpg'), columns: 8, rows: 10, cellWidth: 1250, cellHeight: 1000 });

async function plainRun(file: string, optimise: boolean): Promise<PlainRun> {
  const script = path.join(import.meta.dirname, 'plain-sharp-huge.js');
  const { stdout } = await execFileAsync(process.execPath, [script, file, path.join(outDir, 'plain-100mp-out.jpg'), '2', String(optimise)]);
  return JSON.parse(stdout) as PlainRun;
}

/** One DIPS job of the image on the cluster: wall time, CPU of the master and each worker, units' round trips (this job's). */
async function dipsRun(cluster: LocalCluster, file: string) {
  const pids = await cluster.pids();
  const processes = [pids.master, ...pids.workers];
  const phasesBefore = await unitSeconds(cluster.url);
  const before = await Promise.all(processes.map(processCounters));
  const start = performance.now();
  await runJob(cluster.url, [file]);
  const seconds = (performance.now() - start) / 1000;
  const after = await Promise.all(processes.map(processCounters));
  const cpu = after.map((counters, index) => (counters.cpuMs - before[index]!.cpuMs) / 1000);
  const phases: Phases = {};
  for (const [kind, { units, seconds: sum }] of Object.entries(await unitSeconds(cluster.url))) {
    phases[kind] = { units: units - (phasesBefore[kind]?.units ?? 0), seconds: sum - (phasesBefore[kind]?.seconds ?? 0) };
  }
  return { seconds, masterCpuSeconds: cpu[0]!, workersCpuSeconds: cpu.slice(1), phases, pids };
}

const clusterEnv = { DIPS_MAX_PIXELS: String(200_000_000) };

/** About 100 MP, blur: wall time and CPU against plain sharp on the whole image, and peak memory per process. */
export async function hugeImage(): Promise<HugeResult> {
  const file = await mosaic();
  const plain = await plainRun(file, true);
  const plainUnoptimised = await plainRun(file, false);
  return withCluster(clusterEnv, async (cluster) => {
    // A running cluster, as the batches measure one (bench/images.ts): the same job once first, outside the measurement.
    await runJob(cluster.url, [file]);
    const run = await dipsRun(cluster, file);
    const { width, height } = await sharp(file).metadata();
    return {
      megapixels: (width! * height!) / 1e6,
      plainSeconds: plain.seconds,
      plainCpuSeconds: plain.cpuSeconds,
      plainUnoptimised,
      threads: plain.threads,
      dipsSeconds: run.seconds,
      masterCpuSeconds: run.masterCpuSeconds,
      workerCpuSeconds: run.workersCpuSeconds.reduce((sum, cpu) => sum + cpu, 0),
      plainPeak: plain.peakBytes,
      masterPeak: await peakRss(run.pids.master),
      workerPeaks: await Promise.all(run.pids.workers.map(peakRss)),
      phases: run.phases,
    };
  });
}

/** Alternating rounds on one cluster, one JSON line each (peaks are the processes' highest so far). */
async function rounds(count: number): Promise<void> {
  const file = await mosaic();
  await withCluster(clusterEnv, async (cluster) => {
    for (let round = 1; round <= count; round++) {
      const plain = await plainRun(file, false);
      const dips = await dipsRun(cluster, file);
      const r = (value: number) => Math.round(value * 1000) / 1000;
      const line = {
        round,
        plainSeconds: r(plain.seconds),
        plainCpuSeconds: r(plain.cpuSeconds),
        dipsSeconds: r(dips.seconds),
        ratio: r(dips.seconds / plain.seconds),
        masterCpuSeconds: r(dips.masterCpuSeconds),
        workersCpuSeconds: dips.workersCpuSeconds.map(r),
        phases: Object.fromEntries(Object.entries(dips.phases).map(([kind, phase]) => [kind, { units: phase.units, seconds: r(phase.seconds) }])),
        masterPeakMiB: Math.round((await peakRss(dips.pids.master)) / 2 ** 20),
        workerPeaksMiB: (await Promise.all(dips.pids.workers.map(peakRss))).map((bytes) => Math.round(bytes / 2 ** 20)),
      };
      console.log(JSON.stringify(line));
    }
  });
}

if (process.argv[1] === import.meta.filename) await rounds(Number(process.argv[2] ?? 3));
