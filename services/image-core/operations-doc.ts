import { describeOperations } from './catalogue.js';

/** The part of JSON Schema the catalogue's parameter schemas use. */
interface ParamSchema {
  type?: string;
  const?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  default?: unknown;
  description?: string;
  anyOf?: ParamSchema[];
  items?: ParamSchema;
  maxItems?: number;
}

function typeOf(schema: ParamSchema): string {
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(' or ');
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.enum) return `one of ${schema.enum.map((value) => JSON.stringify(value)).join(', ')}`;
  if (schema.type === 'array' && schema.items) {
    return `array${schema.maxItems === undefined ? '' : ` (≤ ${schema.maxItems})`} of ${typeOf(schema.items)}`;
  }
  const range =
    schema.minimum !== undefined && schema.maximum !== undefined
      ? ` ${schema.minimum} to ${schema.maximum}`
      : schema.minimum !== undefined
        ? ` ≥ ${schema.minimum}`
        : schema.maximum !== undefined
          ? ` ≤ ${schema.maximum}`
          : '';
  return `${schema.type ?? 'any'}${range}`;
}

/** A parameter's type, range and default (or whether it is required): `number 0.3 to 100, default 2`. */
function parameterSummary(schema: ParamSchema, required: boolean): string {
  const fallback =
    schema.default !== undefined ? `, default ${JSON.stringify(schema.default)}` : required ? ', required' : ', optional';
  return `${typeOf(schema)}${fallback}`;
}

type OperationDescription = ReturnType<typeof describeOperations>[number];

/** An operation's parameters from its served JSON Schema, in declaration order: what the docs and `dips ops` list. */
export function parametersOf(op: OperationDescription): Array<{ name: string; schema: ParamSchema; required: boolean }> {
  const schema = op.params as { properties?: Record<string, ParamSchema>; required?: string[] };
  return Object.entries(schema.properties ?? {}).map(([name, param]) => ({ name, schema: param, required: schema.required?.includes(name) ?? false }));
}

const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

/**
 * The operations table of docs/operations.md, rendered from the catalogue so the docs cannot drift
 * (a test compares the two).
 */
export function operationsMarkdown(): string {
  const rows = describeOperations().map((op) => {
    const params = parametersOf(op)
      .map(({ name, schema, required }) => `\`${name}\`: ${parameterSummary(schema, required)}`)
      .join('<br>');
    return `| \`${op.name}\` | ${cell(params || '—')} | ${op.tiling} | ${op.tileable ? 'yes' : 'no'} | ${cell(op.description)} |`;
  });
  return ['| operation | parameters | tiling | tileable | description |', '| --- | --- | --- | --- | --- |', ...rows].join('\n') + '\n';
}

/** One operation as `dips ops NAME` prints it: what it does, each parameter with its type, range, default and meaning, and how it tiles. */
export function operationText(op: OperationDescription): string {
  const params = parametersOf(op);
  const tiling = op.tileable
    ? `${op.tiling}, tiled${'runsWholeWhen' in op ? ` (${op.runsWholeWhen})` : ''}`
    : `runs whole: ${'runsWholeBecause' in op ? op.runsWholeBecause : 'it cannot tile'}`;
  return [
    op.name,
    `    ${op.description}`,
    params.length === 0 ? 'parameters: none' : 'parameters:',
    ...params.map(({ name, schema, required }) => `    ${name}: ${parameterSummary(schema, required)}${schema.description ? `; ${schema.description}` : ''}`),
    `tiling: ${tiling}`,
  ].join('\n') + '\n';
}
