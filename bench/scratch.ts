/** Where the benchmarks keep their temporary files (data directories, staged photos, results). */
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

let root: string | undefined;

/**
 * A new folder for `prefix`, inside one folder of this process that goes when the process does: at its
 * exit, and on SIGINT or SIGTERM, which end a process without running its `finally` blocks (a bench
 * stopped that way used to leave its data directories in the system's temporary folder, the 100 MP
 * run's intermediates among them). The clusters a bench started stop with it (bench/cluster.ts).
 */
export function scratchDir(prefix: string): Promise<string> {
  root ??= makeRoot();
  return mkdtemp(path.join(root, prefix));
}

function makeRoot(): string {
  const made = mkdtempSync(path.join(os.tmpdir(), 'dips-bench-'));
  const remove = () => rmSync(made, { recursive: true, force: true });
  process.once('exit', remove);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      remove();
      process.exit(code);
    });
  }
  return made;
}
