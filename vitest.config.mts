import os from 'node:os';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Integration files first: they are the long ones (a run of seconds to a minute each, mostly waiting on rate
 * limits, retries and child processes), so the short unit files fill the gaps at the end instead of one long file
 * starting last. Within each group vitest's own order: the slowest of the last run first (its cache), or on a
 * fresh clone the largest file first.
 */
class IntegrationFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const integration = (f: TestSpecification) => /[\\/]test[\\/]integration[\\/]/.test(f.moduleId);
    return [...sorted.filter(integration), ...sorted.filter((f) => !integration(f))];
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
    sequence: { sequencer: IntegrationFirst },
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
