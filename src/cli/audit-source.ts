import { Pool } from 'pg';
import { z } from 'zod';
import { createFileAuditStore, type AuditStore } from '../audit/audit-store';
import { createPostgresAuditStore } from '../audit/postgres-audit-store';
import { envSchema, requireDatabaseUrlForPostgres } from '../config';
import { CliError, EXIT } from './errors';

// Where `report` reads an audit log: the same store the workers write to. BACKFILL_AUDIT_STORE and
// BACKFILL_DATABASE_URL are the worker's variables with the worker's validation (src/config.ts);
// without them, the log is the JSONL file at its path.

export const auditEnvSchema = z
  .object({
    BACKFILL_AUDIT_STORE: envSchema.shape.BACKFILL_AUDIT_STORE,
    BACKFILL_DATABASE_URL: envSchema.shape.BACKFILL_DATABASE_URL,
  })
  .superRefine(requireDatabaseUrlForPostgres);

export type AuditEnv = z.infer<typeof auditEnvSchema>;

/** Parses the environment; a bad variable is a configuration error (exit 2) naming it, never its value. */
export function loadAuditEnv(env: NodeJS.ProcessEnv): AuditEnv {
  const result = auditEnvSchema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${String(issue.path[0] ?? 'environment')} ${issue.message}`);
  throw new CliError(`invalid configuration: ${problems.join('; ')}`, EXIT.USAGE);
}

export interface AuditReader {
  store: AuditStore;
  /** Where the log is read from, for messages: "file" or "PostgreSQL table <name>". */
  kind: 'file' | 'postgres';
  close(): Promise<void>;
}

/** The audit store to read from; close() ends its connections. Nothing connects before the first read. */
export function openAuditReader(env: AuditEnv): AuditReader {
  if (env.BACKFILL_AUDIT_STORE !== 'postgres' || env.BACKFILL_DATABASE_URL === undefined) {
    return { store: createFileAuditStore(), kind: 'file', close: async () => undefined };
  }
  const pool = new Pool({
    connectionString: env.BACKFILL_DATABASE_URL,
    max: 1,
    application_name: 'webhook-backfill-report',
    connectionTimeoutMillis: 10_000,
  });
  // A connection dropped while idle must not crash the command: the read in progress fails with its own error.
  pool.on('error', () => undefined);
  return { store: createPostgresAuditStore(pool), kind: 'postgres', close: () => pool.end().catch(() => undefined) };
}
