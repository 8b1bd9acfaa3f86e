import os from 'node:os';
import path from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest, longest first (measured on two cores; a stale entry only changes the order). A fresh
 * clone has no timings of its own, and vitest would start the largest files first, which left a minute-long file
 * to start near the end while the others were done.
 */
const LONGEST = [
  'test/integration/shared-nothing.test.ts',
  'test/integration/faults.test.ts',
  'test/integration/worker-crash.test.ts',
  'test/integration/postgres.test.ts',
  'test/integration/cli.test.ts',
  'test/unit/member-id-index.test.ts',
  'test/integration/shared-channel.test.ts',
  'test/integration/backfill.test.ts',
  'test/integration/receiver-outage.test.ts',
  'test/integration/misconfigured-worker.test.ts',
  'test/integration/store-outage.test.ts',
  'test/integration/server-restart.test.ts',
];

/**
 * LONGEST first, then the other integration files (seconds to a minute each, mostly waiting on rate limits, retries
 * and child processes), then the unit files, which fill the gaps at the end. Within each group vitest's own order:
 * the slowest of the last run first (its cache), or the largest file first.
 */
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const known = LONGEST.indexOf(path.relative(f.project.config.root, f.moduleId).split(path.sep).join('/'));
      if (known >= 0) return known;
      return /[\\/]test[\\/]integration[\\/]/.test(f.moduleId) ? LONGEST.length : LONGEST.length + 1;
    };
    return [...sorted].sort((a, b) => rank(a) - rank(b)); // stable: vitest's order within a rank
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Before any file: installs the servers and browser the tests run for real, or stops with one line.
    globalSetup: ['./test/support/global-setup.ts'],
    // Integration tests spawn processes and servers (one Temporal dev server per file); keep files isolated.
    pool: 'forks',
    // vitest's default is one file at a time on two cores (cores - 1). An integration file mostly waits (rate
    // limits, retry schedules, child processes starting): measured at a fifth to a third of a core, so two files
    // per core. On two cores with others' load of 13-15, eight integration files took 164 s four at a time, 256 s
    // two at a time.
    maxWorkers: 2 * os.availableParallelism(),
    sequence: { sequencer: LongestFirst },
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
