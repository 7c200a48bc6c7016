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
  },
});
