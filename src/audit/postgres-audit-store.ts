import type { Pool, QueryResultRow } from 'pg';
import { COMPARED_FIELDS, type OutcomeKind } from '../domain/types';
import { quoteQualifiedName, isPlainQualifiedName, IDENTIFIER_RULE } from '../source/postgres-source';
import {
  auditHeaderTableDdl,
  auditHeaderTableName,
  auditTableDdl,
  auditWaitsTableDdl,
  auditWaitsTableName,
  createIfMissing,
} from '../store/postgres-schema';
import { loggedEntry, type LoggedEntry } from './audit-entry';
import { OUTCOME_NAMES } from './audit-entry';
import { asAuditHeader, type AuditHeader } from './audit-header';
import { asRunWait, keepWait, MAX_WAITS_READ, waitKey, type RunWait } from './run-wait';
import {
  AuditLogError,
  AuditLogNotFoundError,
  asAuditRecord,
  newReadStats,
  type AuditReadStats,
  type AuditStore,
} from './audit-store';
import type { RecordedOutcome } from '../domain/outcome-code';

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
  /** Rows per query when streaming a log with entries() (keyset pages on line). */
  pageSize?: number;
}

export interface PostgresAuditStore extends AuditStore {
  /** Creates the tables if needed (appends, lookups and writeHeader do this themselves on first use). */
  ready(): Promise<void>;
  /** The quoted table name, for whoever wants to read the log with SQL. */
  readonly table: string;
  /** The quoted name of the table of the logs' headers (`<table>_header`). */
  readonly headerTable: string;
  /** The quoted name of the table of the runs' waits for the receiver or a store (`<table>_waits`). */
  readonly waitsTable: string;
}

/** Only `query` is used, so a Pool (concurrent activities share its connections) or a Client will do. */
export type AuditQueryable = Pick<Pool, 'query'>;

export const DEFAULT_AUDIT_TABLE = 'backfill_audit';
export const DEFAULT_AUDIT_PAGE_SIZE = 1000;

/**
 * jsonb keeps an object's keys in its own order (shortest first); entries() gives them back in a fixed,
 * readable order (who and what first, as the activities start an entry, then LoggedEntry's declaration
 * order), so an export of the table reads like one of the file. Unknown keys follow.
 */
const ENTRY_KEY_ORDER = [
  'ts',
  'backfill',
  'runLabel',
  'line',
  'memberId',
  'outcome',
  'verdict',
  'dryRun',
  'fields',
  'reason',
  'stage',
  'event',
  'delivered',
  'webhookId',
  'status',
  'attempts',
  'deferred',
  'updatedAt',
  'unsubscribeEmailUpdatedAt',
  'unsubscribeTextingUpdatedAt',
] as const;
const KNOWN_KEYS = new Set<string>(ENTRY_KEY_ORDER);

function inEntryOrder(value: Record<string, unknown>): Record<string, unknown> {
  const ordered: Record<string, unknown> = {};
  for (const key of ENTRY_KEY_ORDER) if (key in value) ordered[key] = value[key];
  for (const key of Object.keys(value)) if (!KNOWN_KEYS.has(key)) ordered[key] = value[key];
  return ordered;
}

export function createPostgresAuditStore(
  pool: AuditQueryable,
  options: PostgresAuditStoreOptions = {},
): PostgresAuditStore {
  const name = options.table ?? DEFAULT_AUDIT_TABLE;
  if (!isPlainQualifiedName(name)) throw new Error(`audit table name ${IDENTIFIER_RULE} (or schema.name)`);
  const table = quoteQualifiedName(name);
  if (!isPlainQualifiedName(auditHeaderTableName(name)))
    throw new Error(
      `audit table name too long for its header table ${auditHeaderTableName(name)} (${IDENTIFIER_RULE})`,
    );
  const headerTable = quoteQualifiedName(auditHeaderTableName(name));
  if (!isPlainQualifiedName(auditWaitsTableName(name)))
    throw new Error(`audit table name too long for its waits table ${auditWaitsTableName(name)} (${IDENTIFIER_RULE})`);
  const waitsTable = quoteQualifiedName(auditWaitsTableName(name));
  const pageSize = options.pageSize ?? DEFAULT_AUDIT_PAGE_SIZE;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1)
    throw new RangeError(`audit page size must be a positive integer, got ${pageSize}`);

  let created: Promise<void> | undefined;
  const ready = () => {
    created ??= createTables(pool, [table, headerTable, waitsTable]).catch((error: unknown) => {
      created = undefined; // a database that was down must not poison the store for good
      throw error;
    });
    return created;
  };

  // Not created here either: a log without the table (an install from before headers) has no header.
  const readHeader = async (key: string): Promise<AuditHeader | undefined> => {
    let rows: QueryResultRow[];
    try {
      ({ rows } = await pool.query<QueryResultRow>(`SELECT header FROM ${headerTable} WHERE key = $1`, [key]));
    } catch (error) {
      if ((error as { code?: unknown }).code === '42P01') return undefined;
      throw readError(key, headerTable, error);
    }
    return rows.length > 0 ? asAuditHeader(rows[0]!.header) : undefined;
  };

  // Not created here either: a log from before waits were recorded has none.
  const readWaits = async (key: string): Promise<RunWait[]> => {
    let rows: QueryResultRow[];
    try {
      ({ rows } = await pool.query<QueryResultRow>(
        `SELECT wait FROM ${waitsTable} WHERE key = $1 ORDER BY wait->>'since', id LIMIT ${MAX_WAITS_READ}`,
        [key],
      ));
    } catch (error) {
      if ((error as { code?: unknown }).code === '42P01') return [];
      throw readError(key, waitsTable, error);
    }
    const waits: RunWait[] = [];
    const seen = new Set<string>();
    for (const row of rows) {
      const wait = asRunWait(row.wait);
      if (wait) keepWait(waits, seen, wait);
    }
    return waits;
  };

  return {
    table,
    headerTable,
    waitsTable,
    ready,
    header: readHeader,

    async recordWait(key, wait) {
      await ready();
      await pool.query(
        `INSERT INTO ${waitsTable} (key, id, wait) VALUES ($1, $2, $3::jsonb) ON CONFLICT (key, id) DO NOTHING`,
        [key, waitKey(wait), JSON.stringify(wait)],
      );
    },

    // First wins (the key is the primary key), and only before the log's first record, as in the file.
    async writeHeader(key, header) {
      await ready();
      await pool.query(
        `INSERT INTO ${headerTable} (key, channel_id, header)
         SELECT $1, $2, $3::jsonb WHERE NOT EXISTS (SELECT 1 FROM ${table} WHERE key = $1)
         ON CONFLICT (key) DO NOTHING`,
        [key, header.channel.id, JSON.stringify(header)],
      );
      return readHeader(key);
    },

    async lookup(key, lines) {
      const found = new Map<number, RecordedOutcome>();
      const wanted = [...new Set(lines)].filter((line) => Number.isSafeInteger(line) && line > 0 && line <= MAX_LINE);
      if (wanted.length === 0) return found;
      await ready();
      const { rows } = await pool.query<QueryResultRow>(
        `SELECT line, outcome, deferred, entry->'fields' AS fields, entry->'changedDuringRepair' AS changed
         FROM ${table} WHERE key = $1 AND line = ANY ($2::int[])`,
        [key, wanted],
      );
      for (const row of rows) {
        const outcome = String(row.outcome);
        if (!OUTCOME_NAMES.has(outcome)) continue; // written by something else: not a record this job understands
        // The differing fields in their canonical order, as the file store's index returns them.
        const listed: unknown = row.fields;
        const fields = Array.isArray(listed) ? COMPARED_FIELDS.filter((field) => listed.includes(field)) : [];
        found.set(Number(row.line), {
          outcome: outcome as OutcomeKind,
          deferred: row.deferred === true,
          ...(fields.length ? { fields } : {}),
          ...(row.changed === true ? { changedDuringRepair: true } : {}),
        });
      }
      return found;
    },

    async append(key, entries) {
      const fresh: LoggedEntry[] = [];
      const seen = new Set<number>();
      for (const entry of entries.map(loggedEntry)) {
        if (!Number.isSafeInteger(entry.line) || entry.line < 1 || entry.line > MAX_LINE)
          throw new RangeError(`audit entry line must be a positive integer, got ${entry.line}`);
        if (!OUTCOME_NAMES.has(entry.outcome))
          throw new RangeError(`audit entry outcome must be one of ${[...OUTCOME_NAMES].join(', ')}`);
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

    // The header first (into stats), then keyset pages on (key, line), the primary key: each page is one indexed
    // range scan, and at most one page is held at a time. One row per line, so there is nothing repeated to drop.
    // The table is not created here: reading (the report, a selection) must not need the right to create it.
    async *entries(key: string, stats: AuditReadStats = newReadStats()) {
      const header = await readHeader(key);
      if (header) stats.header = header;
      let after = 0;
      for (;;) {
        let rows: QueryResultRow[];
        try {
          ({ rows } = await pool.query<QueryResultRow>(
            `SELECT line, entry FROM ${table} WHERE key = $1 AND line > $2 ORDER BY line LIMIT $3`,
            [key, after, pageSize],
          ));
        } catch (error) {
          throw readError(key, table, error);
        }
        // A log with a header and no record yet (a run of no rows, or one just prepared) is an empty log.
        if (rows.length === 0 && after === 0 && !header)
          throw new AuditLogNotFoundError(key, `no records under this key in the table ${table}`);
        for (const row of rows) {
          after = Number(row.line);
          const entry = asAuditRecord(row.entry);
          if (!entry) {
            stats.unreadable += 1;
            continue;
          }
          stats.entries += 1;
          yield inEntryOrder(entry as unknown as Record<string, unknown>) as unknown as LoggedEntry;
        }
        if (rows.length < pageSize) break;
      }
      const waits = await readWaits(key);
      if (waits.length > 0) stats.waits = waits;
    },
  };
}

/** A read failure as one line: SQLSTATE or network code only (pg's texts may quote the connection's user or database). */
function readError(key: string, table: string, error: unknown): AuditLogError {
  const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : undefined;
  if (code === '42P01' || code === '3F000')
    return new AuditLogNotFoundError(
      key,
      `there is no audit table ${table} in the database of BACKFILL_DATABASE_URL (SQLSTATE ${code})`,
    );
  if (code === '28P01' || code === '28000')
    return new AuditLogError(
      key,
      `the database refused the user or password in BACKFILL_DATABASE_URL (SQLSTATE ${code})`,
    );
  if (code === '3D000')
    return new AuditLogError(key, `the database named in BACKFILL_DATABASE_URL does not exist (SQLSTATE ${code})`);
  if (code !== undefined && /^[0-9A-DF-Z][0-9A-Z]{4}$/.test(code))
    return new AuditLogError(key, `the query of ${table} failed (SQLSTATE ${code})`);
  if (code !== undefined) return new AuditLogError(key, `cannot reach the database of BACKFILL_DATABASE_URL (${code})`);
  const message = error instanceof Error ? error.message : '';
  return new AuditLogError(
    key,
    `the connection to the database of BACKFILL_DATABASE_URL ${/timeout/i.test(message) ? 'timed out' : 'failed or was lost'}`,
  );
}

/** PostgreSQL's integer column. */
const MAX_LINE = 2_147_483_647;

async function createTables(
  pool: AuditQueryable,
  [table, headerTable, waitsTable]: [string, string, string],
): Promise<void> {
  await createIfMissing(pool, auditTableDdl(table));
  await createIfMissing(pool, auditHeaderTableDdl(headerTable));
  await createIfMissing(pool, auditWaitsTableDdl(waitsTable));
}
