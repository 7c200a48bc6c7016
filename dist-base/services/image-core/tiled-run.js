import { coreRange } from './intermediate.js';
import { mergeAnnotations } from './operation.js';
import { serializePipeline } from './pipeline.js';
import { planStageTiles, shapesThrough, stageOutputSize } from './planner.js';
/**
 * Runs a tiled plan: the first stage's tiles decode their rows from the upload (or, when that stage
 * cannot, a worker first decodes the upload into an uncompressed intermediate); for each stage, workers
 * run its tiles (at most `concurrency` at once), each reading its rows from the stage's input and writing
 * its core into the next intermediate; histograms are merged here; a worker encodes the last
 * intermediate, or, for a baseline JPEG, the last stage's strips encode their bands and a worker joins
 * them (Stage.restart). No pixel passes through this function. Cancellation is checked between tiles.
 */
export async function runTiledImage(options) {
    const { plan, work, checkpoint } = options;
    const signal = options.signal ?? new AbortController().signal;
    let state = await checkpoint?.load();
    if (!state) {
        signal.throwIfAborted();
        const shape = plan.stages[0].decodes ? plan.input : await work.decode(signal);
        state = { stage: 0, input: { intermediate: 0, shape }, doneTiles: [], annotations: {} };
        await checkpoint?.save(state);
    }
    for (let index = state.stage; index < plan.stages.length; index++) {
        state = await runStage(options, index, state, signal);
        await checkpoint?.save(state);
    }
    signal.throwIfAborted();
    if (state.segments !== undefined)
        await work.assemble(state.segments, state.input.shape, signal);
    else
        await work.encode(state.input.intermediate, state.input.shape, signal);
    return { width: state.input.shape.width, height: state.input.shape.height, annotations: state.annotations };
}
/** Runs stage `index` (resuming from `resume`) and returns the state that starts the next stage. */
async function runStage(options, index, resume, signal) {
    const { plan, work, checkpoint } = options;
    const stage = plan.stages[index];
    const input = resume.input;
    const returnCore = stage.steps.length > 0;
    const intermediate = index + 1;
    const tiles = planStageTiles(stage, input.shape, plan.tileSize);
    const tiledOutput = returnCore && !stage.whole ? tiledStageOutput(stage, input.shape) : undefined;
    // Strips writing JPEG segments write objects of their own: no intermediate in parts.
    const inParts = tiledOutput && !stage.restart;
    const done = new Set(resume.doneTiles);
    const annotations = structuredClone(resume.annotations);
    const tags = { ...resume.parts?.tags };
    let wholeOutput = resume.wholeOutput;
    let histogram = resume.histogram && Uint32Array.from(resume.histogram);
    const handle = inParts ? (resume.parts ? resume.parts.handle : await work.openParts(intermediate)) : undefined;
    const report = () => options.onProgress?.({ stage: index, stages: plan.stages.length, done: done.size, total: tiles.length });
    report();
    const snapshot = () => ({
        stage: index,
        input,
        doneTiles: [...done],
        ...(inParts ? { parts: { ...(handle ? { handle } : {}), tags: { ...tags } } } : {}),
        ...(wholeOutput ? { wholeOutput } : {}),
        histogram: histogram && Array.from(histogram),
        mergedHistogram: resume.mergedHistogram,
        annotations: structuredClone(annotations),
    });
    // The handle must be on record before a part is written: a restarted master continues the same upload.
    if (inParts && !resume.parts)
        await checkpoint?.save(snapshot());
    const runOne = async (tile, tileSignal) => {
        const job = jobFor(stage, tile, { input: input.shape, output: tiledOutput, mergedHistogram: resume.mergedHistogram, returnCore, name: options.name });
        const target = !returnCore
            ? undefined
            : stage.restart
                ? { segment: tile.index }
                : tiledOutput
                    ? { intermediate, part: { range: coreRange(tiledOutput, tile.core), number: tile.index + 1, ...(handle ? { handle } : {}) } }
                    : { intermediate };
        tileSignal.throwIfAborted();
        const outcome = await work.tile(job, input.intermediate, target, tileSignal);
        if (stage.whole && returnCore)
            wholeOutput = { width: outcome.width, height: outcome.height, channels: outcome.channels };
        if (outcome.tag !== undefined)
            tags[tile.index] = outcome.tag;
        if (stage.histogramFor)
            histogram = addHistogram(histogram, outcome, tile);
        mergeAnnotations(annotations, outcome.annotations ?? {});
        done.add(tile.index);
        report();
        if (checkpoint)
            await saveProgress(checkpoint);
    };
    // One save covers every tile finished before it starts: tiles that finish while a save is waiting
    // share it, so a stage of n tiles does not write n ever-longer states one by one.
    let saving = Promise.resolve();
    let nextSave;
    const saveProgress = (store) => {
        nextSave ??= saving
            .then(() => new Promise((resolve) => setImmediate(resolve)))
            .then(() => {
            nextSave = undefined;
            return store.save(snapshot());
        });
        saving = nextSave;
        return nextSave;
    };
    const pending = tiles.filter((tile) => !done.has(tile.index));
    // A decoding strip costs more the lower its rows lie in the upload (each decodes from the top): the
    // longest go first, so the short ones fill in at the end instead of one long strip running alone.
    const lastRow = ({ source }) => source.y + source.height;
    if (stage.decodes)
        pending.sort((a, b) => lastRow(b) - lastRow(a));
    await runBounded(pending, options.concurrency, runOne, signal);
    if (inParts)
        await work.closeParts(intermediate, handle, tiles.map((tile) => tags[tile.index] ?? ''));
    // A measuring stage leaves the pixels as they are: the next stage reads the same intermediate.
    const output = !returnCore ? input : { intermediate, shape: tiledOutput ?? wholeOutput };
    return {
        stage: index + 1,
        input: output,
        doneTiles: [],
        ...(stage.restart ? { segments: tiles.length } : {}),
        mergedHistogram: histogram && Array.from(histogram),
        annotations,
    };
}
/** A tiled stage's output shape, from the steps' declarations (the tiles' reports are checked against it). */
function tiledStageOutput(stage, input) {
    const size = stageOutputSize(stage, input);
    return { ...size, channels: shapesThrough(stage.steps, input).at(-1).channels };
}
/** The task of one tile: `output` is a tiled stage's output shape, `name` the upload's (for a decoding stage's errors). */
function jobFor(stage, tile, context) {
    const { input, output, mergedHistogram, returnCore, name } = context;
    const job = { steps: serializePipeline(stage.steps), input, source: tile.source, returnCore };
    if (tile.core)
        job.core = tile.core;
    if (stage.decodes)
        job.decode = { name };
    if (output)
        job.output = output;
    if (stage.restart)
        job.jpeg = { pieceRows: stage.restart.pieceRows };
    if (stage.leadingStatistics) {
        if (!mergedHistogram)
            throw new Error('a stage starting with a statistics step has no merged histogram');
        job.histogram = mergedHistogram;
    }
    if (stage.histogramFor)
        [job.histogramFor] = serializePipeline([stage.histogramFor]);
    return job;
}
function addHistogram(sum, outcome, tile) {
    const part = outcome.histogram;
    if (!part)
        throw new Error(`tile ${tile.index} returned no histogram`);
    if (sum && sum.length !== part.length) {
        throw new Error(`tile ${tile.index} returned a histogram of ${part.length} bins, others ${sum.length}`);
    }
    const total = sum ?? new Uint32Array(part.length);
    for (let i = 0; i < total.length; i++)
        total[i] += part[i];
    return total;
}
/**
 * Runs `run` on every item with at most `concurrency` at once. The first failure (or the caller's
 * abort) stops starting new items and aborts the signal given to the running ones; waits for them
 * before rethrowing, so nothing writes after this returns.
 */
async function runBounded(items, concurrency, run, outer) {
    const controller = new AbortController();
    const forward = () => controller.abort(outer.reason);
    outer.addEventListener('abort', forward, { once: true });
    let next = 0;
    const lane = async () => {
        while (next < items.length) {
            outer.throwIfAborted();
            controller.signal.throwIfAborted();
            await run(items[next++], controller.signal);
        }
    };
    try {
        const lanes = Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, () => lane().catch((error) => {
            controller.abort(error);
            throw error;
        }));
        const outcomes = await Promise.allSettled(lanes);
        const failure = outcomes.find((outcome) => outcome.status === 'rejected');
        if (failure)
            throw failure.reason;
    }
    finally {
        outer.removeEventListener('abort', forward);
    }
}
//# sourceMappingURL=tiled-run.js.map