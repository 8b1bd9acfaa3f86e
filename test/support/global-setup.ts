// vitest's globalSetup (vitest.config.mts): runs once before any test file, in vitest's own process.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensurePrerequisites } from './prerequisites';
import { SHARED_BUNDLE_DIR_ENV } from './workflow-bundle';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Installs what is missing when it can; else stops the run here with one line naming what to install.
  ensurePrerequisites();
  // One workflow bundle for every file of this run (test/support/workflow-bundle.ts), not in watch mode, where
  // the workflow code changes between runs of the same process.
  if (project.config.watch) return async () => undefined;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'backfill-test-bundle-'));
  process.env[SHARED_BUNDLE_DIR_ENV] = dir; // inherited by the vitest worker processes started after this
  return () => rm(dir, { recursive: true, force: true });
}
