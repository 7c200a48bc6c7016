import { z } from 'zod';
import { findOperation } from '../image-core/catalogue.js';
import { haloOf } from '../image-core/operation.js';
import calibrationFile from './cost-calibration.json' with { type: 'json' };
/**
 * Cold-start costs: what a kind of work costs before the master has seen a worker run it. They come
 * from `npm run bench` (bench/calibrate.ts), which times decoding, encoding and every catalogue
 * operation on a real photograph with as many tasks in flight as the machine has cores, as a worker's
 * slots run them, and writes cost-calibration.json beside this file.
 */
const costPoint = z.object({
    /** The parameters the operation was timed with. */
    params: z.record(z.string(), z.unknown()),
    /** The operation's halo for those parameters: how far its neighbourhood reaches, what its cost grows with. */
    halo: z.number().min(0),
    msPerMegapixel: z.number().positive(),
});
export const calibrationSchema = z.object({
    measuredAt: z.string(),
    /** CPU, cores, sharp and libvips versions of the machine that measured. */
    machine: z.string(),
    photo: z.string(),
    /** Tasks running at once while timing (a worker runs one per slot, one slot per core by default). */
    concurrency: z.number().int().positive(),
    /** Milliseconds of one task slot per megapixel of input, by format. */
    decode: z.record(z.string(), z.number().positive()),
    encode: z.record(z.string(), z.number().positive()),
    /** Per operation, one or more timings at different halos, in increasing halo order. */
    operations: z.record(z.string(), z.array(costPoint).min(1)),
});
export const measuredCalibration = calibrationSchema.parse(calibrationFile);
/** The middle of a list: what an operation or format nobody calibrated is assumed to cost. */
function median(values) {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
/**
 * An operation's cost at a halo: linear between the calibrated points, the outer segments' slopes
 * beyond them (a neighbourhood filter costs more the further it reaches), never below the cheapest
 * point (a smaller window still reads and writes every pixel).
 */
export function costAtHalo(points, halo) {
    if (points.length === 1)
        return points[0].msPerMegapixel;
    let segment = points.findIndex((point) => point.halo >= halo);
    segment = segment <= 0 ? 1 : segment;
    if (halo > points[points.length - 1].halo)
        segment = points.length - 1;
    const low = points[segment - 1];
    const high = points[segment];
    const slope = high.halo === low.halo ? 0 : (high.msPerMegapixel - low.msPerMegapixel) / (high.halo - low.halo);
    const cheapest = Math.min(...points.map((point) => point.msPerMegapixel));
    return Math.max(cheapest, low.msPerMegapixel + slope * (halo - low.halo));
}
/**
 * The cold-start cost of a kind of work, in slot-milliseconds per megapixel of input: decoding, each
 * step at its parameters, encoding. An operation, format or parameter set the calibration does not
 * know costs the median of what it does know, so a new operation is neither free nor alarming.
 */
export function defaultMsPerMegapixel(kind, calibration = measuredCalibration) {
    const decode = kind.decode === undefined ? 0 : (calibration.decode[kind.decode] ?? median(Object.values(calibration.decode)));
    const encode = kind.encode === undefined ? 0 : (calibration.encode[kind.encode] ?? median(Object.values(calibration.encode)));
    const unknownOperation = median(Object.values(calibration.operations).map((points) => points[0].msPerMegapixel));
    let steps = 0;
    for (const { op, ...params } of kind.pipeline) {
        const points = typeof op === 'string' ? calibration.operations[op] : undefined;
        const declaration = typeof op === 'string' ? findOperation(op) : undefined;
        if (!points || !declaration) {
            steps += unknownOperation;
            continue;
        }
        const parsed = declaration.params.safeParse(params);
        steps += parsed.success ? costAtHalo(points, haloOf(declaration.tiling, parsed.data)) : unknownOperation;
    }
    return decode + steps + encode;
}
//# sourceMappingURL=cost-defaults.js.map