import { readFileSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import { decodeImage, openInput } from '../../services/image-core/decode.js';
import type { Annotations } from '../../services/image-core/operation.js';
import { encodeImage, type EncodeOptions } from '../../services/image-core/encode.js';
import { parsePipeline, runSteps } from '../../services/image-core/pipeline.js';
import { planImage, type ImageShape, type TiledPlan } from '../../services/image-core/planner.js';
import { rawImage, type RawImage } from '../../services/image-core/raw-image.js';
import { rowsRange, writeAt } from '../../services/image-core/intermediate.js';
import { decodeToIntermediate, encodeIntermediate, runTileJob, type TileJob, type TileOutcome } from '../../services/image-core/tile-task.js';
import { runTiledImage, type TiledRunOptions, type TiledRunWork, type TileTarget } from '../../services/image-core/tiled-run.js';
import { corpus } from '../helpers/api.js';

export { corpus };

const watermark = `data:image/png;base64,${readFileSync(join(import.meta.dirname, '../fixtures/watermark.png')).toString('base64')}`;

/** Parameters for operations whose parameters have no defaults, or whose defaults tile trivially. */
export const sampleParams: Record<string, Array<Record<string, unknown>>> = {
  crop: [{ left: 37, top: 29, width: 211, height: 190 }],
  rotate: [{ angle: 90 }, { angle: 180 }, { angle: -90 }, { angle: 33 }],
  resize: [{ scale: 0.37 }, { width: 150, height: 120, fit: 'cover', position: 'northeast' }, { width: 180, height: 90, fit: 'contain' }],
  blur: [{ sigma: 2 }, { sigma: 6.5 }],
  threshold: [{ value: 128 }, { value: 'otsu' }],
  median: [{ size: 3 }, { size: 7 }],
  sharpen: [{}, { sigma: 2.5 }],
  clahe: [{}, { width: 31, height: 17 }],
  modulate: [{ brightness: 1.2, saturation: 0.5, hue: 40 }],
  convolve: [{ kernel: [[1, 2, 1, 2, 1], [2, 4, 8, 4, 2], [1, 2, 1, 2, 1]] }],
  erode: [{}, { size: 3, iterations: 4 }],
  composite: [{ image: watermark, gravity: 'centre', opacity: 0.7 }, { image: watermark, tile: true, opacity: 0.5, left: 7, top: 11 }],
  text: [{ text: 'DIPS\nexact', size: 37, gravity: 'north', colour: '#ff2000', opacity: 0.8 }],
  smartcrop: [{ width: 120, height: 150 }],
  extend: [{ top: 3, left: 20, colour: '#ff8000', opacity: 0.5 }],
};

export const MAX_PIXELS = 300_000_000;

/** The work of a tiled run done in this process on files in `workDir`, as workers do it (services/worker/tiled-tasks.ts). */
export class LocalTiledWork implements TiledRunWork {
  /** The encoded output, once encode ran. */
  output?: Buffer;

  constructor(
    private readonly source: string,
    private readonly workDir: string,
    private readonly encodeOptions: EncodeOptions,
    private readonly name = basename(source),
  ) {}

  path(intermediate: number): string {
    return join(this.workDir, `stage-${intermediate}.v`);
  }

  async decode(): Promise<ImageShape> {
    return decodeToIntermediate(this.source, this.path(0), { maxPixels: MAX_PIXELS, name: this.name });
  }

  async openParts(): Promise<undefined> {
    return undefined;
  }

  async closeParts(): Promise<void> {}

  async tile(job: TileJob, input: number, output: TileTarget | undefined, signal: AbortSignal): Promise<TileOutcome> {
    // As the master does (image-runner.ts): a strip encoding its band of the JPEG gets the job's encoder settings.
    const { format: _format, source: _source, quality, ...options } = this.encodeOptions;
    if (job.jpeg) job = { ...job, jpeg: { ...job.jpeg, ...(quality ? { quality } : {}), options } };
    const { bytes, outcome } = await runTileJob(job, job.decode ? this.source : await this.rows(input, job), { signal, maxPixels: MAX_PIXELS });
    if (bytes && output) {
      if ('segment' in output) await writeFile(this.segmentPath(output.segment), bytes);
      else if (output.part) await writeAt(this.path(output.intermediate), output.part.range.start, bytes);
      else await writeFile(this.path(output.intermediate), bytes);
    }
    return outcome;
  }

  private async rows(input: number, job: TileJob): Promise<Buffer> {
    const range = rowsRange(job.input, job.source);
    const file = await open(this.path(input), 'r');
    const rows = Buffer.alloc(range.end - range.start + 1);
    await file.read(rows, 0, rows.length, range.start).finally(() => file.close());
    return rows;
  }

  async encode(intermediate: number, shape: ImageShape): Promise<void> {
    this.output = await encodeIntermediate(this.path(intermediate), shape, this.encodeOptions);
  }

  private segmentPath(segment: number): string {
    return join(this.workDir, `jpeg-${segment}`);
  }

  async assemble(segments: number): Promise<void> {
    const parts: Buffer[] = [];
    for (let segment = 0; segment < segments; segment++) parts.push(await readFile(this.segmentPath(segment)));
    this.output = Buffer.concat(parts);
  }
}

/** The reference: the whole image through runSteps, encoded as lossless PNG (or as `encoding` says). */
export async function runWhole(source: string, pipeline: unknown, encoding: EncodeOptions = { format: 'png' }): Promise<{ output: Buffer; annotations: Annotations }> {
  const decoded = await decodeImage(source, { maxPixels: MAX_PIXELS, name: source });
  const { image, annotations } = await runSteps(decoded, parsePipeline(pipeline));
  return { output: await encodeImage(image, encoding), annotations };
}

/**
 * Plans with a forced tile size (the image must be larger than one tile) as the master does (the decoded
 * shape, the upload's format and whether it is progressive from openInput, so the first stage decodes its own rows where it can) and
 * runs the plan tiled to PNG (or as `encoding` says: a baseline JPEG is encoded by the last stage's strips).
 */
export async function runTiled(
  source: string,
  pipeline: unknown,
  tileSize: number,
  extra: Partial<TiledRunOptions> = {},
  encoding: EncodeOptions = { format: 'png' },
): Promise<{ output: Buffer; annotations: Annotations; plan: TiledPlan }> {
  const steps = parsePipeline(pipeline);
  const { width, height, channels, format, progressive, turned, plain } = await openInput(source, { maxPixels: MAX_PIXELS, name: source });
  const plan = planImage({ width, height, channels }, steps, { tileSize, inputFormat: format, inputProgressive: progressive, inputTurned: turned, inputPlain: plain, output: encoding });
  if (plan.mode !== 'tiled') throw new Error(`expected a tiled plan for ${width}x${height} at tile size ${tileSize}`);
  const workDir = await mkdtemp(join(tmpdir(), 'dips-tiled-'));
  try {
    const work = new LocalTiledWork(source, workDir, encoding);
    const result = await runTiledImage({ plan, work, name: basename(source), concurrency: 3, ...extra });
    return { output: work.output!, annotations: result.annotations, plan };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/** 8-bit samples of an encoded image (grey expanded to RGB) and the channel count it was stored with. */
async function decodeLossless(encoded: Buffer): Promise<RawImage & { stored: string }> {
  const { channels, space } = await sharp(encoded).metadata();
  const { data, info } = await sharp(encoded).raw().toBuffer({ resolveWithObject: true });
  const image = rawImage(data, info.width, info.height, info.channels);
  return { ...image, stored: `${channels} channels (${space})` };
}

/** 'identical', or where and how much two lossless encoded images differ (a readable assertion message). */
export async function difference(actualBytes: Buffer, expectedBytes: Buffer): Promise<string> {
  const [actual, expected] = await Promise.all([decodeLossless(actualBytes), decodeLossless(expectedBytes)]);
  if (actual.stored !== expected.stored) return `${actual.stored} instead of ${expected.stored}`;
  if (actual.width !== expected.width || actual.height !== expected.height) {
    return `${actual.width}x${actual.height} instead of ${expected.width}x${expected.height}`;
  }
  let count = 0;
  let first = -1;
  let largest = 0;
  for (let i = 0; i < actual.data.length; i++) {
    const delta = Math.abs(actual.data[i] - expected.data[i]);
    if (delta === 0) continue;
    if (first < 0) first = i;
    count++;
    largest = Math.max(largest, delta);
  }
  if (count === 0) return 'identical';
  const pixel = Math.floor(first / actual.channels);
  const [x, y] = [pixel % actual.width, Math.floor(pixel / actual.width)];
  return `${count} samples differ (largest by ${largest}), first at x=${x} y=${y}`;
}

/** Writes a crop of a corpus photo as PNG (lossless) and returns its path. */
export async function cropOf(dir: string, name: string, rect: { left: number; top: number; width: number; height: number }) {
  const path = join(dir, `${name}-${rect.width}x${rect.height}.png`);
  await sharp(corpus(name)).extract(rect).png().toFile(path);
  return path;
}
