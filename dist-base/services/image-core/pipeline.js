import { findOperation, operations } from './catalogue.js';
import { PipelineError } from './errors.js';
import { mergeAnnotation, pixelMoveOf } from './operation.js';
export { PipelineError };
const MAX_PIPELINE_STEPS = 32;
/** Parses a pipeline given as JSON text or as already-parsed JSON. */
export function parsePipeline(input, maxSteps = MAX_PIPELINE_STEPS) {
    let value = input;
    if (typeof input === 'string') {
        try {
            value = JSON.parse(input);
        }
        catch (error) {
            throw new PipelineError(`pipeline is not valid JSON: ${error.message}`);
        }
    }
    if (!Array.isArray(value))
        throw new PipelineError('pipeline must be a JSON array of steps such as [{"op":"blur","sigma":2}]');
    if (value.length > maxSteps)
        throw new PipelineError(`pipeline has ${value.length} steps; at most ${maxSteps} are allowed`);
    return value.map((raw, index) => parseStep(raw, index));
}
function parseStep(raw, index) {
    const where = `pipeline step ${index + 1}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        throw new PipelineError(`${where} must be an object such as {"op":"blur","sigma":2}`);
    }
    const { op: name, ...rest } = raw;
    if (typeof name !== 'string')
        throw new PipelineError(`${where} has no "op" name`);
    const op = findOperation(name);
    if (!op) {
        throw new PipelineError(`${where}: unknown operation "${name}"; known: ${operations.map((o) => o.name).join(', ')}`);
    }
    const parsed = op.params.safeParse(rest);
    if (!parsed.success) {
        const issues = parsed.error.issues
            .map((issue) => `${issue.path.length ? issue.path.join('.') : 'parameters'}: ${issue.message}`)
            .join('; ');
        throw new PipelineError(`${where} (${name}): ${issues}`);
    }
    return { op, params: parsed.data };
}
/** The canonical JSON form of validated steps (defaults filled in), for storage and for workers. */
export function serializePipeline(steps) {
    return steps.map((step) => ({ op: step.op.name, ...step.params }));
}
/**
 * The one step loop, for whole images and for tiles alike: applies the steps in order, checking
 * cancellation before each, and collects the annotations of analysis steps under their op's name.
 */
export async function runSteps(image, steps, options = {}) {
    const annotations = {};
    let current = image;
    let place = options.tile ?? wholePlace(image);
    for (const [index, { op, params }] of steps.entries()) {
        options.signal?.throwIfAborted();
        const move = options.tile && pixelMoveOf(op.tiling, params);
        if (index === 0 && options.histogram) {
            if (op.tiling.kind !== 'statistics')
                throw new PipelineError(`${op.name} is not a statistics operation`);
            current = op.tiling.applyWithHistogram(current, params, options.histogram);
        }
        else if (move) {
            current = await move.applyToTile(current, place.region, place.imageSize);
            place = { region: move.forward(place.region, place.imageSize), imageSize: outputSizeOf({ op, params }, place.imageSize) };
        }
        else {
            const annotate = (value) => mergeAnnotation(annotations, op.name, value);
            current = await op.apply(current, params, { ...place, signal: options.signal, source: options.source, annotate });
            if (!options.tile)
                place = wholePlace(current);
        }
    }
    return { image: current, annotations, place };
}
const wholePlace = ({ width, height }) => ({ region: { x: 0, y: 0, width, height }, imageSize: { width, height } });
/** A step's output size for an input of `input` size (see OperationDeclaration.outputSize). */
export function outputSizeOf({ op, params }, input) {
    return op.outputSize?.(input, params) ?? { width: input.width, height: input.height };
}
//# sourceMappingURL=pipeline.js.map