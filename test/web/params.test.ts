import path from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { describeOperations } from '../../services/image-core/catalogue.js';
import { parsePipeline } from '../../services/image-core/pipeline.js';

/** The console's parameter module is plain browser JavaScript without DOM use, so Node runs it as is. */
interface Field {
  name: string;
  control: string;
  initial: unknown;
  required: boolean;
  accept?: string[];
  maxBytes?: number;
}
interface ParamsModule {
  describeParams(operation: unknown): Field[];
  parseParam(field: Field, raw: unknown): { value?: unknown; error?: string };
  shortenDataUrls<T>(pipeline: T): T;
}
const paramsModule = pathToFileURL(path.resolve(import.meta.dirname, '../../web/params.js')).href;
const { describeParams, parseParam, shortenDataUrls } = (await import(paramsModule)) as ParamsModule;

const catalogue = describeOperations();
const operation = (name: string) => catalogue.find((op) => op.name === name)!;
const field = (op: string, name: string) => describeParams(operation(op)).find((candidate) => candidate.name === name)!;

/** What a user might type into any parameter: edges of ranges, fractions, keywords, junk. */
function candidates(schema: Record<string, unknown>): string[] {
  const numeric = [schema, ...((schema.anyOf as Array<Record<string, unknown>>) ?? [])].find((alt) => alt.type === 'number' || alt.type === 'integer') ?? {};
  const values = ['abc', '', 'otsu', '[[1,2,1],[2,4,2],[1,2,1]]', '[[1,2],[3'];
  for (const bound of [numeric.minimum, numeric.maximum]) {
    if (typeof bound === 'number') values.push(String(bound), String(bound - 1), String(bound + 1), String(bound + 0.5));
  }
  return values;
}

describe('console parameter validation (web/params.js)', () => {
  test('every default in the catalogue is offered as the initial value and accepted', () => {
    for (const op of catalogue) {
      for (const spec of describeParams(op)) {
        const schema = (op.params as { properties: Record<string, { default?: unknown }> }).properties[spec.name]!;
        if (schema.default === undefined) continue;
        expect(parseParam(spec, spec.initial), `${op.name}.${spec.name}`).toEqual({ value: schema.default });
      }
    }
  });

  test('never refuses what the master accepts, and refuses every value outside the declared range', () => {
    let refusedByBoth = 0;
    for (const op of catalogue) {
      const specs = describeParams(op);
      // Required parameters the candidate is not about get a valid value, so only one thing varies.
      const base: Record<string, unknown> = Object.fromEntries(
        specs.filter((spec) => spec.required).map((spec) => [spec.name, parseParam(spec, String(Math.max(1, Number(spec.initial) || 1))).value]),
      );
      for (const spec of specs) {
        const schema = (op.params as { properties: Record<string, Record<string, unknown>> }).properties[spec.name]!;
        const numeric = [schema, ...((schema.anyOf as Array<Record<string, unknown>>) ?? [])].find((alt) => alt.type === 'number' || alt.type === 'integer');
        for (const typed of candidates(schema)) {
          const parsed = parseParam(spec, typed);
          const step: Record<string, unknown> = { op: op.name, ...base, [spec.name]: parsed.error ? typed : parsed.value };
          if (!parsed.error && parsed.value === undefined) delete step[spec.name];
          let masterError: string | undefined;
          try {
            parsePipeline([step]);
          } catch (error) {
            masterError = (error as Error).message;
          }
          const where = `${op.name}.${spec.name} = ${JSON.stringify(typed)}: console says ${parsed.error ?? 'ok'}, master says ${masterError ?? 'ok'}`;
          if (parsed.error) {
            expect(masterError, where).toBeDefined();
            refusedByBoth++;
          }
          const outOfRange = typed !== '' && Number.isFinite(Number(typed)) && numeric && (Number(typed) < (numeric.minimum as number) || Number(typed) > (numeric.maximum as number));
          if (outOfRange) expect(parsed.error, where).toBeDefined();
        }
      }
    }
    expect(refusedByBoth).toBeGreaterThan(50);
  });

  test('messages name the parameter and say what is allowed', () => {
    expect(parseParam(field('blur', 'sigma'), '500')).toEqual({ error: 'sigma must be between 0.3 and 100 (500 is too large)' });
    expect(parseParam(field('threshold', 'value'), 'otsu')).toEqual({ value: 'otsu' });
    expect(parseParam(field('threshold', 'value'), 'bright')).toEqual({ error: 'value must be a number or "otsu"; "bright" is not' });
    expect(parseParam(field('threshold', 'value'), '300')).toEqual({ error: 'value must be between 0 and 255 (300 is too large)' });
    expect(parseParam(field('median', 'size'), '3.5')).toEqual({ error: 'size must be a whole number' });
    expect(parseParam(field('convolve', 'kernel'), '[[1,"a"]]')).toEqual({ error: 'kernel entry 1 entry 2 must be a number' });
    expect(parseParam(field('crop', 'left'), '')).toEqual({ error: 'left is required' });
    expect(parseParam(field('resize', 'width'), '')).toEqual({ value: undefined });
  });

  test('a data-URL image parameter gets a file input whose size limit keeps the data URL within the schema', async () => {
    const image = field('composite', 'image');
    const schema = (operation('composite').params as unknown as { properties: { image: { maxLength: number } } }).properties.image;
    expect(image.control).toBe('image');
    expect(image.accept).toEqual(['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/avif', 'image/tiff']);
    // base64 makes 4 characters of each 3 bytes; the longest prefix is data:image/jpeg;base64, or /webp, /avif, /tiff.
    const dataUrlLength = (bytes: number) => 'data:image/jpeg;base64,'.length + 4 * Math.ceil(bytes / 3);
    expect(dataUrlLength(image.maxBytes!)).toBeLessThanOrEqual(schema.maxLength);
    expect(dataUrlLength(image.maxBytes! + 3)).toBeGreaterThan(schema.maxLength);
    const png = await sharp({ create: { width: 4, height: 4, channels: 4, background: '#ff000080' } }).png().toBuffer();
    const overlay = `data:image/png;base64,${png.toString('base64')}`;
    expect(parseParam(image, overlay)).toEqual({ value: overlay });
    expect(() => parsePipeline([{ op: 'composite', image: overlay }])).not.toThrow();
    expect(parseParam(image, '')).toEqual({ error: 'image is required' });
    const shortened = shortenDataUrls([{ op: 'composite', image: overlay }]);
    expect(shortened).toEqual([{ op: 'composite', image: `${overlay.slice(0, 40)}…(${overlay.length} characters)` }]);
  });

  test('a #rrggbb parameter gets a colour input and other strings are checked against their pattern', () => {
    expect(field('text', 'colour').control).toBe('colour');
    expect(parseParam(field('text', 'colour'), '#1a2b3c')).toEqual({ value: '#1a2b3c' });
    expect(parseParam(field('extend', 'colour'), 'red')).toEqual({ error: 'colour must be a colour as #rrggbb' });
  });
});
