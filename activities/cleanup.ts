import type { PendingStore } from '../src/audit/pending-store';
import type { WorkStore } from '../src/store/work-store';
import type { BackfillPaths } from '../workflows/definitions';

export interface CleanupInput {
  paths: BackfillPaths;
}

export interface CleanupDeps {
  work: WorkStore;
  pending: PendingStore;
  /** BACKFILL_KEEP_WORK_DATA: keep the work set and pending replays after completion (nothing removed). */
  keep: boolean;
}

export interface CleanupResult {
  kept: boolean;
  /** Work-set rows (file store: files) removed. */
  workRemoved: number;
  /** Pending replays and settled markers removed. */
  pendingRemoved: number;
}

/**
 * Called once a backfill has completed: its work set and pending replays hold emails and phone numbers and
 * are of no use any more. The audit log (no personal data) stays. Idempotent: a retry removes nothing more.
 */
export async function cleanupBackfill(deps: CleanupDeps, { paths }: CleanupInput): Promise<CleanupResult> {
  if (deps.keep) return { kept: true, workRemoved: 0, pendingRemoved: 0 };
  const [workRemoved, pendingRemoved] = await Promise.all([
    deps.work.remove(paths.workFile),
    deps.pending.remove(paths.pendingDir),
  ]);
  return { kept: false, workRemoved, pendingRemoved };
}
