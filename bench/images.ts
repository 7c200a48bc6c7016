import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';

/** The repository's photographs (test/fixtures/corpus, from dist/bench two levels up), or DIPS_CORPUS_DIR. */
export const corpusDir = process.env.DIPS_CORPUS_DIR ?? path.resolve(import.meta.dirname, '../../test/fixtures/corpus');

export async function corpusPhotos(): Promise<string[]> {
  const names = (await readdir(corpusDir)).filter((name) => name.endsWith('.jpg') && !name.startsWith('qr-'));
  return names.sort().map((name) => path.join(corpusDir, name));
}

/**
 * The sustained batch of issue #12's figures: the corpus photos of at most 2 MP (~1.3 MP on average),
 * repeated to 240 items in 4 concurrent jobs of 60 (at least 200 images in several jobs, so each run lasts
 * seconds, not one short job). `warmUp` is the same batch, run first outside the measurement (warmedUp).
 */
export async function sustainedBatch(): Promise<{ photos: string[]; jobs: string[][]; warmUp: string[][] }> {
  const photos: string[] = [];
  for (const photo of await corpusPhotos()) {
    const { width, height } = await sharp(photo).metadata();
    if (width * height <= 2e6) photos.push(photo);
  }
  const jobs = Array.from({ length: 4 }, (_, job) => Array.from({ length: 60 }, (_, i) => photos[(job * 60 + i) % photos.length]!));
  return { photos, jobs, warmUp: jobs };
}

/**
 * Batches run before the measured one, so that the figures are those of a running master, as in a long
 * batch: V8 optimises the master's per-item code over the first several hundred items. The master's CPU
 * per thread (/proc/<pid>/task), S3 batch from a prefix, the same 240 photos again and again on one master,
 * two series (2026-12-03): 1.21-1.46 and 1.17-1.38 ms per image in batches 2 and 3, then 0.83-1.04 from the
 * fourth on; V8's background threads (compiler, garbage collector) took 0.2-0.4 ms per image of it in
 * batches 2 and 3 and 0.04-0.2 after. With a 2-photo warm-up one master gave 2.54, 2.21, then 1.96 ms.
 */
export const warmUpBatches = 3;

/** Runs `batch` warmUpBatches times (round: which one, for callers that need a fresh folder each time). */
export async function warmedUp(batch: (round: number) => Promise<unknown>): Promise<void> {
  for (let round = 0; round < warmUpBatches; round++) await batch(round);
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/**
 * A mosaic of corpus photos, `columns` x `rows` cells of `cellWidth` x `cellHeight`, written once as
 * JPEG q90 and reused: real photographic content at any size without shipping large files.
 */
export async function photoMosaic(options: {
  file: string;
  columns: number;
  rows: number;
  cellWidth: number;
  cellHeight: number;
  offset?: number;
}): Promise<string> {
  if (await exists(options.file)) return options.file;
  await mkdir(path.dirname(options.file), { recursive: true });
  const photos = await corpusPhotos();
  const cells: OverlayOptions[] = [];
  const resized = new Map<string, Buffer>();
  for (let row = 0; row < options.rows; row++) {
    for (let column = 0; column < options.columns; column++) {
      const photo = photos[(row * options.columns + column + (options.offset ?? 0)) % photos.length];
      let cell = resized.get(photo);
      if (!cell) {
        cell = await sharp(photo)
          .resize(options.cellWidth, options.cellHeight, { fit: 'cover' })
          .raw()
          .toBuffer();
        resized.set(photo, cell);
      }
      cells.push({
        input: cell,
        raw: { width: options.cellWidth, height: options.cellHeight, channels: 3 },
        left: column * options.cellWidth,
        top: row * options.cellHeight,
      });
    }
  }
  const width = options.columns * options.cellWidth;
  const height = options.rows * options.cellHeight;
  await sharp({ create: { width, height, channels: 3, background: '#000' }, limitInputPixels: false })
    .composite(cells)
    .jpeg({ quality: 90 })
    .toFile(options.file);
  return options.file;
}
