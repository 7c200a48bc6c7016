/**
 * Peak memory of a tiled run on a ~100 MP photo mosaic: the master (this process) decodes to an
 * intermediate, cuts tiles, stitches and encodes; one forked worker process runs the tiles, as a
 * remote worker would. Prints time and peak RSS (maxRSS) of both. Run: npm run build && node dist/bench/tiled-memory.js
 * With the argument `wire`: the cost of sending one 1024x1024 RGB tile raw, as PNG level 1 or deflated.
 */
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { executeTileTask } from '../services/image-core/execute-tile.js';
import { parsePipeline } from '../services/image-core/pipeline.js';
import { planImage } from '../services/image-core/planner.js';
import { decodeTileResult, decodeTileTask, encodeTileResult, encodeTileTask } from '../services/image-core/tile-task.js';
import { runTiledImage } from '../services/image-core/tiled-run.js';
import { corpusPhotos, photoMosaic } from './images.js';

const MiB = 1024 * 1024;
const peakRssMiB = () => Math.round((process.resourceUsage().maxRSS * 1024) / MiB);

async function workerProcess(): Promise<void> {
  process.on('message', async (message: { id: number; task?: Uint8Array; done?: true }) => {
    if (message.done) {
      process.send!({ peakRssMiB: peakRssMiB() }, () => process.exit(0));
      return;
    }
    const task = decodeTileTask(Buffer.from(message.task!.buffer, message.task!.byteOffset, message.task!.byteLength));
    const result = Buffer.concat(encodeTileResult(await executeTileTask(task)));
    process.send!({ id: message.id, result });
  });
}

async function time<T>(label: string, run: () => Promise<T>, repeat = 20): Promise<T> {
  let value!: T;
  const start = performance.now();
  for (let i = 0; i < repeat; i++) value = await run();
  console.log(`  ${label}: ${((performance.now() - start) / repeat).toFixed(1)} ms`);
  return value;
}

async function wireCosts(): Promise<void> {
  const [photo] = await corpusPhotos();
  const raw = { width: 1024, height: 1024, channels: 3 as const };
  const pixels = await sharp(photo).resize(1024, 1024, { fit: 'cover' }).raw().toBuffer();
  console.log('one 1024x1024 RGB tile of a photo:');
  console.log(`  raw: ${pixels.length} bytes`);
  await time('raw copy', async () => Buffer.from(pixels));
  const png = await time('PNG level 1 encode', () => sharp(pixels, { raw }).png({ compressionLevel: 1 }).toBuffer());
  await time('PNG level 1 decode', () => sharp(png).raw().toBuffer());
  console.log(`  PNG level 1: ${png.length} bytes`);
  const deflate = promisify(zlib.deflate);
  const inflate = promisify(zlib.inflate);
  const packed = await time('deflate level 1', () => deflate(pixels, { level: 1 }));
  await time('inflate', () => inflate(packed));
  console.log(`  deflate level 1: ${packed.length} bytes`);
}

async function master(): Promise<void> {
  const outDir = path.resolve(import.meta.dirname, '../../bench/out');
  const source = await photoMosaic({ file: path.join(outDir, 'mosaic-100mp.jpg'), columns: 10, rows: 10, cellWidth: 1000, cellHeight: 1000 });
  const steps = parsePipeline([{ op: 'blur', sigma: 2 }, { op: 'equalize' }]);
  const plan = planImage({ width: 10_000, height: 10_000, channels: 3 }, steps);
  if (plan.mode !== 'tiled') throw new Error('expected a tiled plan');
  const worker = fork(import.meta.filename, ['worker'], { serialization: 'advanced' });
  const pending = new Map<number, (bytes: Buffer) => void>();
  worker.on('message', (message: { id: number; result: Uint8Array }) => {
    pending.get(message.id)?.(Buffer.from(message.result.buffer, message.result.byteOffset, message.result.byteLength));
    pending.delete(message.id);
  });
  let nextId = 0;
  const workDir = await mkdtemp(path.join(tmpdir(), 'dips-bench-'));
  try {
    const start = performance.now();
    const result = await runTiledImage({
      plan,
      source,
      workDir,
      output: { format: 'jpeg', quality: 90 },
      maxPixels: 268_402_689,
      concurrency: 2,
      runTile: (task) =>
        new Promise((resolve) => {
          const id = nextId++;
          pending.set(id, (bytes) => resolve(decodeTileResult(bytes)));
          worker.send({ id, task: Buffer.concat(encodeTileTask(task)) });
        }),
    });
    const seconds = (performance.now() - start) / 1000;
    const workerPeak = await new Promise<number>((resolve) => {
      worker.once('message', (message: { peakRssMiB: number }) => resolve(message.peakRssMiB));
      worker.send({ done: true });
    });
    console.log(
      `100 MP (${result.width}x${result.height}) blur+equalize, tile ${plan.tileSize}, ${plan.stages.length} stages: ` +
        `${seconds.toFixed(1)} s, JPEG ${Math.round(result.data.length / MiB)} MiB; ` +
        `peak RSS master ${peakRssMiB()} MiB, worker ${workerPeak} MiB`,
    );
  } finally {
    worker.kill();
    await rm(workDir, { recursive: true, force: true });
  }
}

const modes: Record<string, () => Promise<void>> = { worker: workerProcess, wire: wireCosts };
await (modes[process.argv[2]] ?? master)();
