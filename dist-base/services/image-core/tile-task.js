import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { inputErrorFrom, openInput } from './decode.js';
import { encodePipeline } from './encode.js';
import { executeTileTask } from './execute-tile.js';
import { cutRows, headerFor, readHeader, writeIntermediate } from './intermediate.js';
import { encodeRestartBand, rawBand } from './jpeg-restart.js';
import { parsePipeline } from './pipeline.js';
import { tilingOf } from './planner.js';
import { fusionOf } from './process-image.js';
import { rawResult, toRawImage } from './sharp-raw.js';
/**
 * Runs a tile on the bytes of its rows (or, with `job.decode`, on the upload, a buffer or a file path)
 * and returns the bytes to write, in order and never joined (a strip can be 150 MB): a tiled stage's core
 * (after the .v header when the core starts the image, see coreRange), its band of the output JPEG
 * (`job.jpeg`), or a whole stage's complete .v file.
 */
export async function runTileJob(job, input, options) {
    const decoding = job.decode && (await decodeTileRows(input, job, { name: job.decode.name, maxPixels: options.maxPixels }));
    if (decoding && decoding.steps.length === 0 && job.jpeg && !job.histogramFor)
        return encodeStripThroughFile(decoding.rows, job, job.decode.name);
    const { tile, steps } = decoding ? { tile: await decoding.tile(), steps: decoding.steps } : { tile: cutRows(input, job.input, job.source), steps: job.steps };
    const task = {
        steps,
        tile,
        source: job.source,
        imageSize: { width: job.input.width, height: job.input.height },
        returnCore: job.returnCore,
        ...(job.core ? { core: job.core } : {}),
        ...(job.histogram ? { histogram: Uint32Array.from(job.histogram) } : {}),
        ...(job.histogramFor ? { histogramFor: job.histogramFor } : {}),
    };
    const result = await executeTileTask(task, options.signal);
    const shape = result.core ? { width: result.core.width, height: result.core.height, channels: result.core.channels } : job.input;
    const outcome = {
        ...shape,
        annotations: result.annotations,
        ...(result.histogram ? { histogram: Array.from(result.histogram) } : {}),
    };
    if (!result.core)
        return { outcome };
    if (job.output && job.output.channels !== shape.channels) {
        throw new Error(`the stage made ${shape.channels}-channel pixels where its plan expects ${job.output.channels}`);
    }
    if (job.jpeg)
        return { bytes: await encodeBand(rawBand(result.core), job), outcome };
    const startsFile = !job.core || (job.core.x === 0 && job.core.y === 0);
    return { bytes: startsFile ? [await headerFor(job.output ?? shape), result.core.data] : [result.core.data], outcome };
}
/** A tile's core as its band of the output JPEG (job.jpeg). */
function encodeBand(band, job) {
    if (!job.jpeg || !job.core || !job.output)
        throw new Error('a tile encoding its part of the JPEG needs its core and the stage output shape');
    const { pieceRows, quality, options } = job.jpeg;
    const at = { y: job.core.y, imageHeight: job.output.height, pieceRows };
    return encodeRestartBand(band, at, { ...options, format: 'jpeg', ...(quality ? { quality } : {}) });
}
/**
 * A decoding strip whose steps all ran in its decode call, encoding its band of the JPEG: libvips streams
 * the strip into a scratch .v file and each piece is encoded from that file, so the strip's pixels are
 * never held in memory besides the copy sharp's blur keeps of its input (a blurred 10000x5000 strip of the
 * 100 MP JPEG: 237 MiB peak instead of 367, the same CPU).
 */
async function encodeStripThroughFile(strip, job, name) {
    const scratch = join(tmpdir(), `dips-strip-${randomBytes(6).toString('hex')}.v`);
    try {
        await strip.toFile(scratch).catch((error) => {
            throw inputErrorFrom(error, name);
        });
        const shape = await readHeader(scratch);
        const core = job.core;
        if (shape.width !== core.width || shape.channels !== job.output?.channels) {
            throw new Error(`the strip made ${shape.width}-wide ${shape.channels}-channel pixels where its plan expects ${core.width} wide with ${job.output?.channels}`);
        }
        const skip = core.y - job.source.y;
        const band = {
            ...shape,
            height: core.height,
            rows: (top, rows) => sharp(scratch, { limitInputPixels: false }).extract({ left: 0, top: skip + top, width: shape.width, height: rows }),
        };
        return { bytes: await encodeBand(band, job), outcome: { width: core.width, height: core.height, channels: shape.channels, annotations: {} } };
    }
    finally {
        await rm(scratch, { force: true });
    }
}
/**
 * The pixels of `job.source` decoded from the upload itself: libvips decodes JPEG and PNG rows in
 * order and stops after the last one the extract needs. The stage's first step joins the same sharp call
 * when processImage would fuse it with the decode (fusionOf: a plain file, a sharp-native step) and it
 * does not move pixels (runSteps tracks where a moved tile lies). Returns that call (`rows`), the steps
 * left, and `tile()`, which runs the call into raw pixels.
 */
async function decodeTileRows(upload, job, options) {
    const opened = await openInput(upload, options);
    const { input, source } = job;
    if (opened.width !== input.width || opened.height !== input.height || opened.channels !== input.channels) {
        throw new Error(`${options.name} decodes to ${opened.width}x${opened.height} with ${opened.channels} channels; the plan expected ` +
            `${input.width}x${input.height} with ${input.channels}`);
    }
    const steps = parsePipeline(job.steps);
    const [first] = steps;
    const fused = fusionOf(steps, opened).withDecode === 1 && tilingOf(first) !== 'move';
    // extract after autoOrient: sharp orients first (orientBefore), so these are rows of the upright image.
    const extracted = opened.pipeline.extract({ left: source.x, top: source.y, width: source.width, height: source.height });
    const rows = fused ? first.op.sharp.build(extracted, first.params, source) : extracted;
    const tile = () => (fused ? rawResult(rows, opened.channels) : toRawImage(rows)).catch((error) => {
        throw inputErrorFrom(error, options.name);
    });
    return { rows, tile, steps: job.steps.slice(fused ? 1 : 0) };
}
/** Decodes an upload into the run's first intermediate (.v at `path`) and returns its shape. */
export async function decodeToIntermediate(input, path, options) {
    const { pipeline } = await openInput(input, options);
    return writeIntermediate(pipeline, path).catch((error) => {
        throw inputErrorFrom(error, options.name);
    });
}
/** Encodes the last intermediate (sharp reads the .v file itself, row by row). */
export function encodeIntermediate(path, shape, options) {
    return encodePipeline(sharp(path, { limitInputPixels: false }), shape, options);
}
//# sourceMappingURL=tile-task.js.map