import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Cluster and CDK tests start real processes and synthesize stacks: seconds, not milliseconds.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: more parallel files only fight over CPU and make lease timeouts flaky.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
