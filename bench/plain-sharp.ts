/** Plain sharp on the bench's pipeline (blur σ2, DIPS' JPEG settings): the side DIPS is compared with (bench/run.ts, bench/worker-cpu.ts). */
import sharp from 'sharp';
import { cores, jpegOut } from './dips-job.js';
import { jsThreadsCpuMs } from './proc.js';

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

async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** Plain sharp over `files` in this process, sharpInFlight at a time, measured from its own counters. */
export async function plainSharp(files: readonly string[]): Promise<Side> {
  const cpu = process.cpuUsage();
  const jsBefore = await jsThreadsCpuMs('self');
  const start = performance.now();
  await inParallel(files, sharpInFlight, async (file) => {
    await sharp(file).autoOrient().blur(2).jpeg(jpegOut).toBuffer();
  });
  const used = process.cpuUsage(cpu);
  const workCpuMs = (used.user + used.system) / 1000;
  return { seconds: (performance.now() - start) / 1000, workCpuMs, workPixelCpuMs: workCpuMs - ((await jsThreadsCpuMs('self')) - jsBefore) };
}
