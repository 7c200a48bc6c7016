import { greyChannel } from './operations/grayscale.js';
import { applySharp } from './sharp-raw.js';
/**
 * DCT perceptual hash (the classic pHash recipe): the grey image shrunk to 32×32, its 2-D DCT-II, and
 * one bit per coefficient of the 8×8 lowest frequencies: set when it is above their median. The shrink
 * throws away detail and encoding noise; low frequencies carry the image's layout, so re-encoded or
 * resized copies keep most bits while different photos agree on about half of them.
 */
const SAMPLE_EDGE = 32;
const HASH_EDGE = 8;
/** cos((2x + 1) u π / 2N) for the 8 kept frequencies u and the 32 sample positions x. */
const cosines = Float64Array.from({ length: HASH_EDGE * SAMPLE_EDGE }, (_, i) => {
    const u = Math.floor(i / SAMPLE_EDGE);
    const x = i % SAMPLE_EDGE;
    return Math.cos(((2 * x + 1) * u * Math.PI) / (2 * SAMPLE_EDGE));
});
/** The 8×8 lowest DCT-II coefficients of a 32×32 block (row u, column v), unnormalised. */
export function lowFrequencies(block) {
    const rows = new Float64Array(SAMPLE_EDGE * HASH_EDGE); // each row transformed along x
    for (let y = 0; y < SAMPLE_EDGE; y++) {
        for (let v = 0; v < HASH_EDGE; v++) {
            let sum = 0;
            for (let x = 0; x < SAMPLE_EDGE; x++)
                sum += block[y * SAMPLE_EDGE + x] * cosines[v * SAMPLE_EDGE + x];
            rows[y * HASH_EDGE + v] = sum;
        }
    }
    const out = new Float64Array(HASH_EDGE * HASH_EDGE);
    for (let u = 0; u < HASH_EDGE; u++) {
        for (let v = 0; v < HASH_EDGE; v++) {
            let sum = 0;
            for (let y = 0; y < SAMPLE_EDGE; y++)
                sum += rows[y * HASH_EDGE + v] * cosines[u * SAMPLE_EDGE + y];
            out[u * HASH_EDGE + v] = sum;
        }
    }
    return out;
}
/** 64 bits, most significant first, as 16 hex digits: bit i is set when coefficient i exceeds the median. */
export function hashFromCoefficients(coefficients) {
    const sorted = [...coefficients].sort((a, b) => a - b);
    const median = (sorted[31] + sorted[32]) / 2;
    let hex = '';
    for (let nibble = 0; nibble < 16; nibble++) {
        let value = 0;
        for (let bit = 0; bit < 4; bit++)
            value = (value << 1) | (coefficients[nibble * 4 + bit] > median ? 1 : 0);
        hex += value.toString(16);
    }
    return hex;
}
/** The 64-bit perceptual hash of an image (alpha ignored), as 16 hex digits. */
export async function perceptualHash(image) {
    const grey = greyChannel(image);
    const block = await applySharp(grey, (pipeline) => pipeline.resize(SAMPLE_EDGE, SAMPLE_EDGE, { fit: 'fill', kernel: 'lanczos3' }));
    return hashFromCoefficients(lowFrequencies(block.data));
}
/** Number of differing bits between two hashes of 16 hex digits (0 identical, 64 opposite). */
export function hammingDistance(a, b) {
    let distance = 0;
    for (let i = 0; i < 16; i += 4) {
        let x = Number.parseInt(a.slice(i, i + 4), 16) ^ Number.parseInt(b.slice(i, i + 4), 16);
        for (; x; x &= x - 1)
            distance += 1;
    }
    return distance;
}
//# sourceMappingURL=perceptual-hash.js.map