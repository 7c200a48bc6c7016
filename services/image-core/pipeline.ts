import { findOperation, operations } from './catalogue.js';
import type { Annotations, OperationDeclaration } from './operation.js';
import type { RawImage } from './raw-image.js';

/** One validated step: the declaration and its parameters with defaults filled in. */
export interface Step {
  op: OperationDeclaration;
  params: Record<string, unknown>;
}

const MAX_PIPELINE_STEPS = 32;

/** A pipeline that cannot run; the message names the step and parameter at fault. */
export class PipelineError extends Error {
  override readonly name = 'PipelineError';
}

/** Parses a pipeline given as JSON text or as already-parsed JSON. */
export function parsePipeline(input: unknown, maxSteps = MAX_PIPELINE_STEPS): Step[] {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (error) {
      throw new PipelineError(`pipeline is not valid JSON: ${(error as Error).message}`);
    }
  }
  if (!Array.isArray(value)) throw new PipelineError('pipeline must be a JSON array of steps such as [{"op":"blur","sigma":2}]');
  if (value.length === 0) throw new PipelineError('pipeline has no steps');
  if (value.length > maxSteps) throw new PipelineError(`pipeline has ${value.length} steps; at most ${maxSteps} are allowed`);
  return value.map((raw, index) => parseStep(raw, index));
}

function parseStep(raw: unknown, index: number): Step {
  const where = `pipeline step ${index + 1}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new PipelineError(`${where} must be an object such as {"op":"blur","sigma":2}`);
  }
  const { op: name, ...rest } = raw as Record<string, unknown>;
  if (typeof name !== 'string') throw new PipelineError(`${where} has no "op" name`);
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
  return { op, params: parsed.data as Record<string, unknown> };
}

/** The canonical JSON form of validated steps (defaults filled in), for storage and for workers. */
export function serializePipeline(steps: readonly Step[]): Array<Record<string, unknown>> {
  return steps.map((step) => ({ op: step.op.name, ...step.params }));
}

/** Applies steps in order to a whole image; cancellation is checked between steps. */
export async function runSteps(
  image: RawImage,
  steps: readonly Step[],
  options: { signal?: AbortSignal; annotations?: Annotations } = {},
): Promise<{ image: RawImage; annotations: Annotations }> {
  const annotations = options.annotations ?? {};
  let current = image;
  for (const step of steps) {
    options.signal?.throwIfAborted();
    current = await step.op.apply(current, step.params, annotations);
  }
  return { image: current, annotations };
}
