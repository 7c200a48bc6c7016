import { z } from 'zod';
import type { OperationDeclaration } from './operation.js';
import { blur } from './operations/blur.js';
import { grayscale } from './operations/grayscale.js';
import { invert } from './operations/invert.js';

/** Every operation DIPS offers, in catalogue order. Adding an operation means adding it here. */
export const operations: readonly OperationDeclaration[] = [grayscale, invert, blur] as OperationDeclaration[];

const byName = new Map(operations.map((op) => [op.name, op]));

export function findOperation(name: string): OperationDeclaration | undefined {
  return byName.get(name);
}

/** The catalogue as the API serves it: parameters as JSON Schema (types, ranges, defaults). */
export function describeOperations() {
  return operations.map((op) => ({
    name: op.name,
    description: op.description,
    kind: op.kind,
    tileable: op.tileable,
    params: z.toJSONSchema(op.params, { io: 'input' }),
  }));
}
