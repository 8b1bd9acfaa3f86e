import type { Pool } from 'pg';

/**
 * Every table the workers share through PostgreSQL (BACKFILL_STORE=postgres), defined here and only here, all in
 * one schema: the connection's default (the first of its search_path, normally `public`), the schema the audit
 * table `backfill_audit` has always been created in. Created at worker start when missing; nothing is ever
 * altered or dropped, so an existing `backfill_audit` table from BACKFILL_AUDIT_STORE=postgres is used as it is.
 *
 * - backfill_work_sets: one row per prepared work set (its key is the run's workFile path, an opaque name here),
 *   with the summary prepareBackfill returns; written in the same transaction as the rows, so it exists exactly
 *   when the whole work set does.
 * - backfill_work: the normalised source, one row per kept source row; `ord` (0-based position) is the batch
 *   boundary: batch k of size s is ord in [k*s, (k+1)*s), one range scan of the primary key.
 * - backfill_work_growth: one row per work set being written while its batches run (the growing work set,
 *   src/store/postgres-growing-work.ts): `written` rows of it are committed (ord 0 to written - 1, each commit in
 *   the same transaction as its rows, so the marker never runs ahead of them), `digest` is the SHA-256 of those rows'
 *   work lines (a retry checks that the source still gives them) and `attempt` the one normaliser attempt allowed to
 *   write on (a retry takes it over; an attempt that lost it writes nothing more). Kept once the set is complete.
 *   Added after backfill_work_sets: an existing database gets it at the next worker start (CREATE IF NOT EXISTS).
 * - backfill_pending: replays handed to their own activity. `payload` (personal data) is set while the replay
 *   waits and cleared when it is settled; `settled` is the marker the batches read, by line.
 * The audit table `backfill_audit`, its header table `backfill_audit_header` and its waits table
 * `backfill_audit_waits` are below (auditTableDdl, auditHeaderTableDdl, auditWaitsTableDdl), created by the audit
 * store (also with BACKFILL_AUDIT_STORE=postgres alone).
 */
export const WORK_SETS_TABLE = 'backfill_work_sets';
export const WORK_TABLE = 'backfill_work';
export const PENDING_TABLE = 'backfill_pending';
export const GROWTH_TABLE = 'backfill_work_growth';

export const STORE_DDL: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS ${WORK_SETS_TABLE} (
    key text PRIMARY KEY,
    workflow_id text NOT NULL,
    rows integer NOT NULL CHECK (rows >= 0),
    members integer NOT NULL CHECK (members >= 0),
    skipped integer NOT NULL CHECK (skipped >= 0),
    bytes bigint NOT NULL CHECK (bytes >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE INDEX IF NOT EXISTS ${WORK_SETS_TABLE}_workflow_id ON ${WORK_SETS_TABLE} (workflow_id)`,
  `CREATE TABLE IF NOT EXISTS ${WORK_TABLE} (
    key text NOT NULL,
    ord integer NOT NULL CHECK (ord >= 0),
    entry jsonb NOT NULL,
    PRIMARY KEY (key, ord)
  )`,
  `CREATE TABLE IF NOT EXISTS ${GROWTH_TABLE} (
    key text PRIMARY KEY,
    workflow_id text NOT NULL,
    attempt text NOT NULL,
    written integer NOT NULL DEFAULT 0 CHECK (written >= 0),
    digest text,
    updated_at timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE INDEX IF NOT EXISTS ${GROWTH_TABLE}_workflow_id ON ${GROWTH_TABLE} (workflow_id)`,
  `CREATE TABLE IF NOT EXISTS ${PENDING_TABLE} (
    key text NOT NULL,
    line integer NOT NULL CHECK (line > 0),
    workflow_id text NOT NULL,
    payload jsonb,
    settled boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, line)
  )`,
  `CREATE INDEX IF NOT EXISTS ${PENDING_TABLE}_workflow_id ON ${PENDING_TABLE} (workflow_id)`,
];

/** The audit table's definition (its name is configurable, hence a function); used by the audit store. */
export const auditTableDdl = (table: string) => `CREATE TABLE IF NOT EXISTS ${table} (
    key text NOT NULL,
    line integer NOT NULL CHECK (line > 0),
    entry jsonb NOT NULL,
    outcome text NOT NULL,
    deferred boolean NOT NULL DEFAULT false,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, line)
  )`;

/**
 * The audit log's header (src/audit/audit-header.ts): at most one row per log, keyed like the audit table (the
 * run's auditPath), written by prepareBackfill before any record (the first header wins). `channel_id` is the
 * header's channel id, as a column for SQL. Named after the audit table: `backfill_audit_header`.
 */
export const auditHeaderTableDdl = (table: string) => `CREATE TABLE IF NOT EXISTS ${table} (
    key text PRIMARY KEY,
    channel_id text NOT NULL,
    header jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
  )`;

/** The header table's name for an audit table's (`name` or `schema.name`): same schema, `<name>_header`. */
export const auditHeaderTableName = (auditTable: string) => `${auditTable}_header`;

/**
 * The times a run waited for its receiver or a store (src/audit/run-wait.ts), keyed like the audit table, one row
 * per wait (`id` is its waitKey: recording it again does nothing). Named after the audit table: `backfill_audit_waits`.
 */
export const auditWaitsTableDdl = (table: string) => `CREATE TABLE IF NOT EXISTS ${table} (
    key text NOT NULL,
    id text NOT NULL,
    wait jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, id)
  )`;

/** The waits table's name for an audit table's: same schema, `<name>_waits`. */
export const auditWaitsTableName = (auditTable: string) => `${auditTable}_waits`;

export type Queryable = Pick<Pool, 'query'>;

/**
 * Runs one CREATE ... IF NOT EXISTS. Two workers creating a table at once: IF NOT EXISTS is not atomic, and the
 * loser sees a unique violation on the catalog (23505), "relation already exists" (42P07) or "type already exists"
 * (42710, the table's row type). The table is there.
 */
export async function createIfMissing(pool: Queryable, ddl: string): Promise<void> {
  // CREATE INDEX IF NOT EXISTS locks its table (SHARE) before it finds the index there: a worker starting would wait
  // for every write under way on it (a normaliser's commit, a batch's). An existing relation is left alone unlocked.
  const name = /^CREATE (?:TABLE|INDEX) IF NOT EXISTS (\S+)/.exec(ddl)?.[1];
  if (name !== undefined) {
    const { rows } = await pool.query<{ found: string | null }>('SELECT to_regclass($1)::text AS found', [name]);
    if (rows[0]?.found) return;
  }
  try {
    await pool.query(ddl);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== '23505' && code !== '42P07' && code !== '42710') throw error;
  }
}

/** The work and pending tables (the audit table is created by its store, under its configured name). */
export async function createStoreTables(pool: Queryable): Promise<void> {
  for (const ddl of STORE_DDL) await createIfMissing(pool, ddl);
}
