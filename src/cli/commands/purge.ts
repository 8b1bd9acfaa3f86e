import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { workflowDataDir } from '../../store/data-dir';
import { createFilePendingStore } from '../../audit/pending-store';
import { pendingKeysOf } from '../../audit/postgres-pending-store';
import { loadSettings, STORE_SETTINGS } from '../../config';
import { workKeysOf } from '../../store/postgres-work-store';
import { openStores } from '../../store/stores';
import { settingsOrUsage } from '../temporal-env';
import { createFileWorkStore } from '../../store/work-store';
import type { PurgeCommand } from '../args';
import { CliError, EXIT } from '../errors';
import { write, type CliIo } from '../io';

// `purge --workflow-id ID`: removes what is left of a run's customer data (work set, pending replays) on this
// machine's BACKFILL_DATA_DIR and, with BACKFILL_STORE=postgres, in PostgreSQL; says what it removed. The audit
// log holds no personal data and is kept. For a run that did not complete (a finished one cleans up itself).

export async function runPurge(cmd: PurgeCommand, io: CliIo): Promise<number> {
  const { workflowId } = cmd;
  const env = settingsOrUsage(() => loadSettings(io.env, STORE_SETTINGS));

  const lines: string[] = [];
  // The file store: every run (first run id) of this workflow id under the local data directory.
  const workflowDir = workflowDataDir(path.resolve(io.cwd, env.BACKFILL_DATA_DIR), workflowId);
  const runs = await readdir(workflowDir, { withFileTypes: true }).catch(() => []);
  const files = { work: createFileWorkStore(), pending: createFilePendingStore() };
  for (const run of runs.filter((d) => d.isDirectory())) {
    const runDir = path.join(workflowDir, run.name);
    const work = await files.work.remove(path.join(runDir, 'members.jsonl'));
    const pending = await files.pending.remove(path.join(runDir, 'pending'));
    if (work + pending > 0)
      lines.push(`removed ${runDir}: ${work} work file(s), ${pending} pending replay file(s) and marker(s)`);
  }

  // The shared stores, chosen as the workers choose them (src/store/stores.ts).
  const stores = openStores(env, { applicationName: 'webhook-backfill-purge', maxConnections: 1 });
  if (stores.kind.shared === 'postgres' && stores.pool) {
    try {
      for (const key of await workKeysOf(stores.pool, workflowId))
        lines.push(`removed work set ${key} from PostgreSQL: ${await stores.work.remove(key)} row(s)`);
      for (const key of await pendingKeysOf(stores.pool, workflowId))
        lines.push(`removed pending replays ${key} from PostgreSQL: ${await stores.pending.remove(key)} row(s)`);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      // 42P01: no tables yet, so nothing of any run in this database.
      if (code !== '42P01')
        throw new CliError(`purge: the PostgreSQL store failed${typeof code === 'string' ? ` (${code})` : ''}`);
    } finally {
      await stores.close();
    }
  }
  if (lines.length === 0)
    lines.push(
      `nothing left of ${workflowId} to remove${env.BACKFILL_STORE === 'postgres' ? ' (PostgreSQL and ' : ' ('}${workflowDir})`,
    );
  lines.push('the audit log is kept (it holds no personal data)');
  await write(io.stdout, `${lines.join('\n')}\n`);
  return EXIT.OK;
}
