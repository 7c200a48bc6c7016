import { defaultMsPerMegapixel } from './cost-defaults.js';
import { workSignature } from './work.js';
/**
 * What work costs, learned from the processing time workers report per unit: slot-milliseconds per
 * megapixel of input, one figure per kind of work (pipeline, input and output format).
 *
 * Each kind keeps a weighted mean of what workers measured and the weight behind it, in units of
 * "one megapixel-sized unit". The estimate blends it with the calibrated cold-start default, which
 * counts as PRIOR_WEIGHT of such a unit:
 *   estimate = (learned · weight + default · PRIOR_WEIGHT) / (weight + PRIOR_WEIGHT)
 * - Learning: a unit of s = min(1, megapixels) adds s to the weight; the weight is capped at
 *   MAX_WEIGHT, which makes the mean an exponentially weighted one (a full-size unit then moves it by
 *   1/(MAX_WEIGHT+1), so the last few units dominate and one slow outlier does not).
 * - Aging: the weight halves every half-life the kind goes unseen, so the estimate slides back toward
 *   the default (after 4 half-lives it is mostly default again): costs change when workers change
 *   (another instance type, another release), and a stale measurement should not outvote the calibration.
 */
/** The calibration counts as a quarter of one measured unit: the first real measurement of this very pipeline mostly replaces it. */
const PRIOR_WEIGHT = 0.25;
/** About the last four megapixel-sized units make the learned figure: fast to follow, slow to be fooled by one. */
const MAX_WEIGHT = 4;
/** Units of a megapixel or more count fully; smaller ones are dominated by per-task overhead and count less. */
const FULL_WEIGHT_MEGAPIXELS = 1;
/**
 * A measurement more than this factor off the calibrated default is a measuring accident (a unit of a
 * few pixels, a paused VM), not the pipeline's cost: it is clipped to this range before it counts.
 */
const PLAUSIBLE_FACTOR = 20;
/** Kinds of work remembered; the least recently seen is forgotten first, so memory stays bounded. */
const MAX_KINDS = 500;
/** Default half-life of a learned cost, in seconds (DIPS_COST_HALF_LIFE). */
export const DEFAULT_COST_HALF_LIFE_SECONDS = 600;
export class CostModel {
    halfLifeMs;
    coldStart;
    /** Insertion order is recency order: a kind is re-inserted whenever it is seen. */
    learned = new Map();
    constructor(halfLifeMs = DEFAULT_COST_HALF_LIFE_SECONDS * 1000, coldStart = defaultMsPerMegapixel) {
        this.halfLifeMs = halfLifeMs;
        this.coldStart = coldStart;
    }
    /** A worker ran `pixels` of this kind of work in `processingMs` of one slot. */
    observe(kind, pixels, processingMs, now) {
        if (!(pixels > 0) || !Number.isFinite(processingMs) || processingMs < 0)
            return;
        const signature = workSignature(kind);
        const previous = this.learned.get(signature);
        const fallback = previous?.defaultMsPerMegapixel ?? this.coldStart(kind);
        const measured = Math.min(fallback * PLAUSIBLE_FACTOR, Math.max(fallback / PLAUSIBLE_FACTOR, processingMs / (pixels / 1e6)));
        const share = Math.min(1, pixels / 1e6 / FULL_WEIGHT_MEGAPIXELS);
        const weight = previous ? this.agedWeight(previous, now) : 0;
        const mean = previous ? previous.msPerMegapixel : measured;
        this.learned.delete(signature);
        this.learned.set(signature, {
            msPerMegapixel: (mean * weight + measured * share) / (weight + share),
            weight: Math.min(MAX_WEIGHT, weight + share),
            seenAt: now,
            defaultMsPerMegapixel: fallback,
        });
        if (this.learned.size > MAX_KINDS)
            this.learned.delete(this.learned.keys().next().value);
    }
    estimate(kind, now) {
        const entry = this.learned.get(workSignature(kind));
        if (!entry)
            return { msPerMegapixel: this.coldStart(kind), source: 'default' };
        const weight = this.agedWeight(entry, now);
        return {
            msPerMegapixel: (entry.msPerMegapixel * weight + entry.defaultMsPerMegapixel * PRIOR_WEIGHT) / (weight + PRIOR_WEIGHT),
            source: weight > PRIOR_WEIGHT ? 'learned' : 'default',
        };
    }
    agedWeight(entry, now) {
        return entry.weight * 2 ** (-Math.max(0, now - entry.seenAt) / this.halfLifeMs);
    }
}
export const emptyEstimate = { workerSeconds: 0, learnedWorkerSeconds: 0, defaultWorkerSeconds: 0, units: 0, pixels: 0 };
/**
 * Seconds of work for one worker: every item's pixels at its kind's cost, less what running units have
 * already run (never below zero: a unit past its estimate is about to finish, or its worker is stuck and
 * its lease will say so), divided by the slots a worker runs at once.
 */
export function estimateBacklog(work, costs, slotsPerWorker, now) {
    const total = { ...emptyEstimate };
    for (const item of work) {
        const { msPerMegapixel, source } = costs.estimate(item.kind, now);
        const seconds = Math.max(0, (msPerMegapixel * item.pixels) / 1e6 - item.runningMs) / 1000 / slotsPerWorker;
        total.workerSeconds += seconds;
        if (source === 'learned')
            total.learnedWorkerSeconds += seconds;
        else
            total.defaultWorkerSeconds += seconds;
        total.units += item.units;
        total.pixels += item.pixels;
    }
    return total;
}
//# sourceMappingURL=cost-model.js.map