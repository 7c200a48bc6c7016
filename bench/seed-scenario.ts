/**
 * The seed scenario: 25 photos of about 80 KB each, sent by several clients at once to a local
 * cluster (`dips up`), timed from the first submission to the last result downloaded. The system DIPS
 * replaces took 94 s for this. Run: `npm run build && node dist/bench/seed-scenario.js`
 * (env: SEED_CLIENTS, default 5; SEED_WORKERS, default the CPU cores; SEED_PIPELINE, a JSON pipeline).
 */
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { MasterClient } from '../services/cli/client.js';
import { submitFiles } from '../services/cli/submit.js';
import { startLocalCluster } from './cluster.js';
import { corpusPhotos } from './images.js';
import { scratchDir } from './scratch.js';

const imageCount = 25;
const targetBytes = 80 * 1024;
const clients = Number(process.env.SEED_CLIENTS ?? 5);
const workers = Number(process.env.SEED_WORKERS ?? os.availableParallelism());
const pipeline = process.env.SEED_PIPELINE ?? JSON.stringify([{ op: 'grayscale' }, { op: 'blur', sigma: 2 }, { op: 'edges' }, { op: 'qr' }]);

/** JPEGs of about 80 KB cut from the corpus photos (different crops, so no two are alike). */
async function makeSeedImages(dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const photos = await corpusPhotos();
  const files: string[] = [];
  for (let i = 0; i < imageCount; i++) {
    const photo = photos[i % photos.length]!;
    const file = path.join(dir, `seed-${String(i + 1).padStart(2, '0')}.jpg`);
    // The widest crop that stays within the target size, found by halving the interval.
    const encode = (width: number) =>
      sharp(photo).extract({ left: (i * 17) % 60, top: (i * 11) % 40, width: 1260, height: 800 }).resize({ width }).jpeg({ quality: 92 }).toBuffer();
    let [low, high] = [200, 1260];
    while (high - low > 8) {
      const width = Math.round((low + high) / 2);
      if ((await encode(width)).length > targetBytes) high = width;
      else low = width;
    }
    await writeFile(file, await encode(low));
    files.push(file);
  }
  return files;
}

const work = await scratchDir('seed-');
const images = await makeSeedImages(path.join(work, 'images'));
const sizes = await Promise.all(images.map(async (file) => (await stat(file)).size));
const cluster = await startLocalCluster({ workers, dataDir: path.join(work, 'data'), env: { DIPS_LOG_LEVEL: 'warn' } });
try {
  const client = new MasterClient(cluster.url);
  const shares = Array.from({ length: clients }, (_, c) => images.filter((_, i) => i % clients === c));
  const started = performance.now();
  const jobs = await Promise.all(
    shares.map((files, c) => submitFiles(client, files, { pipeline, out: path.join(work, `out-${c}`), progress: false })),
  );
  const seconds = (performance.now() - started) / 1000;
  const failed = jobs.flatMap((job) => job.images.filter((image) => image.status !== 'succeeded'));
  const meanKb = sizes.reduce((a, b) => a + b, 0) / sizes.length / 1024;
  console.log(
    JSON.stringify({
      images: imageCount,
      meanKb: Math.round(meanKb),
      minKb: Math.round(Math.min(...sizes) / 1024),
      maxKb: Math.round(Math.max(...sizes) / 1024),
      clients,
      workers,
      pipeline: JSON.parse(pipeline),
      seconds: Number(seconds.toFixed(2)),
      imagesPerSecond: Number((imageCount / seconds).toFixed(1)),
      failed: failed.length,
      originalSeconds: 94,
    }),
  );
  if (failed.length > 0) process.exitCode = 1;
} finally {
  await cluster.stop();
  await rm(work, { recursive: true, force: true });
}
