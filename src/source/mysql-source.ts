import { createConnection, type Connection, type RowDataPacket } from 'mysql2';
import type { Connection as PromiseConnection } from 'mysql2/promise';
import { z } from 'zod';
import type { MysqlSourceSpec } from '../../workflows/definitions';
import { isMysqlUrl } from '../config';
import { MEMBER_COLUMNS, type MemberColumn, type SourceEntry } from '../domain/types';
import { sourceLabel } from '../domain/source-label';
import { checkedSpec, SourceConfigError } from './errors';
import type { MemberSource } from './member-source';
import { columnMapSchema } from './column-map';
import { RETRYABLE_NET_CODES } from './postgres-source';
import { rowEntry } from './row-schema';

/**
 * Members read from a MySQL or MariaDB table (through mysql2), yielding the same entries as a CSV file so the prepare
 * step (work file, duplicates, bad rows) treats every kind alike.
 *
 * Safety: table and column names from the input are validated and backquoted; the reader runs only its own
 * statements, inside a READ ONLY transaction. Messages name tables, columns and error codes, never row values
 * (personal data) nor the connection string (it holds a password).
 *
 * One SELECT streams the whole table in memberId order: the server sorts once and mysql2 pauses the socket while a
 * chunk is being handled, so a million rows pass in bounded memory (keyset pages would sort the table again for
 * every page, since the key is compared byte-wise, not in the column's case-insensitive collation).
 */

/** Rows handed on at once to the preparation, and mysql2's read-ahead. */
export const CHUNK_ROWS = 1000;

// ---------------------------------------------------------------------------------------------------
// The spec as users write it

const PLAIN_IDENTIFIER = /^[\p{L}_][\p{L}\p{N}_$]*$/u;
/** MySQL names are at most 64 characters. */
const MAX_IDENTIFIER_CHARS = 64;
export const MYSQL_IDENTIFIER_RULE =
  'must be a plain SQL name: letters, digits, _ or $, not starting with a digit, at most 64 characters';

function isPlainIdentifier(name: string): boolean {
  return PLAIN_IDENTIFIER.test(name) && [...name].length <= MAX_IDENTIFIER_CHARS;
}

function isPlainQualifiedName(name: string): boolean {
  const parts = name.split('.');
  return parts.length <= 2 && parts.every(isPlainIdentifier);
}

/** Backquotes a validated name; throws on anything else (callers validate first). */
function quoteIdentifier(name: string): string {
  if (!isPlainIdentifier(name)) throw new Error(`not a plain SQL name (${MYSQL_IDENTIFIER_RULE})`);
  return `\`${name}\``;
}

const columnName = z.string({ error: 'must be a string' }).refine(isPlainIdentifier, { error: MYSQL_IDENTIFIER_RULE });

/** Validates `{"type":"mysql", ...}` from workflow input. Unknown keys are rejected; values are never echoed. */
export const mysqlSourceSpecSchema = z
  .object({
    type: z.literal('mysql'),
    table: z
      .string({ error: 'a mysql source needs "table" (a string: name or database.name)' })
      .refine(isPlainQualifiedName, { error: `${MYSQL_IDENTIFIER_RULE} (or database.name)` }),
    columns: columnMapSchema(columnName),
  })
  .strict();

/** The spec as the worker reads it: the user's spec plus the worker's own connection string. */
export type MysqlSourceRead = MysqlSourceSpec & { mysqlUrl?: string };

export interface MysqlReadOptions {
  connectionTimeoutMs?: number;
  /** Rows per chunk (and mysql2's read-ahead); CHUNK_ROWS by default. */
  chunkRows?: number;
}

/** How the source is named in messages: a valid table name; never a rejected name or the URL. */
export function describeMysqlSource(spec: { table?: unknown }): string {
  return typeof spec.table === 'string' && isPlainQualifiedName(spec.table)
    ? `mysql table ${spec.table}`
    : 'mysql table (rejected name)';
}

// ---------------------------------------------------------------------------------------------------
// Reading

/**
 * The rows of a MySQL/MariaDB table in chunks, in memberId order (text compared byte-wise, so "abc" and "ABC" stay
 * two members whatever the column's collation; numbers in numeric order), rows of one memberId in primary-key
 * order, NULL memberIds last. A row's `line` is its 1-based position in that order. Good rows yield
 * `{line, member}`, bad rows `{line, memberId?, skip}`, exactly as for a CSV file; duplicates are left to the caller.
 */
export async function* readMysqlChunks(
  spec: MysqlSourceRead,
  options: MysqlReadOptions = {},
): AsyncGenerator<SourceEntry[]> {
  const label = describeMysqlSource(spec);
  const { mysqlUrl, ...userSpec } = spec;
  const checked = checkedSpec(mysqlSourceSpecSchema, userSpec, label);
  const endpoint = checkMysqlUrl(label, mysqlUrl);
  const chunkRows = options.chunkRows ?? CHUNK_ROWS;
  if (!Number.isSafeInteger(chunkRows) || chunkRows < 1)
    throw new RangeError(`chunkRows must be a positive integer, got ${chunkRows}`);

  // One kept connection: the promise API for the checks, its callback side for the streamed SELECT.
  const connection = createConnection({
    uri: endpoint.url,
    // utf8mb4 end to end: Korean names and emoji arrive whole whatever the server's default character set.
    charset: 'utf8mb4_unicode_ci',
    connectTimeout: options.connectionTimeoutMs ?? 10_000,
    // Large ids arrive as their exact decimal text; dates as text (they are not compared).
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
  });
  // A connection lost between statements surfaces as the next statement's rejection; this only keeps the 'error'
  // event from crashing the process.
  connection.on('error', () => undefined);
  const statements = connection.promise();
  try {
    try {
      await statements.connect();
    } catch (error) {
      throw mysqlError(label, endpoint.where, error);
    }
    await run(statements, 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY', [], label, endpoint.where);
    const plan = await planRead(statements, checked, label, endpoint.where);
    yield* streamRows(connection, plan, chunkRows, label, endpoint.where);
  } finally {
    // Closing the session ends the read-only transaction with it (and a stream left half read).
    connection.destroy();
  }
}

/** Where the database is, for messages: host and port only (no user, password or options). */
function checkMysqlUrl(label: string, url: string | undefined): { url: string; where: string } {
  if (url === undefined || url.trim() === '') {
    throw new SourceConfigError(
      label,
      'BACKFILL_MYSQL_URL is not set on the worker (a mysql source reads its connection string from there, never from the workflow input)',
    );
  }
  if (!isMysqlUrl(url)) throw new SourceConfigError(label, 'BACKFILL_MYSQL_URL must be a mysql:// or mariadb:// URL');
  const { host } = new URL(url);
  return { url, where: host ? `the MySQL server at ${host}` : 'the MySQL server' };
}

interface ReadPlan {
  select: string;
  noRows: string;
}

interface ColumnInfo {
  name: string;
  dataType: string;
}

const NUMERIC_TYPES = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'bigint', 'decimal']);

/** Checks that the table exists and holds every mapped column, and builds the one SELECT. */
async function planRead(
  connection: PromiseConnection,
  spec: z.infer<typeof mysqlSourceSpecSchema>,
  label: string,
  where: string,
): Promise<ReadPlan> {
  const [database, table] = spec.table.includes('.') ? spec.table.split('.') : [undefined, spec.table];
  const [rows] = await run(
    connection,
    `SELECT DATABASE() AS current_db, c.COLUMN_NAME AS name, c.DATA_TYPE AS dataType, c.COLUMN_KEY AS columnKey
       FROM information_schema.COLUMNS c
      WHERE c.TABLE_SCHEMA = COALESCE(?, DATABASE()) AND c.TABLE_NAME = ?
      ORDER BY c.ORDINAL_POSITION`,
    [database ?? null, table],
    label,
    where,
  );
  if (rows.length === 0) {
    const [[current]] = await run(connection, 'SELECT DATABASE() AS db', [], label, where);
    if (database === undefined && (current?.db ?? null) === null)
      throw new SourceConfigError(
        label,
        'BACKFILL_MYSQL_URL names no database: add it to the URL (mysql://user:password@host:3306/shop) or write the table as database.table',
      );
    throw new SourceConfigError(
      label,
      `table ${spec.table} does not exist (or the user of BACKFILL_MYSQL_URL may not read it)`,
    );
  }
  // MySQL matches column names case-insensitively; the table's own spelling is used from here on.
  const byName = new Map<string, ColumnInfo>(
    rows.map((r) => [String(r.name).toLowerCase(), { name: String(r.name), dataType: String(r.dataType) }]),
  );
  const wanted = (c: MemberColumn) => spec.columns?.[c] ?? c;
  const missing = MEMBER_COLUMNS.filter((c) => !byName.has(wanted(c).toLowerCase()));
  if (missing.length > 0) {
    const named = missing.map((c) => (wanted(c) === c ? c : `${wanted(c)} (for ${c})`)).join(', ');
    throw new SourceConfigError(
      label,
      `table ${spec.table} has no column ${named}; map the five values with "columns"`,
    );
  }
  const column = (c: MemberColumn) => byName.get(wanted(c).toLowerCase())!;
  const primaryKey = rows.filter((r) => r.columnKey === 'PRI').map((r) => String(r.name));

  const from = [database, table]
    .filter((p) => p !== undefined)
    .map(quoteIdentifier)
    .join('.');
  const ref = (name: string) => `src.${quoteIdentifier(name)}`;
  // Everything is read as utf8mb4 text, as the PostgreSQL source reads ::text: tinyint(1) flags arrive as "1"/"0",
  // CHAR(1) flags as "Y"/"N", and the row schema reads them exactly as it reads CSV cells. A BIT(1) flag is made a
  // number first (its text would be a raw byte).
  const asText = ({ name, dataType }: ColumnInfo) =>
    dataType === 'bit' ? `CAST(${ref(name)} + 0 AS CHAR)` : `CAST(${ref(name)} AS CHAR CHARACTER SET utf8mb4)`;
  const select = MEMBER_COLUMNS.map((c) => `${asText(column(c))} AS ${quoteIdentifier(c)}`).join(', ');
  // Byte order for text keys (a case-insensitive collation would tie "abc" and "ABC"), numeric order for numbers.
  const key = column('memberId');
  const keyOrder = NUMERIC_TYPES.has(key.dataType) ? ref(key.name) : `CAST(${ref(key.name)} AS BINARY)`;
  const others = MEMBER_COLUMNS.filter((c) => c !== 'memberId').map((c) => `CAST(${ref(column(c).name)} AS BINARY)`);
  const tieBreak = [...primaryKey.map(ref), ...others].join(', ');
  return {
    select: `SELECT ${select} FROM ${from} AS src ORDER BY ${ref(key.name)} IS NULL, ${keyOrder}, ${tieBreak}`,
    noRows: `table ${spec.table} has no rows`,
  };
}

/** The one SELECT, streamed: mysql2 reads ahead `chunkRows` rows and pauses the socket until they are taken. */
async function* streamRows(
  connection: Connection,
  plan: ReadPlan,
  chunkRows: number,
  label: string,
  where: string,
): AsyncGenerator<SourceEntry[]> {
  const rows = connection.query(plan.select).stream({ highWaterMark: chunkRows });
  let line = 0;
  let chunk: SourceEntry[] = [];
  try {
    for await (const row of rows as AsyncIterable<Record<string, unknown>>) {
      // A NULL memberId holds nothing the repair could use: one skip entry, as for PostgreSQL.
      chunk.push(rowEntry(++line, row.memberId === null ? { memberId: null } : withYesNoFlags(row)));
      if (chunk.length >= chunkRows) {
        yield chunk;
        chunk = [];
      }
    }
  } catch (error) {
    throw mysqlError(label, where, error);
  }
  if (chunk.length) yield chunk;
  if (line === 0) throw new SourceConfigError(label, plan.noRows);
}

/**
 * 'Y'/'N' CHAR(1) flags, the MySQL shops' habit, read as true/false. Only here: in a CSV a lone "y" is more likely a
 * mistake than a flag, and the row schema refuses it there.
 */
function withYesNoFlags(row: Record<string, unknown>): Record<string, unknown> {
  for (const flag of ['unsubscribeEmail', 'unsubscribeTexting'] as const) {
    const value = row[flag];
    if (typeof value !== 'string') continue;
    const word = value.trim().toUpperCase();
    if (word === 'Y') row[flag] = 'true';
    else if (word === 'N') row[flag] = 'false';
  }
  return row;
}

async function run(connection: PromiseConnection, sql: string, values: unknown[], label: string, where: string) {
  try {
    // A plain query (values escaped by mysql2): START TRANSACTION cannot be a prepared statement.
    return await connection.query<RowDataPacket[]>(sql, values);
  } catch (error) {
    throw mysqlError(label, where, error);
  }
}

// ---------------------------------------------------------------------------------------------------
// Errors

const ACCESS_DENIED = new Set([
  'ER_ACCESS_DENIED_ERROR',
  'ER_DBACCESS_DENIED_ERROR',
  'ER_ACCESS_DENIED_NO_PASSWORD_ERROR',
]);

/**
 * Maps a mysql2 or network error to a message without secrets or row values. Problems only the operator can fix
 * (credentials, database name, missing table, privileges) become SourceConfigError, which stops the run; a server
 * that is down or restarting is a plain Error, which the activity retries.
 */
export function mysqlError(label: string, where: string, error: unknown): Error {
  if (error instanceof SourceConfigError) return error;
  const { code, sqlState, message } = (error ?? {}) as { code?: unknown; sqlState?: unknown; message?: unknown };
  const codeText = typeof code === 'string' ? code : undefined;
  const state = typeof sqlState === 'string' ? sqlState : undefined;
  const source = `member source ${JSON.stringify(label)}`;
  if (codeText !== undefined && RETRYABLE_NET_CODES.has(codeText))
    return new Error(`${source}: cannot reach ${where} (${codeText})`);
  if (codeText !== undefined && ACCESS_DENIED.has(codeText))
    return new SourceConfigError(label, `${where} refused the user or password in BACKFILL_MYSQL_URL (${codeText})`);
  if (codeText === 'ER_BAD_DB_ERROR')
    return new SourceConfigError(
      label,
      `the database named in BACKFILL_MYSQL_URL does not exist on ${where} (ER_BAD_DB_ERROR)`,
    );
  // Class 42 (syntax, unknown table or column, privileges): the text names SQL, not data.
  if (state?.startsWith('42'))
    return new SourceConfigError(label, `${firstLine(String(message))} (${codeText ?? `SQLSTATE ${state}`})`);
  // Data exceptions may quote the offending value: only the code is kept. Retrying would not help.
  if (state?.startsWith('22') || state?.startsWith('23'))
    return new SourceConfigError(
      label,
      `the source failed on a row's value (${codeText ?? `SQLSTATE ${state}`}); values are not shown`,
    );
  if (codeText === undefined && state === undefined) {
    const what = /timeout/i.test(String(message)) ? 'timed out' : 'failed or was lost';
    return new Error(`${source}: the connection to ${where} ${what}`);
  }
  // Lost connections, shutdowns, too many connections, deadlocks: try again.
  return new Error(`${source}: ${where} failed (${codeText ?? `SQLSTATE ${state}`})`);
}

function firstLine(text: string): string {
  return text.split('\n')[0]?.slice(0, 300) ?? '';
}

/** The MySQL/MariaDB kind of member source: the workers' BACKFILL_MYSQL_URL, never a connection string in the input. */
export const mysqlSource: MemberSource<MysqlSourceSpec, MysqlSourceRead> = {
  types: ['mysql'],
  inputSchema: mysqlSourceSpecSchema,
  resolve: (spec, { mysqlUrl }) => ({ ...spec, mysqlUrl }),
  read: (spec) => readMysqlChunks(spec),
  describe: sourceLabel,
};
