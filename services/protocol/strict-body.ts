import { z } from 'zod';
import { keysMeant } from '../shared/suggest.js';
import { ApiError } from './errors.js';

/** Unknown keys a refusal names, and the characters of each name: enough to find a typo, never the whole body back. */
export const MAX_NAMED_KEYS = 10;
export const MAX_NAME_CHARS = 100;

/**
 * A request body's object: unknown keys are refused, and the refusal names the key likely meant
 * (`Unrecognized key: "outptu" (did you mean "output"?)`), so a typo is not silently a missing field.
 */
export function strictBody<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? unrecognizedKeys(issue.keys, known) : undefined),
  });
}

/**
 * `Unrecognized key: "outptu" (did you mean "output"?)`: the refusal of keys an object does not have.
 * Many are named by their first few, a long one by its start, so the refusal stays small.
 */
export function unrecognizedKeys(keys: readonly string[], known: readonly string[]): string {
  const named = keys.slice(0, MAX_NAMED_KEYS);
  const more = keys.length - named.length;
  return `Unrecognized key${keys.length > 1 ? 's' : ''}: ${named.map((key) => `"${key.slice(0, MAX_NAME_CHARS)}"`).join(', ')}${more > 0 ? ` and ${more} more` : ''}${keysMeant(named, known)}`;
}

/** A request's query read through its schema: a 400 `bad_query` naming each problem, before the route acts. */
export function parseQuery<Schema extends z.ZodType>(schema: Schema, query: unknown): z.output<Schema> {
  const parsed = schema.safeParse(query);
  if (!parsed.success) throw new ApiError(400, 'bad_query', z.prettifyError(parsed.error));
  return parsed.data;
}
