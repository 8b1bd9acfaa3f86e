import { Pool } from 'pg';
import { createFileAuditStore, type AuditStore } from '../audit/audit-store';
import { createFilePendingStore, type PendingStore } from '../audit/pending-store';
import { createPostgresAuditStore, type PostgresAuditStore } from '../audit/postgres-audit-store';
import { createPostgresPendingStore } from '../audit/postgres-pending-store';
import { auditStoreOf, type StoreSettings } from '../config';
import { createPostgresWorkStore } from './postgres-work-store';
import { createFileWorkStore, type WorkStore } from './work-store';

// The one place that turns the store settings into stores, for the worker and for every CLI command that reads or
// removes what workers stored (`report`, `purge`, `verify`'s report): the same environment chooses the same store
// everywhere. BACKFILL_STORE=postgres keeps everything workers share in PostgreSQL, the audit log included;
// BACKFILL_AUDIT_STORE=postgres only the audit log; else files (under BACKFILL_DATA_DIR by default).

export interface Stores {
  audit: AuditStore;
  pending: PendingStore;
  work: WorkStore;
  /** Where each lives, for messages. */
  kind: { audit: 'file' | 'postgres'; shared: 'file' | 'postgres' };
  /** The database's pool when any store is in PostgreSQL (the worker creates its tables; purge lists its keys). */
  pool?: Pool;
  /** The audit store again when it is PostgreSQL's (the worker checks its table before polling). */
  postgresAudit?: PostgresAuditStore;
  /** Ends the database connections (nothing to do for files). */
  close(): Promise<void>;
}

export interface StoreOptions {
  /** PostgreSQL's application_name, so a DBA can tell who connects. */
  applicationName: string;
  maxConnections: number;
  /** An idle connection dropped by the server: told here (never the pg message); the next query reconnects. */
  onConnectionLost?: (code: string | undefined) => void;
}

/** Nothing connects before the first query. */
export function openStores(settings: StoreSettings, o: StoreOptions): Stores {
  const files = { audit: createFileAuditStore(), pending: createFilePendingStore(), work: createFileWorkStore() };
  const audit = auditStoreOf(settings);
  if (audit !== 'postgres' || settings.BACKFILL_DATABASE_URL === undefined) {
    return { ...files, kind: { audit: 'file', shared: 'file' }, close: async () => undefined };
  }
  const pool = new Pool({
    connectionString: settings.BACKFILL_DATABASE_URL,
    max: o.maxConnections,
    application_name: o.applicationName,
    connectionTimeoutMillis: 10_000,
  });
  pool.on('error', (err: Error & { code?: string }) => o.onConnectionLost?.(err.code));
  const close = () => pool.end().catch(() => undefined);
  const postgresAudit = createPostgresAuditStore(pool);
  if (settings.BACKFILL_STORE !== 'postgres')
    return { ...files, audit: postgresAudit, postgresAudit, kind: { audit: 'postgres', shared: 'file' }, pool, close };
  return {
    audit: postgresAudit,
    postgresAudit,
    pending: createPostgresPendingStore(pool),
    work: createPostgresWorkStore(pool),
    kind: { audit: 'postgres', shared: 'postgres' },
    pool,
    close,
  };
}
