import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The longest files, longest first (seconds in a full run here, 2026-12-02): exactness 97, bundle 83,
 * console 52, worker-failure 39, s3-jobs 35, tiled-exactness 35, operations 29, bootstrap 28,
 * load-drills 27, file-jobs 26; the next is 16. A fresh clone (CI) has no vitest timings, and vitest then
 * starts larger files first: exactness.test.ts is short, started at 294 s and ended the run at 409 s.
 */
const longestFiles = [
  'test/image-core/exactness.test.ts',
  'test/infra/bundle.test.ts',
  'test/web/console.test.ts',
  'test/cluster/worker-failure.test.ts',
  'test/batch/s3-jobs.test.ts',
  'test/cluster/tiled-exactness.test.ts',
  'test/web/operations.test.ts',
  'test/infra/bootstrap.test.ts',
  'test/cluster/load-drills.test.ts',
  'test/batch/file-jobs.test.ts',
];

/** Starts the longest files first, so that none of them starts last and becomes the run's tail; the rest in vitest's order. */
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification) => {
      const place = longestFiles.indexOf(relative(file.project.config.root, file.moduleId).split('\\').join('/'));
      return place < 0 ? longestFiles.length : place;
    };
    // Array sort is stable: files of one rank keep vitest's order.
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

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
    sequence: { sequencer: LongestFirst },
    // Files of one worker share its loaded modules (sharp, zod schemas, the services under test): 0.4-0.5
    // CPU-s less per file, measured on test/image-core (15 files: 36.8 -> 29.6 CPU-s). Each file still gets
    // fresh test-file state; tests start their own processes and clean up in afterAll/afterEach.
    isolate: false,
  },
});
