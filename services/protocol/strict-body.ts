import { z } from 'zod';
import { keysMeant } from '../shared/suggest.js';

/**
 * A request body's object: unknown keys are refused, and the refusal names the key likely meant
 * (`Unrecognized key: "outptu" (did you mean "output"?)`), so a typo is not silently a missing field.
 */
export function strictBody<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `Unrecognized key${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.map((key) => `"${key}"`).join(', ')}${keysMeant(issue.keys, known)}`
        : undefined,
  });
}
