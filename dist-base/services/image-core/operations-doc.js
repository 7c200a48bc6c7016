import { describeOperations } from './catalogue.js';
function typeOf(schema) {
    if (schema.anyOf)
        return schema.anyOf.map(typeOf).join(' or ');
    if (schema.const !== undefined)
        return JSON.stringify(schema.const);
    if (schema.enum)
        return `one of ${schema.enum.map((value) => JSON.stringify(value)).join(', ')}`;
    if (schema.type === 'array' && schema.items) {
        return `array${schema.maxItems === undefined ? '' : ` (≤ ${schema.maxItems})`} of ${typeOf(schema.items)}`;
    }
    const range = schema.minimum !== undefined && schema.maximum !== undefined
        ? ` ${schema.minimum} to ${schema.maximum}`
        : schema.minimum !== undefined
            ? ` ≥ ${schema.minimum}`
            : schema.maximum !== undefined
                ? ` ≤ ${schema.maximum}`
                : '';
    return `${schema.type ?? 'any'}${range}`;
}
function describeParameter(name, schema, required) {
    const fallback = schema.default !== undefined ? `, default ${JSON.stringify(schema.default)}` : required ? ', required' : ', optional';
    return `\`${name}\`: ${typeOf(schema)}${fallback}`;
}
const cell = (text) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');
/**
 * The operations table of docs/operations.md, rendered from the catalogue so the docs cannot drift
 * (a test compares the two).
 */
export function operationsMarkdown() {
    const rows = describeOperations().map((op) => {
        const schema = op.params;
        const params = Object.entries(schema.properties ?? {})
            .map(([name, param]) => describeParameter(name, param, schema.required?.includes(name) ?? false))
            .join('<br>');
        return `| \`${op.name}\` | ${cell(params || '—')} | ${op.tiling} | ${op.tileable ? 'yes' : 'no'} | ${cell(op.description)} |`;
    });
    return ['| operation | parameters | tiling | tileable | description |', '| --- | --- | --- | --- | --- |', ...rows].join('\n') + '\n';
}
//# sourceMappingURL=operations-doc.js.map