import type { Pool, QueryResultRow } from 'pg';
import { COMPARED_FIELDS, type OutcomeKind } from '../types';
import { quoteQualifiedName, isPlainQualifiedName, IDENTIFIER_RULE } from '../source/postgres-source';
import type { AuditEntry } from './audit-entry';
import { OUTCOME_CODES } from './audit-entry';
import type { AuditStore, RecordedOutcome } from './audit-store';

/**
 * The audit log in a PostgreSQL table, for teams that want to query it with SQL or keep it with their
 * other records. Same contract as the JSONL file: one row per source line
 * of a backfill, the first record wins, and a line once recorded is never recorded again. Here the
 * `auditPath` the activities pass is only the key naming the backfill's log.
 *
 * Each append is one INSERT ... ON CONFLICT DO NOTHING committed before it returns, so a recorded line
 * is durable exactly when the file store's fsync would have made it so.
 */

export interface PostgresAuditStoreOptions {
  /** `name` or `schema.name`; created when missing. */
  table?: string;
}

export interface PostgresAuditStore extends AuditStore {
  /** Creates the table if needed (appends and lookups do this themselves on first use). */
  ready(): Promise<void>;
  /** The quoted table name, for whoever wants to read the log with SQL. */
  readonly table: string;
}

/** Only `query` is used, so a Pool (concurrent activities share its connections) or a Client will do. */
export type AuditQueryable = Pick<Pool, 'query'>;

export const DEFAULT_AUDIT_TABLE = 'backfill_audit';

const OUTCOMES = new Set<string>(Object.keys(OUTCOME_CODES));

export function createPostgresAuditStore(pool: AuditQueryable, options: PostgresAuditStoreOptions = {}): PostgresAuditStore {
  const name = options.table ?? DEFAULT_AUDIT_TABLE;
  if (!isPlainQualifiedName(name)) throw new Error(`audit table name ${IDENTIFIER_RULE} (or schema.name)`);
  const table = quoteQualifiedName(name);

  let created: Promise<void> | undefined;
  const ready = () => {
    created ??= createTable(pool, table).catch((error: unknown) => {
      created = undefined; // a database that was down must not poison the store for good
      throw error;
    });
    return created;
  };

  return {
    table,
    ready,

    async lookup(key, lines) {
      const found = new Map<number, RecordedOutcome>();
      const wanted = [...new Set(lines)].filter((line) => Number.isSafeInteger(line) && line > 0 && line <= MAX_LINE);
      if (wanted.length === 0) return found;
      await ready();
      const { rows } = await pool.query<QueryResultRow>(`SELECT line, outcome, deferred, entry->'fields' AS fields FROM ${table} WHERE key = $1 AND line = ANY ($2::int[])`, [key, wanted]);
      for (const row of rows) {
        const outcome = String(row.outcome);
        if (!OUTCOMES.has(outcome)) continue; // written by something else: not a record this job understands
        // The differing fields in their canonical order, as the file store's index returns them.
        const listed: unknown = row.fields;
        const fields = Array.isArray(listed) ? COMPARED_FIELDS.filter((field) => listed.includes(field)) : [];
        found.set(Number(row.line), { outcome: outcome as OutcomeKind, deferred: row.deferred === true, ...(fields.length ? { fields } : {}) });
      }
      return found;
    },

    async append(key, entries) {
      const fresh: AuditEntry[] = [];
      const seen = new Set<number>();
      for (const entry of entries) {
        if (!Number.isSafeInteger(entry.line) || entry.line < 1 || entry.line > MAX_LINE) throw new RangeError(`audit entry line must be a positive integer, got ${entry.line}`);
        if (!OUTCOMES.has(entry.outcome)) throw new RangeError(`audit entry outcome must be one of ${[...OUTCOMES].join(', ')}`);
        if (seen.has(entry.line)) continue; // first wins within one call too, as in the file
        seen.add(entry.line);
        fresh.push(entry);
      }
      if (fresh.length === 0) return;
      await ready();
      // One statement, one parameter for all entries: line, outcome and deferred are read from the
      // entry itself, so the columns can never disagree with the stored record.
      await pool.query(
        `INSERT INTO ${table} (key, line, entry, outcome, deferred)
         SELECT $1, (e->>'line')::int, e, e->>'outcome', coalesce((e->>'deferred')::boolean, false)
           FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS t(e, n)
          ORDER BY n
         ON CONFLICT (key, line) DO NOTHING`,
        [key, JSON.stringify(fresh)],
      );
    },
  };
}

/** PostgreSQL's integer column. */
const MAX_LINE = 2_147_483_647;

async function createTable(pool: AuditQueryable, table: string): Promise<void> {
  const ddl = `CREATE TABLE IF NOT EXISTS ${table} (
    key text NOT NULL,
    line integer NOT NULL CHECK (line > 0),
    entry jsonb NOT NULL,
    outcome text NOT NULL,
    deferred boolean NOT NULL DEFAULT false,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, line)
  )`;
  try {
    await pool.query(ddl);
  } catch (error) {
    // Two workers creating the table at once: IF NOT EXISTS is not atomic, and the loser sees a
    // unique violation on the catalog (23505), "relation already exists" (42P07) or "type already
    // exists" (42710, the table's row type). The table is there.
    const code = (error as { code?: unknown }).code;
    if (code !== '23505' && code !== '42P07' && code !== '42710') throw error;
  }
}
