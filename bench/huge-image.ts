/**
 * One very large image (a 10000x10000 JPEG mosaic of corpus photos), blur σ2, JPEG q90 out: DIPS
 * (`dips up --workers <cores>`, upload, run, download) against plain sharp with the same JPEG settings,
 * each plain run in a process of its own (bench/plain-sharp-huge.ts), in rounds as the batch rows are
 * (bench/rounds.ts). Part of `npm run bench`; alone, `node dist/bench/huge-image.js [ROUNDS]` prints one
 * JSON line per round (wall, CPU of plain sharp, the master and each worker, the units' round trips) for
 * before/after comparisons.
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
import { rounds as benchRounds } from './rounds.js';

const execFileAsync = promisify(execFile);
const outDir = path.resolve(import.meta.dirname, '../../bench/out');

interface PlainRun {
  seconds: number;
  cpuSeconds: number;
  peakBytes: number;
  threads: number;
}

/** One round: DIPS, then plain sharp again, against the mean of the plain runs around it. */
export interface HugeRound {
  /** DIPS' wall time over plain sharp's with the same JPEG setting. */
  ratio: number;
  dipsSeconds: number;
  plain: PlainRun;
  masterCpuSeconds: number;
  workerCpuSeconds: number;
  /** Units of each kind (tile, encode; decode when the first stage cannot decode its own rows): how many, and the seconds the master waited on them, summed. */
  phases: Phases;
}

export interface HugeResult {
  megapixels: number;
  /** Plain sharp with its defaults (Huffman optimisation on), once: a comparison, not the goal's measure. */
  plainOptimised: PlainRun;
  /** libvips threads per image (sharp.concurrency()), the same in plain sharp's process and in each worker. */
  threads: number;
  /** The rounds, in the order they ran. */
  rounds: HugeRound[];
  /** The round whose ratio is the median, whose figures the report shows. */
  median: HugeRound;
  /** The processes' highest resident set over every round (VmHWM). */
  masterPeak: number;
  workerPeaks: number[];
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

/** The 100 MP JPEG of the row (made once into bench/out). */
export const hugeMosaic = () => photoMosaic({ file: path.join(outDir, 'mosaic-100mp.jpg'), columns: 8, rows: 10, cellWidth: 1250, cellHeight: 1000 });

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

/**
 * About 100 MP, blur: `count` rounds on one running cluster (the same job once first, outside the
 * measurement, as the batches measure a running master: bench/images.ts), each DIPS against the mean of
 * the plain sharp runs right before and after it; peak memory per process over all of them.
 */
export async function hugeImage(count = benchRounds): Promise<HugeResult> {
  const file = await hugeMosaic();
  const plainOptimised = await plainRun(file, true);
  let before = await plainRun(file, false);
  return withCluster(clusterEnv, async (cluster) => {
    await runJob(cluster.url, [file]);
    const rounds: HugeRound[] = [];
    for (let round = 0; round < count; round++) {
      const dips = await dipsRun(cluster, file);
      const after = await plainRun(file, false);
      const plain = { seconds: (before.seconds + after.seconds) / 2, cpuSeconds: (before.cpuSeconds + after.cpuSeconds) / 2, peakBytes: Math.max(before.peakBytes, after.peakBytes), threads: after.threads };
      const workerCpuSeconds = dips.workersCpuSeconds.reduce((sum, cpu) => sum + cpu, 0);
      rounds.push({ ratio: dips.seconds / plain.seconds, dipsSeconds: dips.seconds, plain, masterCpuSeconds: dips.masterCpuSeconds, workerCpuSeconds, phases: dips.phases });
      console.error(`100 MP round ${round + 1}: sharp ${plain.seconds.toFixed(2)} s, DIPS ${dips.seconds.toFixed(2)} s, ${(dips.seconds / plain.seconds).toFixed(2)}x`);
      before = after;
    }
    const { width, height } = await sharp(file).metadata();
    const pids = await cluster.pids();
    return {
      megapixels: (width! * height!) / 1e6,
      plainOptimised,
      threads: plainOptimised.threads,
      rounds,
      median: [...rounds].sort((a, b) => a.ratio - b.ratio)[Math.floor((rounds.length - 1) / 2)]!,
      masterPeak: await peakRss(pids.master),
      workerPeaks: await Promise.all(pids.workers.map(peakRss)),
    };
  });
}

if (process.argv[1] === import.meta.filename) {
  const r = (value: number) => Math.round(value * 1000) / 1000;
  const result = await hugeImage(Number(process.argv[2] ?? benchRounds));
  for (const [at, round] of result.rounds.entries()) {
    const phases = Object.fromEntries(Object.entries(round.phases).map(([kind, phase]) => [kind, { units: phase.units, seconds: r(phase.seconds) }]));
    console.log(JSON.stringify({ round: at + 1, ratio: r(round.ratio), dipsSeconds: r(round.dipsSeconds), plainSeconds: r(round.plain.seconds), plainCpuSeconds: r(round.plain.cpuSeconds), masterCpuSeconds: r(round.masterCpuSeconds), workerCpuSeconds: r(round.workerCpuSeconds), phases }));
  }
  console.log(JSON.stringify({ masterPeakMiB: Math.round(result.masterPeak / 2 ** 20), workerPeaksMiB: result.workerPeaks.map((bytes) => Math.round(bytes / 2 ** 20)) }));
}
