import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Cluster and CDK tests start real processes and synthesize stacks: seconds, not milliseconds.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Three files at once on two cores: most cluster tests wait on their processes, so a third file keeps
    // the cores busy. Whole suite here: 2 files 447 s (other work beside it), 3 files 340 s (173 % busy).
    maxWorkers: 3,
    fileParallelism: true,
    // Files of one worker share its loaded modules (sharp, zod schemas, the services under test): 0.4-0.5
    // CPU-s less per file, measured on test/image-core (15 files: 36.8 -> 29.6 CPU-s). Each file still gets
    // fresh test-file state; tests start their own processes and clean up in afterAll/afterEach.
    isolate: false,
  },
});
