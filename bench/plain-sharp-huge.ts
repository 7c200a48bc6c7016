/**
 * Plain sharp on one very large image, in a process of its own so its peak memory and CPU are its own:
 * `node dist/bench/plain-sharp-huge.js IN OUT SIGMA [OPTIMISE]` prints {"seconds", "cpuSeconds",
 * "peakBytes", "threads"} (threads: sharp.concurrency(), libvips' threads per image: 1 on glibc without
 * jemalloc). OPTIMISE `false` turns off sharp's default Huffman optimisation (DIPS' JPEG setting): the
 * optimisation buffers the whole image's coefficients for a second pass, 2.4 CPU-s and 950 MiB against
 * 1.4-1.9 CPU-s and 380 MiB without it on the 100 MP mosaic.
 */
import sharp from 'sharp';
import { peakRss } from './proc.js';

const [input, output, sigma, optimise = 'true'] = process.argv.slice(2);
if (!input || !output || !sigma || !['true', 'false'].includes(optimise)) throw new Error('usage: plain-sharp-huge IN OUT SIGMA [true|false]');
const start = process.hrtime.bigint();
await sharp(input, { limitInputPixels: false }).blur(Number(sigma)).jpeg({ quality: 90, optimiseCoding: optimise === 'true' }).toFile(output);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const { userCPUTime, systemCPUTime } = process.resourceUsage();
process.stdout.write(JSON.stringify({ seconds, cpuSeconds: (userCPUTime + systemCPUTime) / 1e6, peakBytes: await peakRss('self'), threads: sharp.concurrency() }));
