import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { batchJobBody } from '../../services/protocol/batch.js';
import { presetBody } from '../../services/protocol/presets.js';

/** What the master answers a body with (after "job body: "): zod's report of each problem and where. */
const refusalOf = (schema: z.ZodType, body: unknown): string => {
  const parsed = schema.safeParse(body);
  if (parsed.success) throw new Error(`${JSON.stringify(body)} was accepted`);
  return z.prettifyError(parsed.error);
};
const forms = 'give one of {"prefix": URI}, {"urls": [URI, ...]}, {"manifest": URI of a .jsonl or .csv file}, {"upload": upload session id}';

describe('a batch job body', () => {
  const job = (inputs: unknown, more: Record<string, unknown> = {}) => ({ pipeline: [], inputs, ...more });

  it.each([
    [{ folder: 'x' }, `✖ ${forms}\n  → at inputs`],
    [{ prefx: 's3://b/p' }, `✖ ${forms} (did you mean "prefix"?)\n  → at inputs`],
    ['s3://b/p', `✖ ${forms}\n  → at inputs`],
    [{ prefix: 's3://b/p', urls: ['s3://b/a'] }, `✖ ${forms}\n  → at inputs`],
    [{ prefix: 3 }, '✖ prefix: Invalid input: expected string, received number\n  → at inputs'],
    [{ prefix: 'http://b/p' }, '✖ must be an s3://bucket/key or file:///absolute/path URI\n  → at inputs.prefix'],
    [{ urls: ['s3://b/a', 'ftp://b/c'] }, '✖ must be an s3://bucket/key or file:///absolute/path URI\n  → at inputs.urls[1]'],
    [{ manifest: 's3://b/list.txt' }, '✖ a manifest is a .jsonl or .csv file\n  → at inputs.manifest'],
  ])('with inputs %j is refused naming the form it needs', (inputs, refusal) => {
    expect(refusalOf(batchJobBody, job(inputs))).toBe(refusal);
  });

  it('names the key a misspelt one likely meant, at any level of the body', () => {
    const inputs = { prefix: 's3://b/p' };
    expect(refusalOf(batchJobBody, job(inputs, { outptu: { prefix: 's3://b/o' } }))).toBe('✖ Unrecognized key: "outptu" (did you mean "output"?)');
    expect(refusalOf(batchJobBody, job(inputs, { options: { progresive: true } }))).toBe('✖ Unrecognized key: "progresive" (did you mean "progressive"?)\n  → at options');
    expect(refusalOf(batchJobBody, job(inputs, { output: { prefix: 's3://b/o', fromats: ['webp'], colour: 'red' } }))).toBe(
      '✖ Unrecognized keys: "fromats", "colour" (did you mean "formats" for "fromats"?)\n  → at output',
    );
    expect(refusalOf(batchJobBody, job(inputs, { callback: 'https://example.com/hook' }))).toBe('✖ Unrecognized key: "callback"');
  });

  it('names at most ten unknown keys, and a long one by its start: the refusal stays small', () => {
    const body = job({ prefix: 's3://b/p' }, Object.fromEntries(Array.from({ length: 5000 }, (_, n) => [`${'x'.repeat(n === 0 ? 5000 : 1)}${n}`, n])));
    const refusal = refusalOf(batchJobBody, body);
    expect(refusal).toMatch(/^✖ Unrecognized keys: "x{100}", "x1", "x2", .*, "x9" and 4990 more$/);
    expect(refusal.length).toBeLessThan(300);
  });

  it('with inputs of many misspelt keys names the likely meant of the first ten only', () => {
    const inputs = Object.fromEntries(Array.from({ length: 2000 }, (_, n) => [`prefi${String.fromCharCode(97 + (n % 26))}${n}`, 's3://b/p']));
    expect(refusalOf(batchJobBody, job(inputs)).length).toBeLessThan(600);
  });

  it.each([true, -1, 2.5, 'abc', '5'])('with maxFailures %j is refused naming the two forms it takes', (maxFailures) => {
    expect(refusalOf(batchJobBody, job({ prefix: 's3://b/p' }, { maxFailures }))).toBe('✖ a count of items (0 or more) or a percentage such as "5%"\n  → at maxFailures');
  });

  it('still takes every form of inputs', () => {
    for (const inputs of [{ prefix: 's3://b/p' }, { urls: ['file:///srv/a.jpg'] }, { manifest: 's3://b/list.csv' }]) {
      expect(batchJobBody.safeParse(job(inputs)).success, JSON.stringify(inputs)).toBe(true);
    }
  });
});

describe('a preset body', () => {
  it('names the key a misspelt one likely meant', () => {
    expect(refusalOf(presetBody, { pipeline: [], descripton: 'thumbnails' })).toBe('✖ Unrecognized key: "descripton" (did you mean "description"?)');
  });
});
