import { defineConfig } from 'vite';

/**
 * The console's copy of the protocol: services/protocol and zod as one minified ES module (about 135 kB,
 * 34 kB gzipped, where zod's own modules are ~95 files and 800 kB), written beside the compiled protocol so
 * that every install, and the deployed bundle, has it. The master serves it at /protocol.js; web/ imports it.
 * `npm run build` runs this after tsc. The tests' configuration is vitest.config.ts.
 */
export default defineConfig({
  logLevel: 'warn',
  build: {
    lib: { entry: 'services/protocol/index.ts', formats: ['es'], fileName: () => 'browser.js' },
    outDir: 'dist/services/protocol',
    // tsc has written the protocol's own modules there.
    emptyOutDir: false,
    minify: true,
    sourcemap: false,
  },
});
