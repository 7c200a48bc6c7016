import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startLocalCluster } from './cluster.js';
import { jpegOut } from './dips-job.js';
import { sustainedBatch, warmedUp } from './images.js';
import { plainSharp } from './plain-sharp.js';
import { countersAround } from './proc.js';
import { startS3Server } from './s3-server.js';
import { runStorageBatch, stageLocal, stageS3 } from './storage-batch.js';
import { scratchDir } from './scratch.js';

/*
 * Workers' CPU per image against plain sharp's on the same files in the same run (issue #12's worker
 * goal): bench/storage-batch.ts's sustained batch (240 photos of ~1.3 MP in 4 jobs, blur σ2 → JPEG q90)
 * on `dips up --workers 2`, and plain sharp in this process (bench/plain-sharp.ts) before
 * and after it, averaged so that drift of the shared machine falls on both sides. A second batch runs
 * with plain sharp in a process of its own at the same time: both then see the same contention.
 *   npm run build && node dist/bench/worker-cpu.js s3|local [ROUNDS]
 */

/** Plain sharp's CPU per image (ms) over `files`. */
const plainMsPerImage = async (files: readonly string[]): Promise<number> => (await plainSharp(files)).workCpuMs / files.length;

async function main(mode: 's3' | 'local', rounds: number): Promise<void> {
  const { jobs, warmUp } = await sustainedBatch();
  const all = jobs.flat();
  const options = { pipeline: [{ op: 'blur', sigma: 2 }], format: 'jpeg', quality: jpegOut.quality };
  const tmp = await scratchDir('worker-cpu-');
  const s3 = mode === 's3' ? await startS3Server('dips-bench') : undefined;
  try {
    const warm = s3 ? await stageS3(s3, 'warm', warmUp) : await stageLocal(path.join(tmp, 'warm'), warmUp);
    const folders = s3 ? await stageS3(s3, 'in', jobs) : await stageLocal(path.join(tmp, 'in'), jobs);
    const dataDir = path.join(tmp, 'data');
    await fs.mkdir(dataDir);
    const cluster = await startLocalCluster({ workers: 2, dataDir, env: { DIPS_SOURCES: s3 ? `s3://${s3.bucket}/` : `file://${tmp}/`, ...s3?.env } });
    try {
      await warmedUp(() => runStorageBatch(cluster, warm, options));
      await plainMsPerImage(warmUp.flat());
      for (let round = 0; round < rounds; round++) {
        const before = await plainMsPerImage(all);
        const alone = await countersAround(await cluster.pids(), () => runStorageBatch(cluster, folders, options));
        const plain = (before + (await plainMsPerImage(all))) / 2;
        const child = promisify(execFile)(process.execPath, [import.meta.filename, '--plain', JSON.stringify(all)]);
        const together = await countersAround(await cluster.pids(), () => runStorageBatch(cluster, folders, options));
        const plainTogether = Number((await child).stdout);
        const workers = alone.workCpuMs / all.length;
        const workersTogether = together.workCpuMs / all.length;
        process.stdout.write(
          `${JSON.stringify({ mode, plainMs: plain, workerMs: workers, ratio: workers / plain, masterMs: alone.masterCpuMs / all.length, concurrent: { plainMs: plainTogether, workerMs: workersTogether, ratio: workersTogether / plainTogether }, load: os.loadavg()[0] })}\n`,
        );
      }
    } finally {
      await cluster.stop();
    }
  } finally {
    await s3?.close();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--plain') {
  const files = JSON.parse(process.argv[3]!) as string[];
  await plainSharp(files.slice(0, 2));
  process.stdout.write(String(await plainMsPerImage(files)));
} else {
  await main(process.argv[2] === 's3' ? 's3' : 'local', Number(process.argv[3] ?? 1));
}
