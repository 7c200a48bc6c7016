import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');

/** Every DIPS_* name mentioned in the sources under these folders of the repository (.ts, .sh, .mjs). */
export async function settingsInSources(folders: readonly string[]): Promise<string[]> {
  const names = new Set<string>();
  for (const folder of folders) {
    for (const entry of await readdir(path.join(root, folder), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !/\.(ts|sh|mjs)$/.test(entry.name)) continue;
      const text = await readFile(path.join(entry.parentPath, entry.name), 'utf8');
      // A name ending in "_" is a family in a comment (DIPS_RETRY_*), not a variable.
      for (const [name] of text.matchAll(/\bDIPS_[A-Z0-9_]*[A-Z0-9]\b/g)) names.add(name);
    }
  }
  return [...names].sort();
}
