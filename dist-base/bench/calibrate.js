/**
 * `npm run calibrate` (and the first step of `npm run bench`): times decoding, encoding and every
 * catalogue operation on a real photograph, and writes services/scaler/cost-calibration.json, the
 * scaler's cold-start costs (services/scaler/cost-defaults.ts) until it has learned from workers.
 *
 * Method: a 1280×800 crop of test/fixtures/corpus/twowings-4k.jpg (real detail, 1 MP, so the slowest
 * operations take seconds, not minutes); as many tasks at once as the machine has cores, because a
 * worker runs one task per slot and one slot per core by default, and a slot's time per unit is what
 * workers report (processingMs). One warm-up round, then ROUNDS rounds; the figure is the median task
 * time divided by the crop's megapixels. Neighbourhood operations are timed at two or three sizes, as
 * their cost grows with how far they reach (their halo).
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { operations } from '../services/image-core/catalogue.js';
import { haloOf } from '../services/image-core/operation.js';
import { decodeImage } from '../services/image-core/decode.js';
import { encodeImage } from '../services/image-core/encode.js';
import { outputFormats } from '../services/protocol/output.js';
import { corpusDir } from './images.js';
const ROUNDS = 3;
const CROP = { left: 1280, top: 800, width: 1280, height: 800 };
const PHOTO = 'twowings-4k.jpg';
export const calibrationFile = path.resolve(import.meta.dirname, '../../services/scaler/cost-calibration.json');
/**
 * Parameters to time each operation with: two or three neighbourhood sizes for neighbourhood filters,
 * the required parameters for operations that have some; every other operation runs on its defaults.
 */
const timedWith = {
    blur: [{ sigma: 2 }, { sigma: 8 }, { sigma: 32 }],
    sharpen: [{ sigma: 1 }, { sigma: 8 }],
    median: [{ size: 3 }, { size: 9 }, { size: 25 }],
    erode: [{ size: 3 }, { size: 15 }],
    dilate: [{ size: 3 }, { size: 15 }],
    convolve: [
        { kernel: [[0, -1, 0], [-1, 5, -1], [0, -1, 0]] },
        { kernel: Array.from({ length: 9 }, () => Array.from({ length: 9 }, () => 1)) },
    ],
    resize: [{ width: 640 }],
    rotate: [{ angle: 30 }],
    crop: [{ left: 100, top: 100, width: 800, height: 500 }],
};
/** Runs `concurrency` copies of the task at once, ROUNDS times after a warm-up; median task ms per MP. */
async function msPerMegapixel(task, megapixels, concurrency) {
    const times = [];
    for (let round = 0; round <= ROUNDS; round++) {
        const durations = await Promise.all(Array.from({ length: concurrency }, async () => {
            const started = performance.now();
            await task();
            return performance.now() - started;
        }));
        if (round > 0)
            times.push(...durations);
    }
    times.sort((a, b) => a - b);
    return Number((times[Math.floor(times.length / 2)] / megapixels).toFixed(2));
}
async function calibrate() {
    const concurrency = os.availableParallelism();
    const { data, info } = await sharp(path.join(corpusDir, PHOTO)).extract(CROP).raw().toBuffer({ resolveWithObject: true });
    const image = { data, width: info.width, height: info.height, channels: info.channels };
    const megapixels = (image.width * image.height) / 1e6;
    const log = (what, value) => console.log(`${what.padEnd(40)} ${value.toFixed(2).padStart(9)} ms/MP`);
    const decode = {};
    const encode = {};
    for (const format of outputFormats) {
        const encoded = await encodeImage(image, { format });
        encode[format] = await msPerMegapixel(() => encodeImage(image, { format }), megapixels, concurrency);
        decode[format] = await msPerMegapixel(() => decodeImage(encoded, { maxPixels: 1e8, name: PHOTO }), megapixels, concurrency);
        log(`decode ${format}`, decode[format]);
        log(`encode ${format}`, encode[format]);
    }
    const timed = {};
    for (const op of operations) {
        const points = [];
        for (const raw of timedWith[op.name] ?? [{}]) {
            const parsed = op.params.safeParse(raw);
            if (!parsed.success) {
                console.warn(`${op.name}: no valid calibration parameters (${parsed.error.issues[0]?.message}); it will cost the median operation`);
                continue;
            }
            const params = parsed.data;
            const cost = await msPerMegapixel(() => op.apply(image, params, {}), megapixels, concurrency);
            log(`${op.name} ${JSON.stringify(raw)}`, cost);
            points.push({ params: raw, halo: haloOf(op.tiling, params), msPerMegapixel: Math.max(cost, 0.01) });
        }
        if (points.length > 0)
            timed[op.name] = points.sort((a, b) => a.halo - b.halo);
    }
    const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
    return {
        measuredAt: new Date().toISOString(),
        machine: `${concurrency} × ${cpu}; sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}; load average ${os.loadavg()[0].toFixed(1)}`,
        photo: `${PHOTO}, ${CROP.width}×${CROP.height} crop at (${CROP.left}, ${CROP.top})`,
        concurrency,
        decode,
        encode,
        operations: timed,
    };
}
const calibration = await calibrate();
await writeFile(calibrationFile, `${JSON.stringify(calibration, null, 2)}\n`);
console.log(`wrote ${path.relative(process.cwd(), calibrationFile)}`);
//# sourceMappingURL=calibrate.js.map