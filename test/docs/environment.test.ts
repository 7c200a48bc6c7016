import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');

/** Every DIPS_* name in the TypeScript sources of services/ (what the programs read from the environment). */
async function variablesInCode(): Promise<string[]> {
  const names = new Set<string>();
  for (const entry of await readdir(path.join(root, 'services'), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const text = await readFile(path.join(entry.parentPath, entry.name), 'utf8');
    for (const [name] of text.matchAll(/\bDIPS_[A-Z0-9_]*[A-Z0-9]\b/g)) names.add(name);
  }
  return [...names].sort();
}

describe('configuration docs', () => {
  it('every DIPS_* variable the services read is documented in README.md or docs/cluster.md', async () => {
    const docs = (await readFile(path.join(root, 'README.md'), 'utf8')) + (await readFile(path.join(root, 'docs/cluster.md'), 'utf8'));
    const variables = await variablesInCode();
    expect(variables.length).toBeGreaterThan(20);
    expect(variables.filter((name) => !new RegExp(`\\b${name}\\b`).test(docs))).toEqual([]);
  });
});
