/**
 * `npm run simulate`: replays a bursty, day-long workload of mixed pipelines through the real scaling
 * code (services/scaler: cost model, boot clock, policy) with a model of EC2 start-up time, and compares
 * three pools: the pixel-only policy (one fixed 80 MP/s per worker, 30 s target: the policy before
 * #14), the cost-aware policy (learned costs from calibrated defaults, target = measured boot time) and a
 * fixed pool of --max workers. Seeded: every run prints the same figures.
 *
 * Workload (one day, per second):
 * - steady traffic: Poisson arrivals at 0.5 images/s at night rising to 6 images/s at 14:00 (a squared
 *   sine between 06:00 and 22:00), each image drawing its pipeline from `steadyMix` (cheap thumbnails
 *   and grey conversions interleaved with expensive median and sharpen pipelines);
 * - daytime batches (08:00-20:00): on average one an hour, log-normal size (median 200 images, capped
 *   at 2,000), of 12 MP photos, alternately a cheap (grayscale) and an expensive (blur σ8 + median 5)
 *   pipeline, arriving all at once;
 * - a nightly re-processing batch at 02:00 of 5,000 thumbnails of 1.3 MP.
 * Costs: each pipeline truly costs its calibrated default (services/scaler/cost-calibration.json, from
 * `npm run bench`) times a seeded factor of 0.5-2 (the calibration sums steps timed one by one; real
 * workers fuse or contend), which the cost-aware policy has to learn from finished images.
 * Model: work is fluid (a worker's 2 slots drain slot-milliseconds, images finish in arrival order); the
 * scaler ticks every `tick` seconds; a new instance serves after a uniform 60-90 s (EC2 boot plus
 * service start) and is billed from launch, at least 60 s (per-second billing).
 */
import { Command, InvalidArgumentError } from 'commander';
import { BootClock } from '../services/scaler/boot-clock.js';
import { DEFAULT_BOOT_SECONDS, parseScalingPolicy } from '../services/scaler/config.js';
import { defaultMsPerMegapixel } from '../services/scaler/cost-defaults.js';
import { CostModel, estimateBacklog } from '../services/scaler/cost-model.js';
import { decideCapacity, initialPolicyMemory } from '../services/scaler/policy.js';
const DAY_SECONDS = 24 * 3600;
const MINIMUM_BILLED_SECONDS = 60;
/** Slots per worker: a 2-vCPU instance runs one task per core. */
const SLOTS = 2;
/** The pixel-only policy as it was: 80 MP/s per worker (blur σ2 on 2 cores) and 30 s of backlog per worker. */
const PIXEL_ONLY = { pixelsPerSecond: 80e6, targetSeconds: 30 };
const jpeg = (pipeline, megapixels, name) => ({ name, megapixels, kind: { pipeline, decode: 'jpeg', encode: 'jpeg' } });
const thumbnail = jpeg([{ op: 'resize', width: 320, fit: 'inside' }], 1.3, 'thumbnail');
const grey = jpeg([{ op: 'grayscale' }], 1.3, 'grey');
const soft = jpeg([{ op: 'blur', sigma: 2 }], 1.3, 'blur σ2');
const denoise = jpeg([{ op: 'median', size: 5 }], 1.3, 'median 5');
const crisp = jpeg([{ op: 'sharpen', sigma: 1 }], 1.3, 'sharpen');
const batchCheap = jpeg([{ op: 'grayscale' }], 12, 'batch grey 12 MP');
const batchExpensive = jpeg([{ op: 'blur', sigma: 8 }, { op: 'median', size: 5 }], 12, 'batch blur σ8 + median 5, 12 MP');
/** Steady traffic: [pipeline, share of images]. */
const steadyMix = [[thumbnail, 0.5], [grey, 0.2], [soft, 0.15], [denoise, 0.1], [crisp, 0.05]];
/** mulberry32: small, fast, good enough for a workload generator, and reproducible from a seed. */
function seededRandom(seed) {
    let state = seed >>> 0;
    return () => {
        state = (state + 0x6d2b79f5) >>> 0;
        let mixed = state;
        mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
        mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
        return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
    };
}
function poisson(random, mean) {
    // Knuth for small means, a normal approximation for large ones.
    if (mean > 30)
        return Math.max(0, Math.round(mean + Math.sqrt(mean) * gaussian(random)));
    const limit = Math.exp(-mean);
    let count = 0;
    for (let product = random(); product > limit; product *= random())
        count += 1;
    return count;
}
function gaussian(random) {
    return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}
/** Images per second of steady traffic at a time of day. */
function steadyRate(second) {
    const hour = second / 3600;
    const night = 0.5;
    const peak = 6;
    if (hour < 6 || hour > 22)
        return night;
    return night + (peak - night) * Math.sin((Math.PI * (hour - 6)) / 16) ** 2;
}
/** The whole day's arrivals, indexed by second. */
function generateWorkload(seed) {
    const random = seededRandom(seed);
    const arrivals = Array.from({ length: DAY_SECONDS }, () => []);
    const add = (second, images, pipeline) => {
        if (images > 0)
            arrivals[second].push({ arrival: second, pipeline, images, remainingPixels: images * pipeline.megapixels * 1e6 });
    };
    let batches = 0;
    for (let second = 0; second < DAY_SECONDS; second++) {
        let images = poisson(random, steadyRate(second));
        for (const [pipeline, share] of steadyMix) {
            const some = Math.min(images, poisson(random, images * share));
            add(second, some, pipeline);
            images -= some;
        }
        add(second, images, thumbnail);
        const hour = second / 3600;
        if (hour >= 8 && hour < 20 && random() < 1 / 3600) {
            add(second, Math.min(2000, Math.round(200 * Math.exp(gaussian(random)))), batches++ % 2 ? batchExpensive : batchCheap);
        }
    }
    add(2 * 3600, 5000, thumbnail);
    return arrivals;
}
/** The true cost of each pipeline: its calibrated default times a seeded factor of 0.5-2. */
function trueCosts(seed) {
    const random = seededRandom(seed ^ 0xc057);
    const pipelines = [...new Set([...steadyMix.map(([pipeline]) => pipeline), thumbnail, batchCheap, batchExpensive])];
    return new Map(pipelines.map((pipeline) => [pipeline, defaultMsPerMegapixel(pipeline.kind) * 2 ** (2 * random() - 1)]));
}
/** Image-weighted waits at one-second resolution. */
class WaitHistogram {
    images = new Float64Array(DAY_SECONDS * 2);
    total = 0;
    longest = 0;
    record(waitSeconds, images) {
        const bucket = Math.min(this.images.length - 1, Math.max(0, Math.round(waitSeconds)));
        this.images[bucket] += images;
        this.total += images;
        this.longest = Math.max(this.longest, bucket);
    }
    get max() {
        return this.longest;
    }
    percentile(fraction) {
        let seen = 0;
        for (let wait = 0; wait < this.images.length; wait++) {
            seen += this.images[wait];
            if (seen >= fraction * this.total)
                return wait;
        }
        return this.images.length;
    }
    get count() {
        return this.total;
    }
}
/**
 * Runs the day. The pool is asked once per tick for the size wanted; the fleet model launches (ready
 * after boot) or stops instances to follow it, and tells the pool what finished and what it cost.
 */
function simulate(name, arrivals, costs, settings, pool) {
    const bootRandom = seededRandom(settings.seed ^ 0x5eed);
    const queue = [];
    let head = 0;
    const fleet = [];
    let desired = 0;
    let peakWorkers = 0;
    let scaleOuts = 0;
    const waits = new WaitHistogram();
    const live = () => fleet.filter((instance) => instance.stoppedAt === undefined);
    // Run past midnight until the day's work is done, so every image has a wait.
    for (let second = 0; second < DAY_SECONDS || (head < queue.length && second < 2 * DAY_SECONDS); second++) {
        for (const cohort of arrivals[second] ?? [])
            queue.push({ ...cohort });
        const serving = fleet.filter((instance) => instance.stoppedAt === undefined && instance.readyAt <= second);
        if (second % settings.tickSeconds === 0) {
            const work = queue.slice(head).map((cohort) => ({
                kind: cohort.pipeline.kind,
                pixels: cohort.remainingPixels,
                units: Math.ceil(cohort.remainingPixels / (cohort.pipeline.megapixels * 1e6) - 1e-9),
                runningMs: 0,
            }));
            const wanted = pool.desired(work, desired, serving, second);
            if (wanted > desired)
                scaleOuts += 1;
            desired = wanted;
            const running = live();
            for (let launch = running.length; launch < desired; launch++) {
                const boot = settings.bootMinSeconds + bootRandom() * (settings.bootMaxSeconds - settings.bootMinSeconds);
                fleet.push({ id: `i-${fleet.length}`, launchedAt: second, readyAt: second + boot, stoppedAt: undefined });
            }
            // Stop instances still booting first (they hold no work), newest first; then the others.
            const stopOrder = running.sort((a, b) => b.readyAt - a.readyAt);
            for (let stop = 0; stop < running.length - desired; stop++)
                stopOrder[stop].stoppedAt = second;
        }
        peakWorkers = Math.max(peakWorkers, serving.length);
        let budgetMs = serving.length * SLOTS * 1000;
        while (budgetMs > 1e-6 && head < queue.length) {
            const cohort = queue[head];
            const msPerMegapixel = costs.get(cohort.pipeline);
            const donePixels = Math.min(cohort.remainingPixels, (budgetMs / msPerMegapixel) * 1e6);
            cohort.remainingPixels -= donePixels;
            budgetMs -= (donePixels / 1e6) * msPerMegapixel;
            const images = donePixels / (cohort.pipeline.megapixels * 1e6);
            waits.record(second + 1 - cohort.arrival, images);
            pool.finished(cohort.pipeline, images, msPerMegapixel, second);
            if (cohort.remainingPixels <= 1)
                head += 1;
        }
        if (head > 4096) {
            queue.splice(0, head);
            head = 0;
        }
    }
    const end = Math.max(DAY_SECONDS, ...fleet.map((instance) => instance.stoppedAt ?? 0));
    const billedSeconds = fleet.reduce((sum, instance) => sum + Math.max(MINIMUM_BILLED_SECONDS, (instance.stoppedAt ?? end) - instance.launchedAt), 0);
    return { name, workerHours: billedSeconds / 3600, peakWorkers, scaleOuts, waits };
}
/** The policy with an estimator: pixel-only (fixed MP/s) or cost-aware (cost model and boot clock). */
function autoscaled(policy, estimate, target, booted) {
    let memory = initialPolicyMemory;
    return {
        desired(work, current, serving, second) {
            const decision = decideCapacity({ backlog: estimate(work, second), target: target(), current, busy: 0, now: second * 1000 }, policy, memory);
            memory = decision.memory;
            booted?.update(decision.desired, serving.map((instance) => ({ id: instance.id, lastHeartbeat: instance.readyAt * 1000 })), second * 1000);
            return decision.desired;
        },
        finished() { },
    };
}
function pixelOnly(policy) {
    const estimate = (work) => {
        const pixels = work.reduce((sum, item) => sum + item.pixels, 0);
        const seconds = pixels / PIXEL_ONLY.pixelsPerSecond;
        return { workerSeconds: seconds, learnedWorkerSeconds: 0, defaultWorkerSeconds: seconds, units: work.reduce((sum, item) => sum + item.units, 0), pixels };
    };
    return autoscaled(policy, estimate, () => ({ secondsPerWorker: PIXEL_ONLY.targetSeconds, source: 'fixed' }));
}
function costAware(policy, bootSeconds) {
    const costs = new CostModel();
    const boot = new BootClock(bootSeconds);
    const pool = autoscaled(policy, (work, second) => estimateBacklog(work, costs, SLOTS, second * 1000), () => ({ secondsPerWorker: boot.estimate().seconds, source: 'boot' }), boot);
    return {
        ...pool,
        // Workers report per image: one observation per whole image finished (fluid work reports fractions).
        finished(pipeline, images, msPerMegapixel, second) {
            if (images >= 1e-3)
                costs.observe(pipeline.kind, images * pipeline.megapixels * 1e6, images * pipeline.megapixels * msPerMegapixel, second * 1000);
        },
    };
}
function positiveNumber(text) {
    const value = Number(text);
    if (!Number.isFinite(value) || value < 0)
        throw new InvalidArgumentError('expected a number of 0 or more');
    return value;
}
const program = new Command('simulate')
    .description('Replay a synthetic bursty day of mixed pipelines through the scaling policies and compare with a fixed pool')
    .option('--seed <n>', 'workload seed', positiveNumber, 20_260_301)
    .option('--scale-in-after <n>', 'seconds over-sized before scaling in (DIPS_SCALE_IN_AFTER)', positiveNumber, 120)
    .option('--min <n>', 'fewest workers', positiveNumber, 1)
    .option('--max <n>', 'most workers; the fixed pool has this many', positiveNumber, 40)
    .option('--tick <n>', 'seconds between scaler decisions', positiveNumber, 15)
    .option('--boot-min <n>', 'fastest instance start, seconds', positiveNumber, 60)
    .option('--boot-max <n>', 'slowest instance start, seconds', positiveNumber, 90);
program.parse();
const flags = program.opts();
const settings = { seed: flags.seed, tickSeconds: Math.max(1, Math.round(flags.tick)), bootMinSeconds: flags.bootMin, bootMaxSeconds: flags.bootMax };
const policy = parseScalingPolicy({ min: flags.min, max: flags.max, scaleInAfterSeconds: flags.scaleInAfter });
const arrivals = generateWorkload(flags.seed);
const costs = trueCosts(flags.seed);
const outcomes = [
    simulate(`pixel-only ${policy.min}..${policy.max}`, arrivals, costs, settings, pixelOnly(policy)),
    simulate(`cost-aware ${policy.min}..${policy.max}`, arrivals, costs, settings, costAware(policy, DEFAULT_BOOT_SECONDS.aws)),
    // Booted before the day starts: the fixed pool never waits for an instance.
    simulate(`fixed ${policy.max} (peak)`, arrivals, costs, { ...settings, bootMinSeconds: 0, bootMaxSeconds: 0 }, { desired: () => policy.max, finished() { } }),
];
const all = arrivals.flat();
const images = all.reduce((sum, cohort) => sum + cohort.images, 0);
const workerHoursOfWork = all.reduce((sum, cohort) => sum + (cohort.remainingPixels / 1e6) * costs.get(cohort.pipeline), 0) / 1000 / SLOTS / 3600;
console.log(`workload: seed ${flags.seed}, ${images.toLocaleString('en')} images, ${workerHoursOfWork.toFixed(1)} worker-hours of work; ` +
    `scale-in after ${policy.scaleInAfterSeconds} s, tick ${settings.tickSeconds} s, boot ${flags.bootMin}-${flags.bootMax} s`);
console.table([...costs].map(([pipeline, ms]) => ({ pipeline: pipeline.name, 'default ms/MP': Math.round(defaultMsPerMegapixel(pipeline.kind)), 'true ms/MP': Math.round(ms) })));
console.table(outcomes.map((outcome) => ({
    pool: outcome.name,
    'worker-hours': Number(outcome.workerHours.toFixed(1)),
    'peak workers': outcome.peakWorkers,
    'scale-outs': outcome.scaleOuts,
    'p50 wait s': outcome.waits.percentile(0.5),
    'p95 wait s': outcome.waits.percentile(0.95),
    'p99 wait s': outcome.waits.percentile(0.99),
    'max wait s': outcome.waits.max,
})));
//# sourceMappingURL=simulate.js.map