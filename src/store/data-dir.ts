import path from 'node:path';

// Where a backfill's files live on a worker's disk (BACKFILL_STORE=file): <BACKFILL_DATA_DIR>/<workflow id>/<first
// run id>/ holds the work file, its batch index, the pending replays and (by default) the audit log. Known here
// only, by the preparation that creates it and by `webhook-backfill purge` that removes it.

/** Workflow and run ids may hold any character; file names may not. */
export function safeName(id: string): string {
  return encodeURIComponent(id)
    .replace(/\*/g, '%2A')
    .replace(/^\.+/, (dots) => '%2E'.repeat(dots.length));
}

/** The directory of every run of one workflow id (what purge removes). */
export const workflowDataDir = (dataDir: string, workflowId: string): string =>
  path.resolve(dataDir, safeName(workflowId));

/** The directory of one backfill: its workflow id and the first run of its continue-as-new chain. */
export const runDataDir = (dataDir: string, workflowId: string, firstRunId: string): string =>
  path.join(workflowDataDir(dataDir, workflowId), safeName(firstRunId));
