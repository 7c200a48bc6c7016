/**
 * Parameter inputs from the catalogue's JSON Schema (GET /v1/operations): what control each
 * parameter gets, what the user is told about its range, and validation with messages that name the
 * parameter. The master validates again with the same zod schema; this only catches mistakes early.
 */
import { formatBytes } from './dom.js';

/** Bounds this large are zod's "any safe integer", not a range worth showing. */
const UNBOUNDED = 1e15;

const humanList = (values) => values.map((value) => JSON.stringify(value)).join(', ');

/**
 * A string parameter that holds an image as a base64 data URL (composite's overlay) says so in its
 * pattern, `^data:image\/(png|jpeg|…);base64,…`: it gets a file input. Group 1 lists the image types.
 */
const IMAGE_DATA_URL = /^\^data:image\\\/\(([a-z|]+)\);base64,/;
/** The pattern of a "#rrggbb" colour, exactly what <input type="color"> produces. */
const HEX_COLOUR = '^#[0-9a-fA-F]{6}$';

/** The image types a data-URL parameter accepts (["image/png", …]), or null for any other parameter. */
function imageTypesOf(schema) {
  const match = schema.type === 'string' && typeof schema.pattern === 'string' ? IMAGE_DATA_URL.exec(schema.pattern) : null;
  return match ? match[1].split('|').map((type) => `image/${type}`) : null;
}

/** The largest file whose data URL fits in maxLength: base64 turns each 3 bytes into 4 characters. */
function largestFileFor(maxLength, types) {
  if (maxLength === undefined) return undefined;
  const prefix = Math.max(...types.map((type) => `data:${type};base64,`.length));
  return Math.floor((maxLength - prefix) / 4) * 3;
}

/** The alternatives of a union schema, or the schema itself. */
function alternatives(schema) {
  return schema.anyOf ?? schema.oneOf ?? [schema];
}

/** Fixed string choices a parameter accepts (enum or const), e.g. threshold's "otsu". */
function choicesOf(schema) {
  return alternatives(schema).flatMap((alt) => alt.enum ?? (alt.const !== undefined ? [alt.const] : []));
}

function typesOf(schema) {
  return alternatives(schema).flatMap((alt) => [alt.type].flat().filter(Boolean));
}

function bound(value) {
  return typeof value === 'number' && Math.abs(value) < UNBOUNDED ? value : undefined;
}

/** "between 0.3 and 100", "at least 1", "" — for hints and messages. */
function rangeText(schema) {
  const numeric = alternatives(schema).find((alt) => alt.type === 'number' || alt.type === 'integer') ?? {};
  const low = bound(numeric.minimum) ?? bound(numeric.exclusiveMinimum);
  const high = bound(numeric.maximum) ?? bound(numeric.exclusiveMaximum);
  const lowWord = numeric.exclusiveMinimum !== undefined ? 'above' : 'at least';
  const highWord = numeric.exclusiveMaximum !== undefined ? 'below' : 'at most';
  if (low !== undefined && high !== undefined) {
    return numeric.exclusiveMinimum === undefined && numeric.exclusiveMaximum === undefined
      ? `between ${low} and ${high}`
      : `${lowWord} ${low} and ${highWord} ${high}`;
  }
  if (low !== undefined) return `${lowWord} ${low}`;
  if (high !== undefined) return `${highWord} ${high}`;
  return '';
}

/**
 * How to present one parameter:
 * control 'number' (number or integer), 'checkbox', 'select' (only fixed choices), 'json' (arrays and
 * objects, e.g. a convolution kernel), 'image' (a file read into a data URL, e.g. an overlay),
 * 'colour' (#rrggbb), 'multiline' (free text, which may hold line breaks: text's text), 'text' (other
 * strings and number-or-keyword unions such as threshold's value).
 */
export function describeParam(name, schema, required) {
  const types = typesOf(schema);
  const choices = choicesOf(schema);
  const numeric = types.includes('number') || types.includes('integer');
  const imageTypes = imageTypesOf(schema);
  let control = 'text';
  if (imageTypes) control = 'image';
  else if (schema.pattern === HEX_COLOUR) control = 'colour';
  else if (types.includes('array') || types.includes('object')) control = 'json';
  else if (types.length === 1 && types[0] === 'boolean') control = 'checkbox';
  else if (numeric && choices.length === 0) control = 'number';
  else if (!numeric && choices.length > 0) control = 'select';
  else if (types.length === 1 && types[0] === 'string' && schema.pattern === undefined) control = 'multiline';
  const range = rangeText(schema);
  const numericSchema = alternatives(schema).find((alt) => alt.type === 'number' || alt.type === 'integer');
  const hintParts = [];
  if (numeric) hintParts.push([types.includes('integer') && !types.includes('number') ? 'whole number' : 'number', range].filter(Boolean).join(' '));
  if (choices.length > 0 && control !== 'select') hintParts.push(`or ${humanList(choices)}`);
  if (imageTypes) hintParts.push(`${imageTypes.map((type) => type.slice('image/'.length).toUpperCase()).join(', ')}${schema.maxLength === undefined ? '' : ` up to ${formatBytes(largestFileFor(schema.maxLength, imageTypes))}`}`);
  if (schema.default !== undefined) hintParts.push(`default ${JSON.stringify(schema.default)}`);
  else hintParts.push(required ? 'required' : 'optional');
  return {
    name,
    schema,
    required,
    control,
    choices,
    description: schema.description ?? '',
    hint: hintParts.join(' · '),
    min: bound(numericSchema?.minimum),
    max: bound(numericSchema?.maximum),
    step: numericSchema?.type === 'integer' ? 1 : numericSchema?.multipleOf ?? 'any',
    initial: schema.default === undefined ? '' : control === 'json' ? JSON.stringify(schema.default) : schema.default,
    accept: imageTypes ?? undefined,
    maxBytes: imageTypes ? largestFileFor(schema.maxLength, imageTypes) : undefined,
  };
}

/** Why value does not satisfy schema (a phrase to follow the parameter's name), or null. */
function violation(schema, value) {
  const alts = alternatives(schema);
  if (alts.length > 1) {
    const problems = alts.map((alt) => violation(alt, value));
    if (problems.some((problem) => problem === null)) return null;
    // Report against the alternative of the value's own type, so "500" is "too large", not "not otsu".
    const sameType = alts.findIndex((alt) => matchesType(alt, value));
    return sameType === -1 ? `must be ${describeAlternatives(alts)}` : problems[sameType];
  }
  if (schema.const !== undefined && value !== schema.const) return `must be ${JSON.stringify(schema.const)}`;
  if (schema.enum && !schema.enum.includes(value)) return `must be one of ${humanList(schema.enum)}`;
  if (schema.type && !matchesType(schema, value)) return `must be ${article(schema.type)}`;
  if (typeof value === 'number') {
    const range = rangeText(schema);
    const tooLow = (schema.minimum !== undefined && value < schema.minimum) || (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum);
    const tooHigh = (schema.maximum !== undefined && value > schema.maximum) || (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum);
    if (tooLow || tooHigh) return `must be ${range} (${value} is too ${tooLow ? 'small' : 'large'})`;
    if (schema.multipleOf && !Number.isInteger(value / schema.multipleOf)) return `must be a multiple of ${schema.multipleOf}`;
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) return `needs at least ${schema.minItems} entries`;
    if (schema.maxItems !== undefined && value.length > schema.maxItems) return `allows at most ${schema.maxItems} entries`;
    if (schema.items) {
      for (const [index, item] of value.entries()) {
        const problem = violation(schema.items, item);
        if (problem) return `entry ${index + 1} ${problem}`;
      }
    }
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) return `needs at least ${schema.minLength} characters`;
    if (schema.maxLength !== undefined && value.length > schema.maxLength) return `allows at most ${schema.maxLength} characters`;
    if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) {
      return schema.pattern === HEX_COLOUR ? 'must be a colour as #rrggbb' : `must match ${schema.pattern}`;
    }
  }
  return null;
}

function matchesType(schema, value) {
  switch (schema.type) {
    case 'number': return typeof value === 'number' && Number.isFinite(value);
    case 'integer': return Number.isInteger(value);
    case 'string': return typeof value === 'string';
    case 'boolean': return typeof value === 'boolean';
    case 'array': return Array.isArray(value);
    case 'object': return typeof value === 'object' && value !== null && !Array.isArray(value);
    default: return schema.const !== undefined ? typeof value === typeof schema.const : true;
  }
}

function article(type) {
  return { integer: 'a whole number', array: 'a list', object: 'an object', boolean: 'true or false' }[type] ?? `a ${type}`;
}

function describeAlternatives(alts) {
  return alts.map((alt) => (alt.const !== undefined ? JSON.stringify(alt.const) : alt.enum ? humanList(alt.enum) : article(alt.type))).join(' or ');
}

/**
 * Turns what the user typed into the parameter's value.
 * Returns { value } (value undefined = leave it out, the master's default applies) or { error }.
 */
export function parseParam(field, raw) {
  if (field.control === 'checkbox') return { value: Boolean(raw) };
  const text = String(raw).trim();
  if (text === '') return field.required ? { error: `${field.name} is required` } : { value: undefined };
  let value = text;
  if (field.control === 'json') {
    try {
      value = JSON.parse(text);
    } catch {
      return { error: `${field.name} must be JSON, for example ${exampleFor(field.schema)}` };
    }
  } else if (!field.choices.includes(text) && typesOf(field.schema).some((type) => type === 'number' || type === 'integer')) {
    value = Number(text);
    if (Number.isNaN(value)) {
      const choices = field.choices.length ? ` or ${humanList(field.choices)}` : '';
      return { error: `${field.name} must be a number${choices}; "${text}" is not` };
    }
  }
  const problem = violation(field.schema, value);
  return problem ? { error: `${field.name} ${problem}` } : { value };
}

function exampleFor(schema) {
  if (schema.default !== undefined) return JSON.stringify(schema.default);
  if (schema.type === 'array') return schema.items?.type === 'array' ? '[[0,-1,0],[-1,5,-1],[0,-1,0]]' : '[1,2,3]';
  return '{}';
}

/** The parameters of an operation from its catalogue entry, in declaration order. */
export function describeParams(operation) {
  const properties = operation.params?.properties ?? {};
  const required = new Set(operation.params?.required ?? []);
  return Object.entries(properties).map(([name, schema]) => describeParam(name, schema, required.has(name)));
}

/** Characters of a data URL that previews and job cards show: its type and the start of its bytes. */
const DATA_URL_SHOWN = 40;

/** A copy of a pipeline with each long data URL (an overlay: up to a megabyte) cut to its start and length. */
export function shortenDataUrls(pipeline) {
  return JSON.parse(JSON.stringify(pipeline, (_key, value) =>
    typeof value === 'string' && value.startsWith('data:') && value.length > DATA_URL_SHOWN ? `${value.slice(0, DATA_URL_SHOWN)}…(${value.length} characters)` : value));
}
