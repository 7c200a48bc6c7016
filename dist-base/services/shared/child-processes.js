import path from 'node:path';
import { pathToFileURL } from 'node:url';
/**
 * `node --import` this into a process the master spawns with an IPC channel: the process stops when
 * the master goes, however it goes (exit-with-master.ts). Beside this file with its extension: .js in
 * dist/, .ts when tests load the sources (Node runs it by type stripping).
 */
export const exitWithMasterImport = pathToFileURL(path.resolve(import.meta.dirname, `exit-with-master${path.extname(import.meta.filename)}`)).href;
/** The `dips` command's entry, from services/ or dist/services/ alike. */
export const cliPath = path.resolve(import.meta.dirname, '../cli/main.js');
//# sourceMappingURL=child-processes.js.map