/**
 * blurfaces: model load time, speed (MP/s, wall and CPU) and what it finds on the corpus photos, and
 * the smallest face it finds (the astronaut's face pasted on dune.jpg at shrinking sizes).
 * `npm run build && node dist/bench/faces.js`. One process, the op alone on decoded pixels.
 */
import path from 'node:path';
import { decodeImage } from '../services/image-core/decode.js';
import { detectFaces } from '../services/image-core/face-detector.js';
import { blurfaces } from '../services/image-core/operations/blurfaces.js';
import { applySharp } from '../services/image-core/sharp-raw.js';
import { corpusDir } from './images.js';
import { processCounters } from './proc.js';
const photos = ['faces/astronaut.jpg', 'faces/cameraman.jpg', 'aqua.jpg', 'dune.jpg', 'freshflower.jpg', 'garden-odd.png', 'ladybird.jpg', 'qr-on-photo.jpg', 'storm.jpg', 'wood.jpg', 'twowings-4k.jpg'];
/** The astronaut's face spans about 140 of her photo's 512 px (measured: blurfaces' box before padding). */
const FACE_IN_ASTRONAUT = 140 / 512;
/** Face widths tried, as fractions of the background's short side. */
const FACE_FRACTIONS = [0.2, 0.1, 0.06, 0.04, 0.03, 0.02];
const decode = (name) => decodeImage(path.join(corpusDir, name), { maxPixels: 100_000_000, name });
const defaults = blurfaces.params.parse({});
async function timed(work) {
    const before = await processCounters(process.pid);
    const start = performance.now();
    const result = await work();
    const wallMs = performance.now() - start;
    return { result, wallMs, cpuMs: (await processCounters(process.pid)).cpuMs - before.cpuMs };
}
const load = await timed(() => detectFaces({ data: Buffer.alloc(256 * 256 * 3), width: 256, height: 256, channels: 3 }));
console.log(`model load and first detection: ${load.wallMs.toFixed(0)} ms (CPU ${load.cpuMs.toFixed(0)} ms)`);
console.log('\n| photo | size | faces blurred (score) | wall ms | CPU ms | MP/s (wall) | MP/s (CPU) |\n| --- | --- | --- | --- | --- | --- | --- |');
for (const name of photos) {
    const image = await decode(name);
    let faces = [];
    const run = await timed(() => blurfaces.apply(image, defaults, { annotate: (value) => (faces = value) }));
    const megapixels = (image.width * image.height) / 1e6;
    const found = faces.map((face) => `${face.width}x${face.height} at ${face.x},${face.y} (${face.score})`).join(', ') || 'none';
    console.log(`| ${name} | ${image.width}x${image.height} | ${found} | ${run.wallMs.toFixed(0)} | ${run.cpuMs.toFixed(0)} | ${(megapixels / (run.wallMs / 1000)).toFixed(2)} | ${(megapixels / (run.cpuMs / 1000)).toFixed(2)} |`);
}
console.log('\n| face width / short side | face px | found (score) |\n| --- | --- | --- |');
const background = await decode('dune.jpg');
const astronaut = await decode('faces/astronaut.jpg');
for (const fraction of FACE_FRACTIONS) {
    const side = Math.round((fraction * Math.min(background.width, background.height)) / FACE_IN_ASTRONAUT);
    const small = await applySharp(astronaut, (pipeline) => pipeline.resize(side, side));
    const scene = await applySharp(background, (pipeline) => pipeline.composite([{ input: small.data, raw: { width: side, height: side, channels: small.channels }, left: 600, top: 300 }]));
    const faces = (await detectFaces(scene)).filter((face) => face.score >= defaults.minConfidence);
    const found = faces.map((face) => face.score.toFixed(2)).join(', ') || 'no';
    console.log(`| ${(fraction * 100).toFixed(0)}% | ${Math.round(side * FACE_IN_ASTRONAUT)} | ${found} |`);
}
//# sourceMappingURL=faces.js.map