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

function describeParameter(name: string, schema: ParamSchema, required: boolean): string {
  const fallback =
    schema.default !== undefined ? `, default ${JSON.stringify(schema.default)}` : required ? ', required' : ', optional';
  return `\`${name}\`: ${typeOf(schema)}${fallback}`;
}

const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

/**
 * The operations table of docs/operations.md, rendered from the catalogue so the docs cannot drift
 * (a test compares the two).
 */
export function operationsMarkdown(): string {
  const rows = describeOperations().map((op) => {
    const schema = op.params as { properties?: Record<string, ParamSchema>; required?: string[] };
    const params = Object.entries(schema.properties ?? {})
      .map(([name, param]) => describeParameter(name, param, schema.required?.includes(name) ?? false))
      .join('<br>');
    return `| \`${op.name}\` | ${cell(params || '—')} | ${op.tiling} | ${op.tileable ? 'yes' : 'no'} | ${cell(op.description)} |`;
  });
  return ['| operation | parameters | tiling | tileable | description |', '| --- | --- | --- | --- | --- |', ...rows].join('\n') + '\n';
}
