import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { parsePipeline } from '../../services/image-core/pipeline.js';
import { planImage, planStageTiles, stageOutputSize } from '../../services/image-core/planner.js';
import { corpus, download, getJob, metric, pixelsOf, submit, waitForJob, waitUntil } from '../helpers/api.js';
import { exited, killAll, runDips, startCluster, startDips } from '../helpers/processes.js';

const pipeline = JSON.stringify([{ op: 'blur', sigma: 2 }, { op: 'equalize' }, { op: 'sharpen' }]);
const jobs = [[corpus('twowings-4k.jpg')], [corpus('aqua.jpg'), corpus('dune.jpg')], [corpus('storm.jpg')]];
// One image at a time, so at the crash one job is mid-tiling and the others are still queued.
const tileSize = 512;
const env = { DIPS_TILE_SIZE: String(tileSize), DIPS_MAX_ACTIVE_IMAGES: '1' };

/** Tiles a run of every image from scratch sends to workers, as the planner cuts them. */
async function tilesFromScratch(files: string[]): Promise<number> {
  const steps = parsePipeline(pipeline);
  let tiles = 0;
  for (const file of files) {
    const { width, height } = await sharp(file).metadata();
    const plan = planImage({ width, height, channels: 3 }, steps, { tileSize });
    if (plan.mode !== 'tiled') throw new Error(`${file} is not tiled at ${tileSize}`);
    let size = { width, height };
    for (const stage of plan.stages) {
      tiles += planStageTiles(stage, size, tileSize).length;
      size = stageOutputSize(stage, size) ?? size;
    }
  }
  return tiles;
}

afterEach(killAll);

describe('kill -9 of the master', () => {
  it('with jobs queued and running: restarted on the same data dir, every job succeeds with the reference pixels', async () => {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'dips-restart-'));
    const dataDir = path.join(tmp, 'data');
    const reference = await runDips(['process', ...jobs.flat(), '--pipeline', pipeline, '--out', path.join(tmp, 'reference'), '--format', 'png']);
    expect(reference.code, reference.stderr).toBe(0);

    const { master } = await startCluster({ workers: 3, dataDir, env });
    const port = new URL(master.url).port;
    const ids = [];
    for (const files of jobs) ids.push(await submit(master.url, files, { pipeline, format: 'png' }));
    await waitUntil(() => metric(master.url, 'dips_units_completed_total'), (done) => done >= 10, 60_000, 'tiles to complete');
    const before = await Promise.all(ids.map((id) => getJob(master.url, id)));
    expect(before.map((job) => job.status)).toEqual(['running', 'queued', 'queued']);
    master.child.kill('SIGKILL');
    await exited(master.child);

    // Same port: the workers keep heartbeating to it and register with the new master.
    const restarted = await startDips(['master', '--port', port, '--data-dir', dataDir], env);
    for (const [jobIndex, id] of ids.entries()) {
      const job = await waitForJob(restarted.url, id);
      expect(job.status, JSON.stringify(job) + restarted.log()).toBe('succeeded');
      for (const [index, file] of jobs[jobIndex]!.entries()) {
        const expected = await pixelsOf(path.join(tmp, 'reference', `${path.parse(file).name}.png`));
        const actual = await pixelsOf(await download(restarted.url, id, index));
        expect(actual.data.equals(expected.data), `${file} differs after the restart`).toBe(true);
      }
    }
    // The image cut short resumed from its checkpoint: the new master sent fewer tiles than a fresh start needs.
    expect(await metric(restarted.url, 'dips_units_completed_total')).toBeLessThan(await tilesFromScratch(jobs.flat()));
  });
});
