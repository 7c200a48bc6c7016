/**
 * Plain sharp on one very large image, in a process of its own so its peak memory is its own:
 * `node dist/bench/plain-sharp-huge.js IN OUT SIGMA` prints {"seconds", "peakBytes"}.
 */
import sharp from 'sharp';

const [input, output, sigma] = process.argv.slice(2);
if (!input || !output || !sigma) throw new Error('usage: plain-sharp-huge IN OUT SIGMA');
const start = process.hrtime.bigint();
await sharp(input, { limitInputPixels: false }).blur(Number(sigma)).jpeg({ quality: 90 }).toFile(output);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
process.stdout.write(JSON.stringify({ seconds, peakBytes: process.resourceUsage().maxRSS * 1024 }));
