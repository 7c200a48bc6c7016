/**
 * `npm run bench`: DIPS on a local cluster against plain sharp, side by side in one run, on the same
 * images; writes bench/results.md and the chart bench/results.svg. CPU and bytes come from /proc.
 * Ratios matter more than absolute figures: this machine is shared.
 */
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { LocalCluster } from './cluster.js';
import { cores, jpegOut, pipeline, runJob, withCluster } from './dips-job.js';
import { hugeImage, type HugeResult } from './huge-image.js';
import { photoMosaic, sustainedBatch, warmedUp, warmUpBatches } from './images.js';
import { plainSharp, sharpInFlight, type Side } from './plain-sharp.js';
import { plainSharpOverS3, type ScriptRun } from './plain-sharp-s3.js';
import { countersAround, type RunCounters } from './proc.js';
import { startS3Server } from './s3-server.js';
import { runStorageBatch, stageLocal, stageS3 } from './storage-batch.js';
import { chart } from './chart.js';
import { median, medians, rounds, spreadOf } from './rounds.js';
import { uploadFloor, type UploadFloor } from './upload-floor.js';
import { scratchDir } from './scratch.js';

const outDir = path.resolve(import.meta.dirname, '../../bench/out');
const resultsFile = path.resolve(import.meta.dirname, '../../bench/results.md');
const chartFile = path.resolve(import.meta.dirname, '../../bench/results.svg');

/** Goals of issue #12, per image. */
const goals = { masterMsS3: 1, masterMsLocal: 3, workerRatio: 1.1, hugeRatio: 1.3, masterPeakMiB: 256, workerPeakMiB: 768 };

interface Row {
  name: string;
  images: number;
  megapixels: number;
  /** Each figure the median of the rounds'. */
  plain: Side;
  dips: RunCounters;
  /** Each round's workers against plain sharp and master CPU per image, for their spread. */
  rounds: Array<{ workerRatio: number; masterMs: number }>;
}

const meanSide = (a: Side, b: Side): Side => ({ seconds: (a.seconds + b.seconds) / 2, workCpuMs: (a.workCpuMs + b.workCpuMs) / 2, workPixelCpuMs: (a.workPixelCpuMs + b.workPixelCpuMs) / 2 });

/** Several jobs at once; the master's and workers' CPU and the master's bytes from /proc around them. */
async function dipsRun(cluster: LocalCluster, jobs: ReadonlyArray<readonly string[]>): Promise<Row['dips']> {
  return countersAround(await cluster.pids(), () => runJobs(cluster, jobs));
}

const runJobs = (cluster: LocalCluster, jobs: ReadonlyArray<readonly string[]>) => Promise.all(jobs.map((files) => runJob(cluster.url, files)));

async function megapixels(files: readonly string[]): Promise<number> {
  let total = 0;
  for (const file of files) {
    const { width, height } = await sharp(file).metadata();
    total += (width! * height!) / 1e6;
  }
  return total;
}

/**
 * Rounds of one batch on the cluster, each with plain sharp on the same files right before and right
 * after it: the two plain runs are averaged, so drift of this shared machine during a round falls on both
 * sides.
 */
async function besidePlainSharp(name: string, files: readonly string[], warmUp: () => Promise<unknown>, run: () => Promise<Row['dips']>): Promise<Row> {
  await warmedUp(warmUp);
  await plainSharp(files.slice(0, 2));
  let before = await plainSharp(files);
  const measured: Array<{ plain: Side; dips: RunCounters }> = [];
  for (let round = 0; round < rounds; round++) {
    const dips = await run();
    const after = await plainSharp(files);
    measured.push({ plain: meanSide(before, after), dips });
    before = after;
  }
  const plain = medians(measured.map((round) => round.plain));
  const dips = medians(measured.map((round) => round.dips));
  const row = {
    name,
    images: files.length,
    megapixels: await megapixels(files),
    plain,
    dips,
    rounds: measured.map((round) => ({ workerRatio: round.dips.workCpuMs / round.plain.workCpuMs, masterMs: round.dips.masterCpuMs / files.length })),
  };
  console.error(`${name}: sharp ${plain.seconds.toFixed(2)} s, DIPS ${dips.seconds.toFixed(2)} s, master ${(dips.masterCpuMs / files.length).toFixed(2)} ms/image, workers ${row.rounds.map((round) => round.workerRatio.toFixed(2)).join(', ')}x`);
  return row;
}

/** Jobs uploaded through the CLI's client, submitted together. */
function sideBySide(name: string, cluster: LocalCluster, jobs: ReadonlyArray<readonly string[]>): Promise<Row> {
  const files = jobs.flat();
  // Warmed up by the same jobs (warmedUp).
  return besidePlainSharp(name, files, () => runJobs(cluster, jobs), () => dipsRun(cluster, jobs));
}

/**
 * The same photos as batch jobs read from storage (one folder or prefix per job, staged beforehand),
 * results left in the master's storage and downloaded by the client as they are reported.
 */
function storageSideBySide(name: string, cluster: LocalCluster, warmUp: readonly string[], folders: readonly string[], files: readonly string[]): Promise<Row> {
  const options = { pipeline, format: 'jpeg', quality: jpegOut.quality };
  return besidePlainSharp(
    name,
    files,
    () => runStorageBatch(cluster, warmUp, options),
    async () => countersAround(await cluster.pids(), () => runStorageBatch(cluster, folders, options)),
  );
}

const chunk = <T>(items: readonly T[], size: number): T[][] => Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

async function main(): Promise<void> {
  const { jobs: sustainedJobsFiles, warmUp: warmUpFiles } = await sustainedBatch();
  const sustained = sustainedJobsFiles.flat();
  const large = await Promise.all(
    Array.from({ length: 8 }, (_, index) =>
      photoMosaic({ file: path.join(outDir, `mosaic-12mp-${index}.jpg`), columns: 3, rows: 3, cellWidth: 1334, cellHeight: 1000, offset: index }),
    ),
  );
  const rows: Row[] = [];
  let floor: UploadFloor | undefined;
  const sourcesDir = await scratchDir('sources-');
  const localFolders = await stageLocal(path.join(sourcesDir, 'in'), sustainedJobsFiles);
  const localWarmUp = await stageLocal(path.join(sourcesDir, 'warm'), warmUpFiles);
  await withCluster({ DIPS_SOURCES: `file://${sourcesDir}/` }, async (cluster) => {
    rows.push(await sideBySide(`local disk: ${sustained.length} photos of ~1.3 MP, ${sustainedJobsFiles.length} concurrent jobs`, cluster, sustainedJobsFiles));
    rows.push(await storageSideBySide(`local disk, batch from a folder: ${sustained.length} photos of ~1.3 MP, ${sustainedJobsFiles.length} concurrent jobs`, cluster, localWarmUp, localFolders, sustained));
    rows.push(await sideBySide(`local disk: ${large.length} photos of 12 MP, 2 concurrent jobs`, cluster, chunk(large, large.length / 2)));
    floor = await uploadFloor(cluster, sustained);
  });
  await rm(sourcesDir, { recursive: true, force: true });
  const s3 = await startS3Server('dips-bench');
  let s3Script: ScriptRun | undefined;
  try {
    const s3Folders = await stageS3(s3, 'in', sustainedJobsFiles);
    const s3WarmUp = await stageS3(s3, 'warm', warmUpFiles);
    await withCluster({ ...s3.env, DIPS_SOURCES: `s3://${s3.bucket}/` }, async (cluster) => {
      rows.push(await sideBySide(`S3 (s3rver on loopback): ${sustained.length} photos of ~1.3 MP, ${sustainedJobsFiles.length} concurrent jobs`, cluster, sustainedJobsFiles));
      rows.push(await storageSideBySide(`S3 (s3rver on loopback), batch from a prefix: ${sustained.length} photos of ~1.3 MP, ${sustainedJobsFiles.length} concurrent jobs`, cluster, s3WarmUp, s3Folders, sustained));
    });
    const scriptRuns: ScriptRun[] = [];
    for (let round = 0; round < rounds; round++) scriptRuns.push(await plainSharpOverS3(s3.env, 'in/'));
    s3Script = medians(scriptRuns);
    console.error(`plain sharp as a script over S3: ${fixed(s3Script.seconds)} s, ${fixed(s3Script.workCpuMs / sustained.length)} ms/image`);
  } finally {
    await s3.close();
  }
  const huge = await hugeImage();
  await writeFile(chartFile, chart(rows.map((row) => ({ label: row.name.split(':')[0]!, sub: row.name.split(': ')[1]!, plain: row.plain.seconds, dips: row.dips.seconds, masterMs: row.dips.masterCpuMs / row.images }))));
  let inputBytes = 0;
  for (const file of sustained) inputBytes += (await stat(file)).size;
  await writeFile(resultsFile, report(rows, huge, floor!, inputBytes / sustained.length, s3Script!));
  console.log(await readFile(resultsFile, 'utf8'));
}

const fixed = (value: number, digits = 2) => value.toFixed(digits);
const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;
const kib = (bytes: number) => `${Math.round(bytes / 1024)} KiB`;
const verdict = (met: boolean) => (met ? '**met**' : '**missed**');

function report(rows: Row[], huge: HugeResult, floor: UploadFloor, inputBytes: number, s3Script: ScriptRun): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const perImage = (row: Row) => ({
    master: row.dips.masterCpuMs / row.images,
    storage: row.dips.storageCpuMs === undefined ? undefined : row.dips.storageCpuMs / row.images,
    bytes: row.dips.masterBytes / row.images,
    work: row.dips.workCpuMs / row.images,
    workPixels: row.dips.workPixelCpuMs / row.images,
    plain: row.plain.workCpuMs / row.images,
    plainPixels: row.plain.workPixelCpuMs / row.images,
  });
  const [localSmall, localBatch, , s3Small, s3Batch] = rows.map(perImage);
  const [localSmallRow, localBatchRow, , s3SmallRow, s3BatchRow] = rows;
  const scriptMs = s3Script.workCpuMs / s3SmallRow!.images;
  /** The rounds' spread of one figure: "lowest-highest". */
  const spread = (row: Row, figure: (round: Row['rounds'][number]) => number, digits = 2) => spreadOf(row.rounds.map(figure), digits);
  // Against plain sharp with DIPS's own JPEG settings: the same encoding work on both sides.
  const hugeMedian = huge.median;
  const hugeRatio = hugeMedian.ratio;
  const hugeSpread = spreadOf(huge.rounds.map((round) => round.ratio));
  const ratioRows = [localSmallRow!, localBatchRow!, s3SmallRow!, s3BatchRow!];
  const workerRatios = ratioRows.map((row) => median(row.rounds.map((round) => round.workerRatio)));
  const ratioText = (at: number) => `${fixed(workerRatios[at]!)}x (${spread(ratioRows[at]!, (round) => round.workerRatio)})`;
  const pixelSplit = [localSmall!, localBatch!, s3Small!, s3Batch!].map((row, at) => ({
    row: ['local uploads', 'local batch', 'S3 uploads', 'S3 batch'][at]!,
    dips: row.workPixels,
    plain: row.plainPixels,
    dipsRest: row.work - row.workPixels,
    plainRest: row.plain - row.plainPixels,
  }));
  const lines = [
    '# DIPS benchmark results',
    '',
    `Written by \`npm run bench\` on ${new Date().toISOString()}: ${cores} cores (${cpu}), ${mib(os.totalmem())} memory, Node ${process.version}, ` +
      `sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}. DIPS: \`dips up --workers ${cores}\` on the same machine, warmed up by the same batch ${warmUpBatches} times, the jobs submitted together ` +
      `through the CLI's client (upload, live progress, download of every result); the "batch from" rows submit the same photos as batch jobs read from a folder ` +
      `(file:// under DIPS_SOURCES) or a bucket prefix, results kept in the master's storage, the client following each job's event stream and downloading every result ` +
      `(bench/storage-batch.ts). Plain sharp: one process, ${sharpInFlight} images in flight (bench/plain-sharp.ts), on the same files, each result written to a file as the workers store theirs. Each row is ${rounds} rounds: DIPS, then plain sharp (which also ran ` +
      `right before the first), each round's DIPS figures against the mean of the two plain runs around it; a row shows the median of its rounds' figures, and a goal the median of the rounds ` +
      `with their spread in brackets. ` +
      `Pipeline blur σ2, output JPEG q${jpegOut.quality} without Huffman optimisation (DIPS' encoder setting) on both sides. CPU is utime+stime from /proc/<pid>/stat; the master's bytes are ` +
      `rchar+wchar from /proc/<pid>/io (every byte it reads or writes: sockets, files, SQLite). On local disk \`dips up\` also runs the storage service ` +
      `(services/storage/, the local stand-in for S3), which takes the uploads and serves the downloads through signed URLs: its CPU is its own column. ` +
      `In S3 mode s3rver runs inside the bench's own process and is not counted on either side. ` +
      `"Cores of pixel work per master core" is plain sharp's CPU per image over the master's: how many cores busy with this pipeline one master core keeps fed. ` +
      `It holds across the machine's changes of speed, which move every CPU figure here together: on this shared machine the same plain-sharp work has measured 11.8-34 ms per image.`,
    '',
    '![side by side](results.svg)',
    '',
    '## Side by side',
    '',
    '| batch | plain sharp wall | DIPS wall | sharp / DIPS | pixel-work CPU per image, sharp | workers | master CPU per image | cores of pixel work per master core | master bytes per image | storage service CPU per image |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map((row) => {
      const figures = perImage(row);
      return (
        `| ${row.name} | ${fixed(row.plain.seconds)} s | ${fixed(row.dips.seconds)} s | ${fixed(row.plain.seconds / row.dips.seconds)} | ` +
        `${fixed(figures.plain, 1)} ms | ${fixed(figures.work, 1)} ms | ${fixed(figures.master)} ms | ${fixed(figures.plain / figures.master, 0)} | ${kib(figures.bytes)} | ` +
        `${figures.storage === undefined ? '—' : `${fixed(figures.storage)} ms`} |`
      );
    }),
    '',
    `## One very large image (${fixed(huge.megapixels, 0)} MP mosaic of corpus photos), blur σ2`,
    '',
    '| | wall time | CPU | peak memory |',
    '| --- | ---: | ---: | ---: |',
    `| plain sharp, whole image (${huge.threads} libvips thread${huge.threads === 1 ? '' : 's'}) | ${fixed(huge.plainOptimised.seconds)} s | ${fixed(huge.plainOptimised.cpuSeconds)} s | ${mib(huge.plainOptimised.peakBytes)} |`,
    `| plain sharp without Huffman optimisation (DIPS' JPEG setting; mean of the runs around the median round) | ${fixed(hugeMedian.plain.seconds)} s | ${fixed(hugeMedian.plain.cpuSeconds)} s | ${mib(hugeMedian.plain.peakBytes)} |`,
    `| DIPS, tiled (upload and download included; the median of ${huge.rounds.length} rounds, after one warm-up run of the same job) | ${fixed(hugeMedian.dipsSeconds)} s (${fixed(hugeRatio)}x sharp with the same JPEG setting, ` +
      `rounds ${hugeSpread}; ${fixed(hugeMedian.dipsSeconds / huge.plainOptimised.seconds)}x sharp's defaults) | workers ${fixed(hugeMedian.workerCpuSeconds)} s, master ${fixed(hugeMedian.masterCpuSeconds)} s | ` +
      `master ${mib(huge.masterPeak)}; workers ${huge.workerPeaks.map(mib).join(', ')} |`,
    '',
    '## Goals (issue #12)',
    '',
    '| goal | measured | verdict | why |',
    '| --- | ---: | --- | --- |',
    `| master CPU ≤ ${goals.masterMsS3} ms per image, S3 mode: uploads | ${fixed(s3Small!.master)} ms (${spread(s3SmallRow!, (round) => round.masterMs)}) | ${verdict(s3Small!.master <= goals.masterMsS3)} | ` +
      `the client PUTs each file to a presigned URL of an upload session, so no image byte passes the master (${kib(s3Small!.bytes)} per image through its syscalls, ` +
      `an input averages ${kib(inputBytes)}); the job is then a batch job over the session, with the per-item control work of the next row. |`,
    `| master CPU ≤ ${goals.masterMsS3} ms per image, S3 mode: batch from a prefix | ${fixed(s3Batch!.master)} ms (${spread(s3BatchRow!, (round) => round.masterMs)}) | ${verdict(s3Batch!.master <= goals.masterMsS3)} | ` +
      `no image byte passes the master (${kib(s3Batch!.bytes)} per image through its syscalls: HTTP control traffic, SQLite). Per item it still lists it, presigns ` +
      `the worker's GET and PUT and the client's download URL, sends its task to a worker (many tasks to a request), takes its result line and writes its ` +
      `state in SQLite (one commit per 50 ms window for all items; a claim and its start are one row write, an item finished within the window is written ` +
      `by its outcome alone); the rest is spread over express, the dispatcher, the HTTP client and garbage ` +
      `collection, none of them a hot spot (docs/performance.md breaks the profile down). |`,
    `| master CPU ≤ ${goals.masterMsLocal} ms per 1.3 MP image, local disk: uploads | ${fixed(localSmall!.master)} ms (${spread(localSmallRow!, (round) => round.masterMs)}) | ${verdict(localSmall!.master <= goals.masterMsLocal)} | ` +
      `the client PUTs each file to a signed URL of the storage service and fetches each result from another (as from S3's presigned URLs); co-located workers read ` +
      `and write the files themselves, so no image byte passes the master (${kib(localSmall!.bytes)} per image through its syscalls). The bytes cost the storage ` +
      `service ${fixed(localSmall!.storage!)} ms per image, master and storage service together ${fixed(localSmall!.master + localSmall!.storage!)} ms. Taking one ` +
      `${kib(floor.bytesPerFile)} upload cost the storage service ${fixed(floor.storageMs)} ms (the master meanwhile ${fixed(floor.masterMs)} ms), a bare node:http ` +
      `server that only streams it into a file ${fixed(floor.bareMs)} ms (bench/upload-floor.ts, ${floor.files} files each, alternating). |`,
    `| master CPU ≤ ${goals.masterMsLocal} ms per 1.3 MP image, local disk: batch from a folder | ${fixed(localBatch!.master)} ms (${spread(localBatchRow!, (round) => round.masterMs)}) | ${verdict(localBatch!.master <= goals.masterMsLocal)} | ` +
      `the client fetches each result from the storage service (${fixed(localBatch!.storage!)} ms per image there; ${kib(localBatch!.bytes)} per image through the master's syscalls), ` +
      `and the master does the per-item control work of the S3 row, with one realpath per item in place of presigning the worker's URLs. |`,
    `| bytes the master carries per image (S3: metadata only) | local ${kib(localSmall!.bytes)}, S3 ${kib(s3Small!.bytes)}; batch from storage: local ${kib(localBatch!.bytes)}, S3 ${kib(s3Batch!.bytes)} (an input averages ${kib(inputBytes)}) | ` +
      `${verdict(s3Small!.bytes < inputBytes / 4 && s3Batch!.bytes < inputBytes / 4)} | S3: no image byte passes the master; what it reads and writes is control traffic ` +
      `(task and result bodies, event streams, download URLs, heartbeats, SQLite's pages), judged metadata only while it stays under a quarter of an average input. ` +
      `Local disk has no such goal; there too the uploads and downloads go to the storage service, not the master. |`,
    `| worker CPU ≤ ${goals.workerRatio}x plain sharp (1.3 MP) | local ${ratioText(0)}, ${ratioText(1)}; S3 ${ratioText(2)}, ${ratioText(3)} (uploads, batch) | ${verdict(workerRatios.every((ratio) => ratio <= goals.workerRatio))} | ` +
      `each image is one libvips pipeline from file to JPEG (processImage: the blur fused with decode and encode, as plain sharp does); on local disk libvips ` +
      `writes the result file itself, as plain sharp's toFile does, and in S3 mode the result is encoded into memory for its PUT. Per image, the threads ` +
      `where sharp runs its pipelines and files are read and written (libvips' and libuv's pools, from /proc/<pid>/task) spent, DIPS against plain sharp: ` +
      `${pixelSplit.map(({ row, dips, plain }) => `${row} ${fixed(dips, 1)} against ${fixed(plain, 1)} ms`).join(', ')}. ` +
      `The rest is the JavaScript thread and V8's helper threads: ${pixelSplit.map(({ row, dipsRest, plainRest }) => `${row} ${fixed(dipsRest, 1)} against ${fixed(plainRest, 1)} ms`).join(', ')}, ` +
      `the workers' share being each task's HTTP request and result line, in S3 mode the GET and the PUT over HTTP (undici's dispatcher: 0.12-0.16 ms of ` +
      `CPU for a 210 kB body read into a kept buffer, 0.04 ms to PUT the result; its socket reads and writes), and on both the header read that plans ` +
      `the image, a sharp call plain sharp does not make (docs/performance.md, fifteenth and seventeenth rounds). Against plain sharp as a script over the bucket runs it (the AWS SDK's GetObject and ` +
      `PutObject around the same sharp call, ${sharpInFlight} in flight, in its own process after the S3 rows, the median of ${rounds} runs: bench/plain-sharp-s3.ts), ` +
      `${fixed(scriptMs, 1)} ms per image, the S3 workers spent ${[s3Small!, s3Batch!].map((row) => `${fixed(row.work / scriptMs)}x`).join(' and ')} its CPU (uploads, batch). |`,
    `| 100 MP blur ≤ ${goals.hugeRatio}x plain sharp (same JPEG setting) | ${fixed(hugeRatio)}x (${hugeSpread}) | ${verdict(hugeRatio <= goals.hugeRatio)} | ` +
      `${hugeMedian.phases.tile?.units ?? 0} strips decode their own rows from the upload (each from the top down to its last row), blur them in one sharp call ` +
      `and encode them as their band of the JPEG (restart intervals, docs/tiling.md), in parallel ` +
      `(${fixed(hugeMedian.phases.tile?.seconds ?? 0)} s of strip round trips summed${hugeMedian.phases.decode ? `, after a ${fixed(hugeMedian.phases.decode.seconds)} s decode task` : ''}); ` +
      `then one worker joins their bytes into the file (${fixed(hugeMedian.phases.encode?.seconds ?? 0)} s). ` +
      `The upload (to the storage service through an upload session, which \`dips submit\` then makes an upload job: the master reads the header from the file and plans the strips) and the download (from the storage service) are in the wall time. Plain sharp streams decode, blur and encode in one libvips pipeline ` +
      `in ${fixed(hugeMedian.plain.seconds)} s on one thread (with sharp's default Huffman optimisation, which buffers the whole image for a second pass, ` +
      `${fixed(huge.plainOptimised.seconds)} s, and DIPS is ${fixed(hugeMedian.dipsSeconds / huge.plainOptimised.seconds)}x that). |`,
    `| master peak ≤ ${goals.masterPeakMiB} MiB on 100 MP | ${mib(huge.masterPeak)} | ${verdict(huge.masterPeak <= goals.masterPeakMiB * 2 ** 20)} | the master holds no pixels: tasks name byte ranges of intermediates that workers read and write. |`,
    `| each worker ≤ ${goals.workerPeakMiB} MiB on 100 MP | ${huge.workerPeaks.map(mib).join(', ')} | ${verdict(huge.workerPeaks.every((peak) => peak <= goals.workerPeakMiB * 2 ** 20))} | |`,
    '',
  ];
  return lines.join('\n');
}

await main();
