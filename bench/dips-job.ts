/** A DIPS cluster and jobs on it as the benchmarks run them (bench/run.ts, bench/huge-image.ts). */
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalCluster, type LocalCluster } from './cluster.js';
import { MasterClient } from '../services/cli/client.js';
import { submitFiles } from '../services/cli/submit.js';
import { scratchDir } from './scratch.js';

export const cores = os.availableParallelism();
export const pipeline = [{ op: 'blur', sigma: 2 }];
/**
 * The JPEG settings DIPS's encoder uses (services/image-core/encode.ts): plain sharp gets the same, so both
 * sides do the same encoding work (sharp's default optimiseCoding alone costs ~30 % more on large images).
 */
export const jpegOut = { quality: 90, optimiseCoding: false, chromaSubsampling: '4:2:0' } as const;

/** One DIPS job through the CLI's own client: upload, follow, download every result. */
export async function runJob(url: string, files: readonly string[]): Promise<void> {
  const downloads = await scratchDir('results-');
  try {
    const state = await submitFiles(new MasterClient(url, {}), [...files], {
      pipeline: JSON.stringify(pipeline),
      format: 'jpeg',
      quality: String(jpegOut.quality),
      out: downloads,
      progress: false,
      quiet: true,
    });
    if (state.status !== 'succeeded') throw new Error(`bench job ${state.id} ended ${state.status}`);
  } finally {
    await rm(downloads, { recursive: true, force: true });
  }
}

/** `dips up --workers <cores>` in a fresh data directory for the duration of `work`. */
export async function withCluster<T>(env: Record<string, string>, work: (cluster: LocalCluster) => Promise<T>): Promise<T> {
  const dataDir = await scratchDir('cluster-');
  const cluster = await startLocalCluster({ workers: cores, dataDir, env });
  try {
    return await work(cluster);
  } finally {
    await cluster.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
