/**
 * Plain sharp on one very large image, in a process of its own so its peak memory and CPU are its own:
 * `node dist/bench/plain-sharp-huge.js IN OUT SIGMA` prints {"seconds", "cpuSeconds", "peakBytes",
 * "threads"} (threads: sharp.concurrency(), libvips' threads per image: 1 on glibc without jemalloc).
 */
import sharp from 'sharp';

const [input, output, sigma] = process.argv.slice(2);
if (!input || !output || !sigma) throw new Error('usage: plain-sharp-huge IN OUT SIGMA');
const start = process.hrtime.bigint();
await sharp(input, { limitInputPixels: false }).blur(Number(sigma)).jpeg({ quality: 90 }).toFile(output);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const { userCPUTime, systemCPUTime, maxRSS } = process.resourceUsage();
process.stdout.write(JSON.stringify({ seconds, cpuSeconds: (userCPUTime + systemCPUTime) / 1e6, peakBytes: maxRSS * 1024, threads: sharp.concurrency() }));
