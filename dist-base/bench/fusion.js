/**
 * Worker CPU per image of the whole-image path against plain sharp, on the bench's pipelines (bench/run.ts),
 * in one process, one image at a time, rounds interleaved so machine load hits every variant alike.
 * CPU is this process's utime + stime from /proc/self/stat (libvips' threads included).
 *   npm run build && node dist/bench/fusion.js [rounds]
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { decodeImage } from '../services/image-core/decode.js';
import { encodeImage } from '../services/image-core/encode.js';
import { parsePipeline, runSteps } from '../services/image-core/pipeline.js';
import { processImage } from '../services/image-core/process-image.js';
import { corpusPhotos } from './images.js';
const CLOCK_TICKS_PER_SECOND = 100; // Linux USER_HZ
const maxPixels = 268_402_689;
async function cpuSeconds() {
    const fields = (await readFile('/proc/self/stat', 'utf8')).split(') ')[1].split(' ');
    // utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}
const workloads = [
    { name: 'blur σ2', pipeline: [{ op: 'blur', sigma: 2 }], plain: (image) => image.blur(2) },
    { name: 'grayscale + sharpen', pipeline: [{ op: 'grayscale' }, { op: 'sharpen' }], plain: (image) => image.grayscale().sharpen() },
    { name: 'resize 50%', pipeline: [{ op: 'resize', scale: 0.5 }], plain: (image, width) => image.resize({ width: Math.round(width / 2) }) },
];
const variants = {
    'plain sharp': async (_file, input, { plain }) => {
        const { width } = await sharp(input).metadata();
        return plain(sharp(input), width).jpeg({ quality: 90, optimiseCoding: false, chromaSubsampling: '4:2:0' }).toBuffer();
    },
    'processImage (fused)': async (file, input, { pipeline }) => (await processImage(input, parsePipeline(pipeline), { format: 'jpeg', quality: 90 }, { maxPixels, name: file })).data,
    'step by step (before)': async (file, input, { pipeline }) => {
        const decoded = await decodeImage(input, { maxPixels, name: file });
        const { image } = await runSteps(decoded, parsePipeline(pipeline));
        return encodeImage(image, { format: 'jpeg', quality: 90 });
    },
};
async function main() {
    const rounds = Number(process.argv[2] ?? 3);
    const photos = await Promise.all((await corpusPhotos()).map(async (file) => ({ file, input: await readFile(file) })));
    console.log(`${photos.length} corpus photos, ${rounds} rounds, one image at a time; CPU ms per image`);
    for (const workload of workloads) {
        const totals = Object.fromEntries(Object.keys(variants).map((name) => [name, 0]));
        for (const [name, run] of Object.entries(variants))
            await run(photos[0].file, photos[0].input, workload); // warm up
        for (let round = 0; round < rounds; round++) {
            for (const [name, run] of Object.entries(variants)) {
                const before = await cpuSeconds();
                for (const { file, input } of photos)
                    await run(file, input, workload);
                totals[name] += (await cpuSeconds()) - before;
            }
        }
        const perImage = (name) => (1000 * totals[name]) / (rounds * photos.length);
        const plain = perImage('plain sharp');
        const cells = Object.keys(variants).map((name) => `${name} ${perImage(name).toFixed(1)} ms (${(perImage(name) / plain).toFixed(2)}x)`);
        console.log(`${workload.name}: ${cells.join(' | ')}`);
    }
}
await main();
//# sourceMappingURL=fusion.js.map