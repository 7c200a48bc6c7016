import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { knownSettings, misspeltSettings } from '../../services/shared/config.js';

const root = path.resolve(import.meta.dirname, '../..');

/** Every DIPS_* name the sources of DIPS mention (services, lib with its boot script, bin, bench). */
async function namesInSources(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const folder of ['services', 'lib', 'bin', 'bench']) {
    for (const entry of await fs.readdir(path.join(root, folder), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !/\.(ts|sh|mjs)$/.test(entry.name)) continue;
      const text = await fs.readFile(path.join(entry.parentPath, entry.name), 'utf8');
      // A name ending in "_" is a family in a comment (DIPS_RETRY_*), not a variable.
      for (const [name] of text.matchAll(/\bDIPS_[A-Z0-9_]*[A-Z0-9]\b/g)) names.add(name);
    }
  }
  return names;
}

describe('DIPS_* settings', () => {
  it('are all known: every name the sources read is declared once in services/shared/config.ts', async () => {
    const found = await namesInSources();
    expect(found.size).toBeGreaterThan(50);
    expect([...found].filter((name) => !knownSettings.has(name) && name !== 'DIPS_RETRY').sort()).toEqual([]);
  });

  it('a likely typo of one is named with the setting meant; a setting, another program\'s name or other variables are not', () => {
    expect(
      misspeltSettings({
        DIPS_WORKER_SLOT: '2',
        DIPS_WORKR_MEMORY_BYTES: '1000000',
        DIPS_MAX_FILES: '10',
        DIPS_LOG_LEVEL: 'warn',
        DIPS_MY_OWN_THING: 'x',
        WORKER_SLOTS: '3',
      }),
    ).toEqual([
      'DIPS_WORKER_SLOT is not a DIPS setting (did you mean DIPS_WORKER_SLOTS?); it has no effect',
      'DIPS_WORKR_MEMORY_BYTES is not a DIPS setting (did you mean DIPS_WORKER_MEMORY_BYTES?); it has no effect',
    ]);
  });

  it('none of the names the sources use is taken for a typo of another', async () => {
    expect(misspeltSettings(Object.fromEntries([...(await namesInSources())].map((name) => [name, '1'])))).toEqual([]);
  });
});
