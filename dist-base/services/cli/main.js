#!/usr/bin/env node
/**
 * The `dips` command. It first turns on Node's compile cache, before anything else is loaded: every
 * master, worker and CLI start then reuses the compiled code of DIPS and its dependencies, which saves
 * about a fifth of a master's start-up CPU (docs/performance.md). Then it runs the command line.
 */
import { enableCompileCache } from 'node:module';
enableCompileCache();
await import('./program.js');
//# sourceMappingURL=main.js.map