import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeOperations, findOperation, operations } from '../../services/image-core/catalogue.js';
import { operationsMarkdown } from '../../services/image-core/operations-doc.js';
import { parsePipeline, PipelineError } from '../../services/image-core/pipeline.js';

/** The operation names and parameters the external contract promises (shared/contract.md). */
const contractOperations = {
  grayscale: [],
  invert: [],
  blur: ['sigma'],
  sharpen: ['sigma'],
  edges: ['low', 'high'],
  threshold: ['value'],
  erode: ['size', 'iterations'],
  dilate: ['size', 'iterations'],
  resize: ['width', 'height', 'scale'],
  equalize: [],
  contours: [],
  qr: [],
  median: ['size'],
  rotate: ['angle'],
  flip: [],
  flop: [],
  crop: ['left', 'top', 'width', 'height'],
  modulate: ['brightness', 'saturation', 'hue'],
  gamma: ['value'],
  clahe: ['width', 'height'],
  normalize: [],
  convolve: ['kernel'],
} as const;

describe('the catalogue', () => {
  it('declares every operation once', () => {
    const names = operations.map((op) => op.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it.each(Object.entries(contractOperations))('%s is declared with the parameters of the contract', (name, params) => {
    const op = findOperation(name);
    expect(op, `operation ${name}`).toBeDefined();
    const declared = Object.keys(op!.params.shape);
    for (const param of params) expect(declared).toContain(param);
  });

  it('states how each operation tiles, and why when it cannot', () => {
    const tiling = Object.fromEntries(describeOperations().map((op) => [op.name, op.tiling]));
    expect(tiling).toMatchObject({ invert: 'pointwise', blur: 'neighbourhood', equalize: 'statistics', crop: 'move', edges: 'whole' });
    for (const op of describeOperations()) {
      if (op.tiling === 'whole') expect(op.runsWholeBecause, op.name).toMatch(/\w{4}/);
      else expect(op.runsWholeBecause, op.name).toBeUndefined();
    }
  });

  it('has a description for every operation and every parameter', () => {
    for (const op of describeOperations()) {
      expect(op.description.length, op.name).toBeGreaterThan(20);
      const properties = (op.params as { properties?: Record<string, { description?: string }> }).properties ?? {};
      for (const [param, schema] of Object.entries(properties)) expect(schema.description, `${op.name}.${param}`).toBeTruthy();
    }
  });
});

describe('parameter validation', () => {
  it.each([
    [{ op: 'blur', sigma: 500 }, /blur\): sigma: .*100/],
    [{ op: 'erode', size: 0 }, /erode\): size: .*1/],
    [{ op: 'dilate', iterations: 2.5 }, /dilate\): iterations: .*int/i],
    [{ op: 'median', size: 4 }, /median\): size: size must be odd/],
    [{ op: 'threshold', value: 300 }, /threshold\): value/],
    [{ op: 'threshold', value: 'auto' }, /threshold\): value/],
    [{ op: 'edges', low: 250, high: 100 }, /edges\): low: low must not exceed high/],
    [{ op: 'gamma', value: 0 }, /gamma\): value: .*0\.1/],
    [{ op: 'clahe', width: 1000 }, /clahe\): width: .*256/],
    [{ op: 'convolve', kernel: [[1, 2], [3, 4]] }, /convolve\): kernel: kernel width and height must be odd/],
    [{ op: 'convolve', kernel: [[1, 2, 3], [4, 5]] }, /convolve\): kernel: every kernel row must have the same length/],
    [{ op: 'convolve', scale: 0 }, /convolve\): scale: scale must not be 0/],
    [{ op: 'convolve', kernel: [[1]] }, /convolve\): kernel: .*3/],
    [{ op: 'convolve', kernel: [[1, 1, 1]] }, /convolve\): kernel: .*3/],
    [{ op: 'convolve', offset: 0.5 }, /convolve\): offset: .*int/i],
    [{ op: 'resize', width: 10, fit: 'squash' }, /resize\): fit/],
    [{ op: 'modulate', saturation: -1 }, /modulate\): saturation/],
    [{ op: 'sharpen', radius: 3 }, /sharpen\): .*radius/],
  ])('rejects %j naming the parameter', (step, message) => {
    expect(() => parsePipeline([step])).toThrow(PipelineError);
    expect(() => parsePipeline([step])).toThrow(message);
  });

  it.each([
    [[{ op: 'blurr', sigma: 2 }], 'pipeline step 1: unknown operation "blurr" (did you mean "blur"?); known: grayscale, invert,'],
    [[{ op: 'Greyscale' }], 'unknown operation "Greyscale" (did you mean "grayscale"?)'],
    [[{ op: 'blur', sigmaa: 2 }], 'pipeline step 1 (blur): parameters: Unrecognized key: "sigmaa" (did you mean "sigma"?); its parameters: sigma'],
    [[{ op: 'invert' }, { op: 'resize', widht: 10, heigth: 5 }], 'pipeline step 2 (resize): parameters: Unrecognized keys: "widht", "heigth" (did you mean "width" for "widht", "height" for "heigth"?); its parameters: width, height,'],
    [[{ op: 'invert', amount: 1 }], 'pipeline step 1 (invert): parameters: Unrecognized key: "amount"; it takes no parameters'],
  ])('names the operation or parameter a typo in %j most likely meant', (steps, message) => {
    expect(() => parsePipeline(steps)).toThrow(message);
  });

  it('names a long unknown operation by its start, and many unknown parameters by the first ten', () => {
    expect(() => parsePipeline([{ op: 'z'.repeat(100_000) }])).toThrow(new RegExp(`^pipeline step 1: unknown operation "z{100}"; known: `));
    const many = Object.fromEntries(Array.from({ length: 1000 }, (_, n) => [`p${n}`, n]));
    expect(() => parsePipeline([{ op: 'invert', ...many }])).toThrow(/^pipeline step 1 \(invert\): parameters: Unrecognized keys: "p0", .*, "p9" and 990 more; it takes no parameters$/);
  });

  it('guesses no name for a word far from every one', () => {
    expect(() => parsePipeline([{ op: 'sepia' }])).toThrow(/^pipeline step 1: unknown operation "sepia"; known: /);
    expect(() => parsePipeline([{ op: 'tint' }])).toThrow(/^pipeline step 1: unknown operation "tint"; known: /);
  });

  it('fills in defaults', () => {
    const [erode, edges, threshold, gamma] = parsePipeline([{ op: 'erode' }, { op: 'edges' }, { op: 'threshold' }, { op: 'gamma' }]);
    const defaultOf = (op: string, param: string) =>
      (describeOperations().find((o) => o.name === op)!.params as { properties: Record<string, { default?: unknown }> }).properties[param]
        .default;
    expect(erode.params).toEqual({ size: defaultOf('erode', 'size'), iterations: defaultOf('erode', 'iterations') });
    expect(edges.params).toEqual({ low: defaultOf('edges', 'low'), high: defaultOf('edges', 'high') });
    expect(threshold.params.value).toBe(defaultOf('threshold', 'value'));
    expect(gamma.params.value).toBe(defaultOf('gamma', 'value'));
    // The contract's documented defaults.
    expect([erode.params.size, erode.params.iterations, edges.params.low, edges.params.high, threshold.params.value]).toEqual([5, 2, 100, 200, 128]);
  });

  it('accepts the values at both ends of a range', () => {
    expect(() => parsePipeline([{ op: 'blur', sigma: 0.3 }, { op: 'blur', sigma: 100 }, { op: 'threshold', value: 0 }, { op: 'threshold', value: 255 }])).not.toThrow();
  });
});

describe('the JSON Schema served by GET /v1/operations', () => {
  it('exposes types, ranges and defaults', () => {
    const erode = describeOperations().find((op) => op.name === 'erode')!;
    expect(erode.params).toMatchObject({
      type: 'object',
      properties: { size: { type: 'integer', minimum: 1, default: 5 }, iterations: { type: 'integer', minimum: 1, default: 2 } },
    });
    const threshold = describeOperations().find((op) => op.name === 'threshold')!;
    expect(threshold.params).toMatchObject({
      properties: { value: { default: 128, anyOf: [{ type: 'integer', minimum: 0, maximum: 255 }, { const: 'otsu' }] } },
    });
    expect(describeOperations().find((op) => op.name === 'edges')).toMatchObject({ tiling: 'whole', tileable: false });
  });
});

describe.each(['docs/operations.md', 'README.md'])('%s', (document) => {
  it('holds the table operationsMarkdown() renders from the catalogue', async () => {
    const doc = await readFile(join(import.meta.dirname, '..', '..', document), 'utf8');
    const start = '<!-- operations table: generated by operationsMarkdown(), do not edit -->\n';
    const end = '<!-- end of operations table -->';
    expect(doc).toContain(start);
    const table = doc.slice(doc.indexOf(start) + start.length, doc.indexOf(end));
    // To update: npm run build && node -e "import('./dist/services/image-core/operations-doc.js').then((m) => process.stdout.write(m.operationsMarkdown()))"
    expect(table).toBe(operationsMarkdown());
  });

  it('lists every operation of the catalogue', () => {
    for (const op of operations) expect(operationsMarkdown()).toContain(`| \`${op.name}\` |`);
  });
});
