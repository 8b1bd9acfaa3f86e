import { Client, escapeIdentifier, type QueryConfig, type QueryResultRow } from 'pg';
import { z } from 'zod';
import type { PostgresSourceSpec } from '../../workflows/definitions';
import { MEMBER_COLUMNS, type MemberColumn, type SourceEntry } from '../domain/types';
import { sourceLabel } from '../domain/source-label';
import { checkedSpec, SourceConfigError } from './errors';
import type { MemberSource } from './member-source';
import { rowEntry } from './row-schema';
import { columnMapSchema } from './column-map';

/**
 * Members read from a PostgreSQL table or query, yielding the same entries as a CSV file so the
 * prepare step (work file, duplicates, bad rows) treats both alike.
 *
 * Safety: identifiers from the input are validated and quoted; values only ever travel as bind
 * parameters; every statement uses the extended protocol (one statement, no `; DROP ...` tail) inside
 * a READ ONLY transaction, so even a hostile `query` cannot write. Error messages name tables, columns
 * and SQLSTATEs, never row values (personal data) nor the connection string (it holds a password).
 */

/** Distinct memberIds per page; a page holds every row of those ids, so duplicates never straddle pages. */
export const DEFAULT_PAGE_SIZE = 1000;

// ---------------------------------------------------------------------------------------------------
// The spec as users write it

/** PostgreSQL keeps 63 bytes of a name and silently drops the rest: a longer name is refused instead. */
const MAX_IDENTIFIER_BYTES = 63;
const PLAIN_IDENTIFIER = /^[\p{L}_][\p{L}\p{N}_$]*$/u;
export const IDENTIFIER_RULE =
  'must be a plain SQL name: letters, digits, _ or $, not starting with a digit, at most 63 bytes';

/** Names are quoted when used, so they match exactly (case included); this only bounds what is accepted. */
export function isPlainIdentifier(name: string): boolean {
  return PLAIN_IDENTIFIER.test(name) && Buffer.byteLength(name, 'utf8') <= MAX_IDENTIFIER_BYTES;
}

/** `name` or `schema.name`, each part plain. */
export function isPlainQualifiedName(name: string): boolean {
  const parts = name.split('.');
  return parts.length <= 2 && parts.every(isPlainIdentifier);
}

/** Quotes a validated `name` or `schema.name`; throws on anything else (callers validate first). */
export function quoteQualifiedName(name: string): string {
  if (!isPlainQualifiedName(name)) throw new Error(`not a plain SQL name (${IDENTIFIER_RULE})`);
  return name.split('.').map(quoteIdentifier).join('.');
}

function quoteIdentifier(name: string): string {
  if (!isPlainIdentifier(name)) throw new Error(`not a plain SQL name (${IDENTIFIER_RULE})`);
  return escapeIdentifier(name);
}

const MAX_QUERY_CHARS = 100_000;
const columnName = z.string({ error: 'must be a string' }).refine(isPlainIdentifier, { error: IDENTIFIER_RULE });

/** Validates `{"type":"postgres", ...}` from workflow input. Unknown keys are rejected; values are never echoed. */
export const postgresSourceSpecSchema = z
  .object({
    type: z.literal('postgres'),
    table: z
      .string({ error: 'must be a string' })
      .refine(isPlainQualifiedName, { error: `${IDENTIFIER_RULE} (or schema.name)` })
      .optional(),
    // A trailing semicolon is what copying a query from psql leaves: harmless, so it is dropped.
    query: z
      .string({ error: 'must be a string' })
      .transform((q) => q.trim().replace(/[\s;]+$/, ''))
      .pipe(
        z
          .string()
          .min(1, 'must not be empty')
          .max(MAX_QUERY_CHARS, `must be at most ${MAX_QUERY_CHARS} characters`)
          // The reader binds its own $1/$2 (page size, last key): the query's SQL may not claim them.
          .refine((q) => !/\$\d/.test(q), {
            error: 'must not use bind parameters ($1, $2, ...): write the values into the query',
          }),
      )
      .optional(),
    columns: columnMapSchema(columnName),
  })
  .strict()
  .superRefine((spec, ctx) => {
    if (spec.table === undefined && spec.query === undefined)
      ctx.addIssue({ code: 'custom', path: ['table'], message: 'a postgres source needs "table" or "query"' });
    if (spec.table !== undefined && spec.query !== undefined)
      ctx.addIssue({ code: 'custom', path: ['query'], message: 'give either "table" or "query", not both' });
  });

/** The spec as the worker reads it: the user's spec plus the worker's own connection string. */
export type PostgresSourceRead = PostgresSourceSpec & { databaseUrl?: string };

export interface PostgresReadOptions {
  pageSize?: number;
  connectionTimeoutMs?: number;
}

/** How the source is named in messages: a valid table name or "query"; never SQL text, a rejected name or the URL. */
export function describePostgresSource(spec: { table?: unknown; query?: unknown }): string {
  if (typeof spec.table !== 'string') return 'postgres query';
  return isPlainQualifiedName(spec.table) ? `postgres table ${spec.table}` : 'postgres table (rejected name)';
}

// ---------------------------------------------------------------------------------------------------
// Reading

/**
 * The rows of a PostgreSQL source in memberId order, read with keyset pagination (a query source: through
 * one cursor) over one REPEATABLE READ snapshot (so pages agree even while the table changes). A database row has no line number:
 * its `line` is its 1-based position in memberId order (ties broken by the table's primary key, else
 * by the other four values), rows with a NULL memberId last. Good rows yield `{line, member}`, bad rows
 * `{line, memberId?, skip}`, exactly as for a CSV file; duplicates are left to the caller.
 */
export async function* readPostgresSource(
  spec: PostgresSourceRead,
  options: PostgresReadOptions = {},
): AsyncGenerator<SourceEntry> {
  const label = describePostgresSource(spec);
  const { databaseUrl, ...userSpec } = spec;
  const checked = checkedSpec(postgresSourceSpecSchema, userSpec, label);
  const endpoint = checkDatabaseUrl(label, databaseUrl);
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1)
    throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);

  const client = new Client({
    connectionString: endpoint.url,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
    application_name: 'webhook-backfill',
  });
  // A connection lost between queries surfaces as the next query's rejection; this only keeps the
  // 'error' event from crashing the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw databaseError(label, endpoint.where, error);
  }
  try {
    await run(client, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', [], label, endpoint.where);
    const plan = await planRead(client, checked, label, endpoint.where);
    yield* readRows(client, plan, pageSize, label, endpoint.where);
  } finally {
    // Ending the session ends the read-only transaction with it.
    await client.end().catch(() => undefined);
  }
}

/** Where the database is, for messages: host and port only (no user, password or options). */
function checkDatabaseUrl(label: string, url: string | undefined): { url: string; where: string } {
  if (url === undefined || url.trim() === '') {
    throw new SourceConfigError(
      label,
      'BACKFILL_DATABASE_URL is not set on the worker (a postgres source reads its connection string from there, never from the workflow input)',
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new SourceConfigError(label, 'BACKFILL_DATABASE_URL is not a valid postgres:// URL');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new SourceConfigError(label, 'BACKFILL_DATABASE_URL must start with postgres:// or postgresql://');
  }
  return { url, where: parsed.host ? `the database at ${parsed.host}` : 'the database' };
}

interface ReadPlan {
  /** `"schema"."table"` or `(\n<query>\n)`: what follows FROM, aliased by the caller. */
  from: string;
  /** A query source: read through one cursor, so the operator's query runs once, not once or twice per page. */
  isQuery: boolean;
  select: string;
  key: string;
  tieBreak: string;
  noRows: string;
}

/** Checks that the source exists and holds every mapped column, and builds the page statement's parts. */
async function planRead(
  client: Client,
  spec: z.infer<typeof postgresSourceSpecSchema>,
  label: string,
  where: string,
): Promise<ReadPlan> {
  const columns: Record<MemberColumn, string> = Object.fromEntries(
    MEMBER_COLUMNS.map((c) => [c, spec.columns?.[c] ?? c]),
  ) as Record<MemberColumn, string>;
  let from: string;
  let primaryKey: string[] = [];
  if (spec.table !== undefined) {
    from = quoteQualifiedName(spec.table);
    const found = await run(client, `SELECT to_regclass($1)::oid AS oid`, [from], label, where);
    const oid: unknown = found.rows[0]?.oid;
    if (oid === null || oid === undefined)
      throw new SourceConfigError(
        label,
        `table ${spec.table} does not exist (or is not on the search_path; names are matched exactly, case included)`,
      );
    primaryKey = await primaryKeyColumns(client, oid, label, where);
  } else {
    // The query is the operator's own SQL; a newline keeps a trailing -- comment from eating the ")".
    from = `(\n${spec.query}\n)`;
  }

  const probe = await run(client, `SELECT * FROM ${from} AS src LIMIT $1`, [0], label, where);
  const available = new Set(probe.fields.map((f) => f.name));
  const missing = MEMBER_COLUMNS.filter((c) => !available.has(columns[c]));
  if (missing.length > 0) {
    const named = missing.map((c) => (columns[c] === c ? c : `${columns[c]} (for ${c})`)).join(', ');
    const whose = spec.table !== undefined ? `table ${spec.table}` : "the query's result";
    throw new SourceConfigError(
      label,
      `${whose} has no column ${named}; map the five values with "columns" (names are matched exactly, case included)`,
    );
  }

  const col = (c: MemberColumn) => `src.${quoteIdentifier(columns[c])}`;
  // Everything is read as text: booleans arrive as "true"/"false" and numbers as digits, which the row
  // schema reads exactly as it reads CSV cells.
  const select = MEMBER_COLUMNS.map((c) => `${col(c)}::text AS ${quoteIdentifier(c)}`).join(', ');
  const others = MEMBER_COLUMNS.filter((c) => c !== 'memberId').map((c) => `${col(c)}::text`);
  const tieBreak = [...primaryKey.map((c) => `src.${escapeIdentifier(c)}`), ...others].join(', ');
  return {
    from,
    isQuery: spec.table === undefined,
    select,
    key: quoteIdentifier(columns.memberId),
    tieBreak,
    noRows: spec.table !== undefined ? `table ${spec.table} has no rows` : 'the query returned no rows',
  };
}

/** The table's primary key, in key order: among rows of one memberId, the lowest key comes first. */
async function primaryKeyColumns(client: Client, oid: unknown, label: string, where: string): Promise<string[]> {
  const result = await run(
    client,
    `SELECT a.attname AS name
       FROM pg_index i
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
      WHERE i.indrelid = $1::oid AND i.indisprimary
      ORDER BY array_position(i.indkey::int2[], a.attnum)`,
    [oid],
    label,
    where,
  );
  return result.rows.map((r) => String(r.name));
}

async function* readRows(
  client: Client,
  plan: ReadPlan,
  pageSize: number,
  label: string,
  where: string,
): AsyncGenerator<SourceEntry> {
  if (plan.isQuery) {
    yield* readQueryRows(client, plan, pageSize, label, where);
    return;
  }
  const { from, select, key, tieBreak } = plan;
  // A page is every row of the next `pageSize` distinct memberIds, so rows sharing a memberId are
  // always read together (a plain `LIMIT n` could cut a run of duplicates in two and lose the rest).
  const page = (after: boolean) => `SELECT ${select} FROM ${from} AS src
    WHERE src.${key} IN (
      SELECT DISTINCT k.${key} FROM ${from} AS k
       WHERE k.${key} IS NOT NULL${after ? ` AND k.${key} > $2` : ''}
       ORDER BY k.${key} LIMIT $1)
    ORDER BY src.${key}, ${tieBreak}`;

  let line = 0;
  let last: string | undefined;
  for (;;) {
    const result = await run(
      client,
      page(last !== undefined),
      last === undefined ? [pageSize] : [pageSize, last],
      label,
      where,
    );
    for (const row of result.rows) yield rowEntry(++line, row);
    const tail = result.rows.at(-1);
    if (!tail) break;
    // The key's own text form goes back as the parameter; PostgreSQL reads it as the column's type.
    last = String(tail.memberId);
  }

  // NULL memberIds cannot be paged by key; such a row holds nothing the repair could use, so each is
  // one skip entry after the others (where ORDER BY puts NULLs too).
  const nulls = await run(
    client,
    `SELECT count(*) AS n FROM ${from} AS src WHERE src.${key} IS NULL`,
    [],
    label,
    where,
  );
  const nullRows = Number(nulls.rows[0]?.n ?? 0);
  for (let i = 0; i < nullRows; i++) yield rowEntry(++line, { memberId: null });

  if (line === 0) throw new SourceConfigError(label, plan.noRows);
}

/**
 * A query source: keyset pages would run the operator's query twice per page (the page and its key subselect)
 * and once more to count NULL keys, each time in full. One cursor over the query in the same order (NULL keys
 * last, as ORDER BY puts them) runs it once; rows are fetched `pageSize` at a time, so memory stays flat.
 * Cursors are allowed in the READ ONLY transaction and end with it.
 */
async function* readQueryRows(
  client: Client,
  plan: ReadPlan,
  pageSize: number,
  label: string,
  where: string,
): AsyncGenerator<SourceEntry> {
  const { from, select, key, tieBreak } = plan;
  await run(
    client,
    `DECLARE member_rows NO SCROLL CURSOR FOR SELECT ${select} FROM ${from} AS src ORDER BY src.${key} ASC NULLS LAST, ${tieBreak}`,
    [],
    label,
    where,
  );
  // FETCH takes no bind parameter for its count; pageSize is a checked safe integer.
  const fetch = `FETCH FORWARD ${pageSize} FROM member_rows`;
  let line = 0;
  for (;;) {
    const result = await run(client, fetch, [], label, where);
    // A NULL memberId holds nothing the repair could use: the same skip entry as for a table.
    for (const row of result.rows) yield rowEntry(++line, row.memberId === null ? { memberId: null } : row);
    if (result.rows.length < pageSize) break;
  }
  if (line === 0) throw new SourceConfigError(label, plan.noRows);
}

/** Every statement goes through the extended protocol: one statement only, values as parameters. */
async function run(client: Client, text: string, values: unknown[], label: string, where: string) {
  try {
    // `queryMode` is honoured by pg 8 but missing from @types/pg.
    return await client.query<QueryResultRow>({ text, values, queryMode: 'extended' } as QueryConfig);
  } catch (error) {
    throw databaseError(label, where, error);
  }
}

// ---------------------------------------------------------------------------------------------------
// Errors

export const RETRYABLE_NET_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EPIPE',
]);

/**
 * Maps a pg or network error to a message without secrets or row values. Problems only the operator
 * can fix (credentials, database name, missing table, bad SQL) become SourceConfigError, which stops
 * the run; a database that is down or restarting is a plain Error, which the activity retries.
 */
export function databaseError(label: string, where: string, error: unknown): Error {
  if (error instanceof SourceConfigError) return error;
  const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : undefined;
  const message = error instanceof Error ? error.message : '';
  if (code === undefined) {
    // pg's own errors without a code: a timeout or a connection that ended (texts hold no secrets,
    // but are summarised all the same).
    const what = /timeout/i.test(message) ? 'timed out' : 'failed or was lost';
    return new Error(`member source ${JSON.stringify(label)}: the connection to ${where} ${what}`);
  }
  if (RETRYABLE_NET_CODES.has(code))
    return new Error(`member source ${JSON.stringify(label)}: cannot reach ${where} (${code})`);
  if (code === '28P01' || code === '28000')
    return new SourceConfigError(
      label,
      `${where} refused the user or password in BACKFILL_DATABASE_URL (SQLSTATE ${code})`,
    );
  if (code === '3D000')
    return new SourceConfigError(
      label,
      `the database named in BACKFILL_DATABASE_URL does not exist on ${where.replace(/^the database at /, '')} (SQLSTATE 3D000)`,
    );
  // Class 42 (syntax, undefined table or column, privileges) and 0A (a construct PostgreSQL refuses,
  // e.g. a DELETE hidden in a WITH of the query): the text names SQL, not data.
  if (code.startsWith('42') || code.startsWith('0A'))
    return new SourceConfigError(label, `${firstLine(message)} (SQLSTATE ${code})`);
  // Data exceptions quote the offending value: only the code is kept. Retrying would not help.
  if (code.startsWith('22') || code.startsWith('23'))
    return new SourceConfigError(label, `the source failed on a row's value (SQLSTATE ${code}); values are not shown`);
  if (code === '25006')
    return new SourceConfigError(
      label,
      'the query tried to write: a postgres source is read in a READ ONLY transaction (SQLSTATE 25006)',
    );
  // Connection exceptions, shutdowns, too many connections, serialization failures: try again.
  return new Error(`member source ${JSON.stringify(label)}: ${where} failed (SQLSTATE ${code})`);
}

function firstLine(text: string): string {
  return text.split('\n')[0]?.slice(0, 300) ?? '';
}

/** Rows handed on at once to the preparation (the reader pages by distinct memberIds, not by this). */
const CHUNK_ROWS = 1000;

async function* readPostgresChunks(spec: PostgresSourceRead): AsyncIterable<SourceEntry[]> {
  let chunk: SourceEntry[] = [];
  for await (const entry of readPostgresSource(spec)) {
    chunk.push(entry);
    if (chunk.length >= CHUNK_ROWS) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length) yield chunk;
}

/** The PostgreSQL kind of member source: the workers' BACKFILL_DATABASE_URL, never a connection string in the input. */
export const postgresSource: MemberSource<PostgresSourceSpec, PostgresSourceRead> = {
  types: ['postgres'],
  inputSchema: postgresSourceSpecSchema,
  resolve: (spec, { databaseUrl }) => ({ ...spec, databaseUrl }),
  read: readPostgresChunks,
  describe: sourceLabel,
};
