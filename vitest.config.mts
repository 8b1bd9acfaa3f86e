import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests share one Temporal dev server per file and spawn processes; keep files isolated.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
