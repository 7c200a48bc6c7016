/**
 * `npm run simulate`: replays a bursty, day-long synthetic workload through the real scaling policy
 * (services/scaler/policy.ts) with a model of EC2 start-up time, and compares worker-hours and waits
 * with a fixed pool sized for the peak. The workload is seeded, so every run prints the same figures.
 *
 * Workload (one day, per second):
 * - steady traffic: Poisson arrivals at 2 images/s at night rising to 40 images/s at 14:00 (a squared
 *   sine between 06:00 and 22:00); 90% phone photos of 1.3 MP, 10% camera photos of 12 MP;
 * - daytime batches (08:00-20:00): on average one an hour, log-normal size (median 2,000 images,
 *   capped at 20,000), of 12 MP photos, arriving all at once (an upload of a shoot);
 * - a nightly re-processing batch at 02:00 of 30,000 images of 1.3 MP.
 * Model: work is fluid (a worker drains pixels at a fixed rate, images finish in arrival order); the
 * scaler ticks every `tick` seconds; a new instance serves after a uniform 60-90 s (EC2 boot plus
 * service start) and is billed from launch, at least 60 s (per-second billing).
 */
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_TARGET_SECONDS_PER_WORKER, DEFAULT_WORKER_MEGAPIXELS_PER_SECOND, parseScalingPolicy } from '../services/scaler/config.js';
import { type PolicyMemory, type ScalingPolicy, decideCapacity, initialPolicyMemory } from '../services/scaler/policy.js';

const DAY_SECONDS = 24 * 3600;
const MINIMUM_BILLED_SECONDS = 60;

/** Arrivals of one second (or one batch) that share an image size; drained in order. */
interface Cohort {
  arrival: number;
  pixelsPerImage: number;
  remainingPixels: number;
}

interface Instance {
  launchedAt: number;
  readyAt: number;
  stoppedAt: number | undefined;
}

interface SimulationSettings {
  seed: number;
  tickSeconds: number;
  bootMinSeconds: number;
  bootMaxSeconds: number;
}

interface Outcome {
  name: string;
  workerHours: number;
  peakWorkers: number;
  scaleOuts: number;
  waits: WaitHistogram;
}

/** mulberry32: small, fast, good enough for a workload generator, and reproducible from a seed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

function poisson(random: () => number, mean: number): number {
  // Knuth for small means, a normal approximation for large ones.
  if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * gaussian(random)));
  const limit = Math.exp(-mean);
  let count = 0;
  for (let product = random(); product > limit; product *= random()) count += 1;
  return count;
}

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** Images per second of steady traffic at a time of day. */
function steadyRate(second: number): number {
  const hour = second / 3600;
  const night = 2;
  const peak = 40;
  if (hour < 6 || hour > 22) return night;
  return night + (peak - night) * Math.sin((Math.PI * (hour - 6)) / 16) ** 2;
}

/** The whole day's arrivals, indexed by second. */
function generateWorkload(seed: number): Cohort[][] {
  const random = seededRandom(seed);
  const arrivals: Cohort[][] = Array.from({ length: DAY_SECONDS }, () => []);
  const add = (second: number, images: number, megapixels: number) => {
    if (images > 0) arrivals[second].push({ arrival: second, pixelsPerImage: megapixels * 1e6, remainingPixels: images * megapixels * 1e6 });
  };
  for (let second = 0; second < DAY_SECONDS; second++) {
    const images = poisson(random, steadyRate(second));
    const camera = poisson(random, images * 0.1);
    add(second, Math.max(0, images - camera), 1.3);
    add(second, Math.min(images, camera), 12);
    const hour = second / 3600;
    if (hour >= 8 && hour < 20 && random() < 1 / 3600) {
      add(second, Math.min(20_000, Math.round(2000 * Math.exp(gaussian(random)))), 12);
    }
  }
  add(2 * 3600, 30_000, 1.3);
  return arrivals;
}

/** Image-weighted waits at one-second resolution. */
class WaitHistogram {
  private readonly images = new Float64Array(DAY_SECONDS * 2);
  private total = 0;
  private longest = 0;

  record(waitSeconds: number, images: number): void {
    const bucket = Math.min(this.images.length - 1, Math.max(0, Math.round(waitSeconds)));
    this.images[bucket] += images;
    this.total += images;
    this.longest = Math.max(this.longest, bucket);
  }

  get max(): number {
    return this.longest;
  }

  percentile(fraction: number): number {
    let seen = 0;
    for (let wait = 0; wait < this.images.length; wait++) {
      seen += this.images[wait];
      if (seen >= fraction * this.total) return wait;
    }
    return this.images.length;
  }

  get count(): number {
    return this.total;
  }
}

/**
 * Runs the day. `capacityAt` is asked once per tick for the pool size wanted, given the backlog; the
 * fleet model launches (ready after boot) or stops instances to follow it.
 */
function simulate(
  name: string,
  arrivals: Cohort[][],
  workerPixelsPerSecond: number,
  settings: SimulationSettings,
  desiredCapacity: (backlog: { pixels: number; images: number }, current: number, second: number) => number,
): Outcome {
  const bootRandom = seededRandom(settings.seed ^ 0x5eed);
  const queue: Cohort[] = [];
  let head = 0;
  let queuedPixels = 0;
  let queuedImages = 0;
  const fleet: Instance[] = [];
  let desired = 0;
  let peakWorkers = 0;
  let scaleOuts = 0;
  const waits = new WaitHistogram();
  const live = () => fleet.filter((instance) => instance.stoppedAt === undefined);

  // Run past midnight until the day's work is done, so every image has a wait.
  for (let second = 0; second < DAY_SECONDS || queuedPixels > 0; second++) {
    for (const cohort of arrivals[second] ?? []) {
      queue.push({ ...cohort });
      queuedPixels += cohort.remainingPixels;
      queuedImages += cohort.remainingPixels / cohort.pixelsPerImage;
    }
    if (second % settings.tickSeconds === 0) {
      const wanted = desiredCapacity({ pixels: queuedPixels, images: queuedImages }, desired, second);
      if (wanted > desired) scaleOuts += 1;
      desired = wanted;
      const running = live();
      for (let launch = running.length; launch < desired; launch++) {
        const boot = settings.bootMinSeconds + bootRandom() * (settings.bootMaxSeconds - settings.bootMinSeconds);
        fleet.push({ launchedAt: second, readyAt: second + boot, stoppedAt: undefined });
      }
      // Stop instances still booting first (they hold no work), newest first; then the others.
      const stopOrder = running.sort((a, b) => b.readyAt - a.readyAt);
      for (let stop = 0; stop < running.length - desired; stop++) stopOrder[stop].stoppedAt = second;
    }
    const serving = fleet.filter((instance) => instance.stoppedAt === undefined && instance.readyAt <= second).length;
    peakWorkers = Math.max(peakWorkers, serving);
    let budget = serving * workerPixelsPerSecond;
    while (budget > 0 && head < queue.length) {
      const cohort = queue[head];
      const done = Math.min(budget, cohort.remainingPixels);
      cohort.remainingPixels -= done;
      budget -= done;
      queuedPixels -= done;
      queuedImages -= done / cohort.pixelsPerImage;
      waits.record(second + 1 - cohort.arrival, done / cohort.pixelsPerImage);
      if (cohort.remainingPixels <= 1e-6) head += 1;
    }
    if (head > 4096) {
      queue.splice(0, head);
      head = 0;
    }
    if (queuedPixels < 1) queuedPixels = 0;
  }
  const end = Math.max(DAY_SECONDS, ...fleet.map((instance) => instance.stoppedAt ?? 0));
  const billedSeconds = fleet.reduce(
    (sum, instance) => sum + Math.max(MINIMUM_BILLED_SECONDS, (instance.stoppedAt ?? end) - instance.launchedAt),
    0,
  );
  return { name, workerHours: billedSeconds / 3600, peakWorkers, scaleOuts, waits };
}

function autoscaled(policy: ScalingPolicy) {
  let memory: PolicyMemory = initialPolicyMemory;
  return (backlog: { pixels: number; images: number }, current: number, second: number): number => {
    const decision = decideCapacity(
      {
        backlog: { queuedPixels: backlog.pixels, queuedUnits: Math.ceil(backlog.images - 1e-6), inflightPixels: 0, inflightUnits: 0 },
        current,
        now: second * 1000,
      },
      policy,
      memory,
    );
    memory = decision.memory;
    return decision.desired;
  };
}

function positiveNumber(text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new InvalidArgumentError('expected a number of 0 or more');
  return value;
}

const program = new Command('simulate')
  .description('Replay a synthetic bursty day through the scaling policy and compare with a fixed pool')
  .option('--seed <n>', 'workload seed', positiveNumber, 20_260_301)
  .option('--worker-mpps <n>', 'megapixels per second one worker processes', positiveNumber, DEFAULT_WORKER_MEGAPIXELS_PER_SECOND)
  .option('--target-seconds <n>', 'seconds of backlog per worker before scaling out', positiveNumber, DEFAULT_TARGET_SECONDS_PER_WORKER)
  .option('--scale-in-after <n>', 'seconds over-sized before scaling in (DIPS_SCALE_IN_AFTER)', positiveNumber, 120)
  .option('--min <n>', 'fewest workers', positiveNumber, 1)
  .option('--max <n>', 'most workers; the fixed pool has this many', positiveNumber, 16)
  .option('--tick <n>', 'seconds between scaler decisions', positiveNumber, 15)
  .option('--boot-min <n>', 'fastest instance start, seconds', positiveNumber, 60)
  .option('--boot-max <n>', 'slowest instance start, seconds', positiveNumber, 90);
program.parse();
const flags = program.opts<{
  seed: number;
  workerMpps: number;
  targetSeconds: number;
  scaleInAfter: number;
  min: number;
  max: number;
  tick: number;
  bootMin: number;
  bootMax: number;
}>();

const settings: SimulationSettings = { seed: flags.seed, tickSeconds: Math.max(1, Math.round(flags.tick)), bootMinSeconds: flags.bootMin, bootMaxSeconds: flags.bootMax };
const policy = parseScalingPolicy({
  min: flags.min,
  max: flags.max,
  targetSecondsPerWorker: flags.targetSeconds,
  workerPixelsPerSecond: flags.workerMpps * 1e6,
  scaleInAfterSeconds: flags.scaleInAfter,
});
const arrivals = generateWorkload(flags.seed);
const workerPixelsPerSecond = flags.workerMpps * 1e6;

const outcomes = [
  simulate(`autoscaled ${policy.min}..${policy.max}`, arrivals, workerPixelsPerSecond, settings, autoscaled(policy)),
  // Booted before the day starts: the fixed pool never waits for an instance.
  simulate(`fixed ${policy.max} (peak)`, arrivals, workerPixelsPerSecond, { ...settings, bootMinSeconds: 0, bootMaxSeconds: 0 }, () => policy.max),
];

const totalImages = outcomes[0].waits.count;
const totalPixels = arrivals.flat().reduce((sum, cohort) => sum + cohort.remainingPixels, 0);
console.log(
  `workload: seed ${flags.seed}, ${Math.round(totalImages).toLocaleString('en')} images, ${(totalPixels / 1e12).toFixed(2)} TP; ` +
    `worker ${flags.workerMpps} MP/s, target ${policy.targetSecondsPerWorker} s/worker, scale-in after ${policy.scaleInAfterSeconds} s, ` +
    `tick ${settings.tickSeconds} s, boot ${flags.bootMin}-${flags.bootMax} s`,
);
console.table(
  outcomes.map((outcome) => ({
    pool: outcome.name,
    'worker-hours': Number(outcome.workerHours.toFixed(1)),
    'peak workers': outcome.peakWorkers,
    'scale-outs': outcome.scaleOuts,
    'p50 wait s': outcome.waits.percentile(0.5),
    'p95 wait s': outcome.waits.percentile(0.95),
    'p99 wait s': outcome.waits.percentile(0.99),
    'max wait s': outcome.waits.max,
  })),
);
