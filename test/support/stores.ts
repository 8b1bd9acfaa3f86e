// The stores of BACKFILL_STORE=file|postgres side by side, so one contract test runs on both.
import type { LoggedEntry } from '../../src/audit/audit-entry';
import { AuditLogNotFoundError } from '../../src/audit/audit-store';
import { createFilePendingStore, type PendingStore } from '../../src/audit/pending-store';
import { createPostgresAuditStore } from '../../src/audit/postgres-audit-store';
import { createPostgresPendingStore } from '../../src/audit/postgres-pending-store';
import { createStoreTables } from '../../src/store/postgres-schema';
import { createPostgresWorkStore } from '../../src/store/postgres-work-store';
import { createFileWorkStore, type WorkStore } from '../../src/store/work-store';
import type { TestPostgres } from './postgres';

export type StoreKind = 'file' | 'postgres';

let databases = 0;

/** Fresh stores of `kind`; for postgres in a new database of `pg`, tables created as a worker creates them. */
export async function createStoresFor(
  kind: StoreKind,
  pg: TestPostgres,
): Promise<{ work: WorkStore; pending: PendingStore; env: Record<string, string> }> {
  if (kind === 'file')
    return { work: createFileWorkStore(), pending: createFilePendingStore(), env: { BACKFILL_STORE: 'file' } };
  const name = `stores_${process.pid}_${++databases}`;
  const url = await pg.createDatabase(name);
  const pool = pg.pool(name);
  await createStoreTables(pool);
  return {
    work: createPostgresWorkStore(pool),
    pending: createPostgresPendingStore(pool),
    env: { BACKFILL_STORE: 'postgres', BACKFILL_DATABASE_URL: url },
  };
}

/** The audit log `auditPath` as recorded so far in the database at `url` (a database of `pg`); [] before any entry. */
export async function postgresAuditEntries(pg: TestPostgres, url: string, auditPath: string): Promise<LoggedEntry[]> {
  // Polled (waitFor): one pool per database for every read, not one each.
  const pool = pg.sharedPool(new URL(url).pathname.slice(1));
  const entries: LoggedEntry[] = [];
  try {
    for await (const entry of createPostgresAuditStore(pool).entries(auditPath)) entries.push(entry);
  } catch (error) {
    if (!(error instanceof AuditLogNotFoundError)) throw error; // nothing recorded yet
  }
  return entries;
}
