import path from 'node:path';
import { isUnder } from '../path-confinement';

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

/** The files of a run's directory: the work file and the pending replays. */
export const runFiles = (dir: string): { workFile: string; pendingDir: string } => ({
  workFile: path.join(dir, 'members.jsonl'),
  pendingDir: path.join(dir, 'pending'),
});

/**
 * Why `paths` are not this workflow's own paths on this worker, or null when they are. Every activity that opens,
 * writes or removes them checks first, whatever the workflow passed (the preparation derives them, but they travel
 * through the workflow's state): the run's directory is one entry under <BACKFILL_DATA_DIR>/<workflow id>/, really
 * (symlinks and `..` resolved), the work file and pending directory are its own, and the audit log lies under
 * BACKFILL_DATA_DIR as the preparation requires of an `auditPath`. Workers of one deployment share the value of
 * BACKFILL_DATA_DIR (each on its own disk or not).
 */
export function runPathsProblem(
  dataDir: string,
  workflowId: string,
  paths: { dir: string; workFile: string; auditPath: string; pendingDir: string },
): string | null {
  const own = workflowDataDir(dataDir, workflowId);
  const entry = path.basename(paths.dir);
  const expected = runFiles(paths.dir);
  if (path.dirname(paths.dir) !== own || entry === '' || entry === '.' || entry === '..' || !isUnder(paths.dir, [own]))
    return `the run's directory ${JSON.stringify(paths.dir)} is not one of workflow ${JSON.stringify(workflowId)}'s under BACKFILL_DATA_DIR (${dataDir})`;
  for (const key of ['workFile', 'pendingDir'] as const) {
    if (paths[key] !== expected[key]) return `${key} ${JSON.stringify(paths[key])} is not in the run's directory`;
  }
  if (!isUnder(paths.auditPath, [dataDir]))
    return `auditPath ${JSON.stringify(paths.auditPath)} is not under the worker's BACKFILL_DATA_DIR (${dataDir})`;
  return null;
}
