import os from 'node:os';
import path from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest, longest first (measured on two cores, npm test of 2026-12-07 02:31; a stale entry
 * only changes the order). A fresh clone has no timings of its own, and vitest would start the largest files first,
 * which left a minute-long file to start near the end while the others were done.
 */
const LONGEST = [
  'test/integration/faults.test.ts',
  'test/integration/shared-nothing.test.ts',
  'test/integration/postgres.test.ts',
  'test/integration/worker-crash.test.ts',
  'test/integration/cli.test.ts',
  'test/integration/server-restart.test.ts',
  'test/integration/verify.test.ts',
  'test/integration/backfill.test.ts',
  'test/integration/receiver-outage.test.ts',
  'test/integration/shared-channel.test.ts',
  'test/integration/live-changes.test.ts',
  'test/integration/secure-temporal.test.ts',
  'test/unit/member-id-index.test.ts',
];

/**
 * LONGEST first, then the other integration files, then the other unit files (the projects below run the unit files
 * before the integration files). Within each rank vitest's own order: the slowest of the last run first (its cache),
 * or the largest file first.
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

const cores = os.availableParallelism();
/** Unit files whose assertions measure time (rates, spacing of permits) against the real clock. */
const CLOCK_BOUND = [
  'test/unit/rate-limiter.test.ts',
  'test/unit/channel-pacing.test.ts',
  'test/unit/channel-client.test.ts',
  'test/unit/channel-simulator.test.ts',
];
/** Both projects: integration tests spawn processes and servers (one Temporal dev server per file), files isolated. */
const perFile = { pool: 'forks', testTimeout: 60_000, hookTimeout: 180_000 } as const;

export default defineConfig({
  test: {
    // Once, before any file: installs the servers and browser the tests run for real, or stops with one line.
    globalSetup: ['./test/support/global-setup.ts'],
    sequence: { sequencer: LongestFirst },
    projects: [
      {
        // First the unit files, one per core (vitest's default is cores - 1: one at a time on two cores).
        test: {
          ...perFile,
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          exclude: CLOCK_BOUND,
          maxWorkers: cores,
          sequence: { groupOrder: 0 },
        },
      },
      {
        // Then two files per core: an integration file mostly waits (rate limits, retry schedules, child processes
        // starting), measured at a fifth to a third of a core. On two cores with others' load of 13-15, eight
        // integration files took 164 s four at a time, 256 s two at a time.
        test: {
          ...perFile,
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          maxWorkers: 2 * cores,
          sequence: { groupOrder: 1 },
        },
      },
      {
        // Last, one at a time with nothing else of the suite running: the unit files that measure rates against the
        // clock (a 97% floor on the rate of a 1-second run failed beside another CPU-bound file under others' load).
        test: { ...perFile, name: 'clock', include: CLOCK_BOUND, maxWorkers: 1, sequence: { groupOrder: 2 } },
      },
    ],
  },
});
