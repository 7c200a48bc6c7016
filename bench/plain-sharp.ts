/** Plain sharp on the bench's pipeline (blur σ2, DIPS' JPEG settings): the side DIPS is compared with (bench/run.ts, bench/worker-cpu.ts). */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { cores, jpegOut } from './dips-job.js';
import { jsThreadsCpuMs } from './proc.js';
import { scratchDir } from './scratch.js';

/** Plain sharp's best setting here (sharp-facts: 2 in flight ≈ all cores, 4 in flight a little more). */
export const sharpInFlight = 2 * cores;

/** What running the pipeline on a batch cost, in this process or in the workers. */
export interface Side {
  seconds: number;
  /** CPU of the pixel work: plain sharp's process, or the workers together. */
  workCpuMs: number;
  /** Of workCpuMs, the pixel-work threads' (the CPU less jsThreadsCpuMs). */
  workPixelCpuMs: number;
}

/** Runs `work` on each item, at most `limit` at a time. */
export async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/**
 * Plain sharp over `files` in this process, sharpInFlight at a time, measured from its own counters.
 * Each result is written to a file, as a script does and as DIPS' workers store every result (and as
 * bench/plain-sharp-huge.ts writes its one): writing costs plain sharp 0.35-0.4 ms per photo here
 * against results only encoded into buffers (docs/performance.md, fourteenth round).
 */
export async function plainSharp(files: readonly string[]): Promise<Side> {
  const out = await scratchDir('plain-');
  try {
    const cpu = process.cpuUsage();
    const jsBefore = await jsThreadsCpuMs('self');
    const start = performance.now();
    await inParallel([...files.entries()], sharpInFlight, async ([index, file]) => {
      await sharp(file).autoOrient().blur(2).jpeg(jpegOut).toFile(path.join(out, `${index}.jpg`));
    });
    const used = process.cpuUsage(cpu);
    const workCpuMs = (used.user + used.system) / 1000;
    return { seconds: (performance.now() - start) / 1000, workCpuMs, workPixelCpuMs: workCpuMs - ((await jsThreadsCpuMs('self')) - jsBefore) };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}
