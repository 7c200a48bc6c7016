import { workSignature } from '../scaler/work.js';
/**
 * A learnt figure moves this share of the way to each new measurement: about the last five units make
 * it, so it follows a change of work within a few results and one slow outlier moves it little.
 */
const weightOfNewest = 0.2;
/** Classes remembered; the least recently seen is forgotten first, so memory stays bounded. */
const maxClasses = 256;
/**
 * How long a unit keeps a worker's slot busy, learnt from the processingMs workers report, for the
 * dispatcher to size each worker's window (the scaler's CostModel needs pixels and calibrated
 * pipelines; a batch item's pixels are unknown until its worker reads the header). Units of one class
 * cost about the same per pixel, or per unit when their pixels are unknown: a class is the kind and
 * the work, or the kind and the job when a unit names no work (a batch job's items share one pipeline;
 * the first items of a new job are estimated from the items of earlier jobs). A unit whose work is
 * named but never measured has no estimate: a new pipeline may be far heavier than others of its kind.
 */
export class ServiceTimes {
    /** Milliseconds per pixel (per unit when pixels are unknown), by class; insertion order is recency order. */
    learnt = new Map();
    static classOf(unit) {
        const per = unit.pixels > 0 ? 'px' : 'unit';
        if (unit.work)
            return { key: `${unit.kind}/${per}/${workSignature(unit.work)}` };
        return { key: `${unit.kind}/${per}/job:${unit.jobId}`, family: `${unit.kind}/${per}` };
    }
    /** Expected milliseconds of a slot for the unit; undefined while nothing of its class was measured. */
    estimate(unitClass, pixels) {
        const perScale = this.learnt.get(unitClass.key) ?? (unitClass.family === undefined ? undefined : this.learnt.get(unitClass.family));
        return perScale === undefined ? undefined : perScale * Math.max(1, pixels);
    }
    observe(unitClass, pixels, processingMs) {
        if (!Number.isFinite(processingMs) || processingMs < 0)
            return;
        const measured = processingMs / Math.max(1, pixels);
        this.learn(unitClass.key, measured);
        if (unitClass.family !== undefined)
            this.learn(unitClass.family, measured);
    }
    learn(key, measured) {
        const previous = this.learnt.get(key);
        this.learnt.delete(key);
        this.learnt.set(key, previous === undefined ? measured : previous + weightOfNewest * (measured - previous));
        if (this.learnt.size > maxClasses)
            this.learnt.delete(this.learnt.keys().next().value);
    }
}
//# sourceMappingURL=service-times.js.map