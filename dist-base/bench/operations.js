/**
 * Speed of the newer operations in MP/s: one decoded corpus photo, each op applied alone on the whole
 * image, best of three, this process only. `npm run build && node dist/bench/operations.js [photo]`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { findOperation } from '../services/image-core/catalogue.js';
import { decodeImage } from '../services/image-core/decode.js';
const photo = process.argv[2] ?? path.resolve(import.meta.dirname, '../../test/fixtures/corpus/twowings-4k.jpg');
const watermark = `data:image/png;base64,${readFileSync(path.resolve(import.meta.dirname, '../../test/fixtures/watermark.png')).toString('base64')}`;
const cases = [
    ['composite', { image: watermark }],
    ['composite', { image: watermark, tile: true, opacity: 0.4 }],
    ['text', { text: 'DIPS benchmark © 2026', size: 96 }],
    ['smartcrop', { width: 800, height: 800 }],
    ['smartcrop', { width: 800, height: 800, strategy: 'entropy' }],
    ['trim', {}],
    ['extend', { top: 50, right: 50, bottom: 50, left: 50 }],
    ['phash', {}],
    ['thumbhash', {}],
    ['metadata', {}],
];
const image = await decodeImage(photo, { maxPixels: 100_000_000, name: photo });
const megapixels = (image.width * image.height) / 1e6;
console.log(`${path.basename(photo)}: ${image.width}x${image.height} (${megapixels.toFixed(1)} MP)`);
for (const [name, raw] of cases) {
    const op = findOperation(name);
    const params = op.params.parse(raw);
    let best = Infinity;
    for (let run = 0; run < 3; run++) {
        const start = performance.now();
        await op.apply(image, params, { source: photo, annotate: () => { } }); // analysis ops skip work nobody reads
        best = Math.min(best, performance.now() - start);
    }
    console.log(`${name} ${JSON.stringify(raw).replace(watermark, '<watermark>')}: ${(megapixels / (best / 1000)).toFixed(1)} MP/s (${best.toFixed(0)} ms)`);
}
//# sourceMappingURL=operations.js.map