import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'pg';
import { z } from 'zod';
import { workflowDataDir } from '../../store/data-dir';
import { createFilePendingStore } from '../../audit/pending-store';
import { createPostgresPendingStore, pendingKeysOf } from '../../audit/postgres-pending-store';
import { envSchema, requireDatabaseUrlForPostgres } from '../../config';
import { createPostgresWorkStore, workKeysOf } from '../../store/postgres-work-store';
import { createFileWorkStore } from '../../store/work-store';
import { CliError, EXIT, UsageError } from '../errors';
import { write, type CliIo } from '../io';

// `purge --workflow-id ID`: removes what is left of a run's customer data (work set, pending replays) on this
// machine's BACKFILL_DATA_DIR and, with BACKFILL_STORE=postgres, in PostgreSQL; says what it removed. The audit
// log holds no personal data and is kept. For a run that did not complete (a finished one cleans up itself).

export const PURGE_HELP = `Usage: webhook-backfill purge --workflow-id ID

Removes the work set and the pending replays (they hold emails and phone numbers) left by the backfill ID:
under BACKFILL_DATA_DIR on this machine, and with BACKFILL_STORE=postgres in PostgreSQL (BACKFILL_DATABASE_URL).
The audit log is kept. Prints what it removed. Do not purge a run that is still going.
`;

const purgeEnv = z
  .object({
    BACKFILL_DATA_DIR: envSchema.shape.BACKFILL_DATA_DIR,
    BACKFILL_STORE: envSchema.shape.BACKFILL_STORE,
    BACKFILL_AUDIT_STORE: envSchema.shape.BACKFILL_AUDIT_STORE,
    BACKFILL_DATABASE_URL: envSchema.shape.BACKFILL_DATABASE_URL,
  })
  .superRefine(requireDatabaseUrlForPostgres);

export async function runPurge(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    await write(io.stdout, PURGE_HELP);
    return EXIT.OK;
  }
  let workflowId: string | undefined;
  try {
    ({
      values: { 'workflow-id': workflowId },
    } = parseArgs({
      args: [...argv],
      options: { 'workflow-id': { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(`purge: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!workflowId?.trim()) throw new UsageError('purge: --workflow-id ID is required');
  const parsed = purgeEnv.safeParse(io.env);
  if (!parsed.success)
    throw new UsageError(
      `invalid configuration: ${parsed.error.issues.map((i) => `${String(i.path[0])} ${i.message}`).join('; ')}`,
    );
  const env = parsed.data;

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

  if (env.BACKFILL_STORE === 'postgres' && env.BACKFILL_DATABASE_URL) {
    const pool = new Pool({
      connectionString: env.BACKFILL_DATABASE_URL,
      max: 1,
      application_name: 'webhook-backfill-purge',
    });
    pool.on('error', () => undefined);
    try {
      const work = createPostgresWorkStore(pool);
      const pending = createPostgresPendingStore(pool);
      for (const key of await workKeysOf(pool, workflowId))
        lines.push(`removed work set ${key} from PostgreSQL: ${await work.remove(key)} row(s)`);
      for (const key of await pendingKeysOf(pool, workflowId))
        lines.push(`removed pending replays ${key} from PostgreSQL: ${await pending.remove(key)} row(s)`);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      // 42P01: no tables yet, so nothing of any run in this database.
      if (code !== '42P01')
        throw new CliError(`purge: the PostgreSQL store failed${typeof code === 'string' ? ` (${code})` : ''}`);
    } finally {
      await pool.end().catch(() => undefined);
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
