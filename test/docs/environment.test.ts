import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { settingsInSources } from '../helpers/settings-in-sources.js';

const root = path.resolve(import.meta.dirname, '../..');

describe('configuration docs', () => {
  it('every DIPS_* variable the services read is documented in README.md or docs/cluster.md', async () => {
    const docs = (await readFile(path.join(root, 'README.md'), 'utf8')) + (await readFile(path.join(root, 'docs/cluster.md'), 'utf8'));
    const variables = await settingsInSources(['services']);
    expect(variables.length).toBeGreaterThan(20);
    expect(variables.filter((name) => !new RegExp(`\\b${name}\\b`).test(docs))).toEqual([]);
  });
});
