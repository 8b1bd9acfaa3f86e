import type { AuditStore } from '../audit/audit-store';
import { loadSettings, STORE_SETTINGS, type StoreSettings } from '../config';
import { openStores } from '../store/stores';
import { settingsOrUsage } from './temporal-env';

// Where `report` reads an audit log: the store the workers write to, chosen from the same variables by the same
// code (src/config.ts loadSettings, src/store/stores.ts openStores): BACKFILL_STORE=postgres or
// BACKFILL_AUDIT_STORE=postgres with BACKFILL_DATABASE_URL reads PostgreSQL; else the JSONL file at its path.

export type AuditEnv = StoreSettings;

/** Parses the environment; a bad variable is a configuration error (exit 2) naming it, never its value. */
export function loadAuditEnv(env: NodeJS.ProcessEnv): AuditEnv {
  return settingsOrUsage(() => loadSettings(env, STORE_SETTINGS));
}

export interface AuditReader {
  store: AuditStore;
  /** Where the log is read from, for messages: "file" or "postgres". */
  kind: 'file' | 'postgres';
  close(): Promise<void>;
}

/** The audit store to read from; close() ends its connections. Nothing connects before the first read. */
export function openAuditReader(env: AuditEnv): AuditReader {
  const stores = openStores(env, { applicationName: 'webhook-backfill-report', maxConnections: 1 });
  return { store: stores.audit, kind: stores.kind.audit, close: () => stores.close() };
}
