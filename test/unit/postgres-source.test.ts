import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceConfigError } from '../../src/source/errors';
import {
  postgresSourceSpecSchema,
  readPostgresSource,
  type PostgresSourceRead,
} from '../../src/source/postgres-source';
import { readSource } from '../../src/source/read-source';
import { prepareWorkFile } from '../../src/source/work-file';
import { freePort } from '../../dev/temporal-cli';
import type { SourceEntry } from '../../src/domain/types';
import { parseBackfillInput } from '../../src/workflow-input';
import { startTestPostgres, type TestPostgres } from '../support/postgres';

// The PostgreSQL member source against a real PostgreSQL (a throwaway cluster, see test/support/postgres.ts):
// validation of the spec, keyset paging with duplicates across pages, the text forms of booleans and ids,
// line numbers in memberId order, and every configuration error with a message free of secrets and values.

let pg: TestPostgres;
let url: string;

const MAPPING = {
  memberId: 'user_id',
  mobileNumber: 'phone',
  email: 'email_address',
  unsubscribeEmail: 'email_opt_out',
  unsubscribeTexting: 'sms_opt_out',
};

beforeAll(async () => {
  pg = await startTestPostgres();
  url = await pg.createDatabase('source_tests');
  const sql = (text: string, values: unknown[] = []) => pg.query(text, values, 'source_tests');
  // Real booleans for one flag, the CSV spellings in text for the other, as customers' tables hold them.
  await sql(
    `CREATE TABLE customers (id serial PRIMARY KEY, user_id text, phone text, email_address text, email_opt_out boolean, sms_opt_out text)`,
  );
  await sql(`CREATE INDEX ON customers (user_id)`);
  await sql(
    `INSERT INTO customers (user_id, phone, email_address, email_opt_out, sms_opt_out) VALUES
      ('m-3', '010-1111-2222', 'c@example.org', true, 'No'),
      ('m-1', NULL, 'a@example.org', false, 'TRUE'),
      (NULL, '010-0000-0000', NULL, NULL, NULL),
      ('m-2', '', NULL, NULL, 'maybe'),
      ('', NULL, NULL, NULL, NULL),
      ('m-1', '010-9999-9999', NULL, NULL, NULL),
      ('  m-4  ', NULL, NULL, NULL, '1')`,
  );
  // Several rows per memberId, in an order (by primary key) that differs from their values' order.
  await sql(
    `CREATE TABLE dupes (id int PRIMARY KEY, "memberId" text, "mobileNumber" text, email text, "unsubscribeEmail" text, "unsubscribeTexting" text)`,
  );
  const dupes: string[] = [];
  for (let i = 0; i < 40; i++)
    dupes.push(
      `(${100 - i}, 'k-${String(Math.floor(i / 7)).padStart(2, '0')}', 'p-${String(i).padStart(2, '0')}', NULL, NULL, NULL)`,
    );
  await sql(`INSERT INTO dupes VALUES ${dupes.join(', ')}`);
  await sql(`CREATE TABLE numeric_ids (uid bigint, phone text, email text, ue smallint, ut boolean)`);
  await sql(
    `INSERT INTO numeric_ids VALUES (10, NULL, NULL, 1, true), (2, NULL, NULL, 0, false), (9007199254740993, NULL, NULL, NULL, NULL)`,
  );
  await sql(
    `CREATE TABLE empty_table ("memberId" text, "mobileNumber" text, email text, "unsubscribeEmail" text, "unsubscribeTexting" text)`,
  );
  await sql(`CREATE SCHEMA crm`);
  await sql(
    `CREATE TABLE crm."Members" ("memberId" text, "mobileNumber" text, email text, "unsubscribeEmail" text, "unsubscribeTexting" text)`,
  );
  await sql(`INSERT INTO crm."Members" VALUES ('z-1', NULL, NULL, 'yes', 'no')`);
  await sql(`CREATE TABLE victim (x int)`);
  await sql(`INSERT INTO victim VALUES (1), (2)`);
}, 60_000);

afterAll(async () => {
  await pg?.stop();
});

async function collect(spec: PostgresSourceRead, pageSize?: number): Promise<SourceEntry[]> {
  const entries: SourceEntry[] = [];
  for await (const entry of readPostgresSource(spec, pageSize ? { pageSize } : {})) entries.push(entry);
  return entries;
}

async function failure(spec: PostgresSourceRead): Promise<Error> {
  const error = await collect(spec).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the read should fail').toBeInstanceOf(Error);
  return error as Error;
}

const victimRows = async () => Number((await pg.query('SELECT count(*) AS n FROM victim', [], 'source_tests'))[0]?.n);

describe('postgres source spec (workflow input)', () => {
  const source = (extra: Record<string, unknown>) => ({ source: { type: 'postgres', ...extra } });

  it.each([
    ['a table with a column mapping', { table: 'customers', columns: MAPPING }],
    ['a schema-qualified table, names as stored (case kept)', { table: 'crm.Members' }],
    ['a query whose result is named as the five values', { query: 'SELECT * FROM crm."Members"' }],
    ['a query with a mapping and a trailing semicolon', { query: 'SELECT * FROM customers;', columns: MAPPING }],
    ['non-ASCII letters, _ and $ in names', { table: '고객_2024$', columns: { memberId: '_회원' } }],
  ])('accepts %s', (_what, extra) => {
    const { options } = parseBackfillInput(source(extra), 'wf');
    expect(options.source.type).toBe('postgres');
  });

  it('drops the trailing semicolon of a pasted query', () => {
    expect(postgresSourceSpecSchema.parse({ type: 'postgres', query: ' SELECT 1 ;; \n' }).query).toBe('SELECT 1');
  });

  const INJECTIONS: [what: string, extra: Record<string, unknown>, field: string][] = [
    ['a statement after the table name', { table: 'customers; DROP TABLE victim' }, 'source.table'],
    ['a quote closing the identifier', { table: 'customers" ; DROP TABLE victim; --' }, 'source.table'],
    [
      'a comment in a column name',
      { table: 'customers', columns: { ...MAPPING, email: 'email_address -- ' } },
      'source.columns.email',
    ],
    [
      'a subquery as a column',
      { table: 'customers', columns: { ...MAPPING, memberId: '(SELECT x FROM victim)' } },
      'source.columns.memberId',
    ],
    ['three-part name', { table: 'db.crm.members' }, 'source.table'],
    ['a name starting with a digit', { table: '1customers' }, 'source.table'],
    ['an empty column name', { table: 'customers', columns: { memberId: '' } }, 'source.columns.memberId'],
    ['a name over 63 bytes (PostgreSQL would truncate it)', { table: 'c'.repeat(64) }, 'source.table'],
    ['bind parameters in the query', { query: 'SELECT * FROM customers WHERE id > $1' }, 'source.query'],
    ['an unknown key in the mapping', { table: 'customers', columns: { phone: 'phone' } }, 'source.columns'],
    [
      'a connection string in the input (it belongs to the worker)',
      { table: 'customers', databaseUrl: 'postgres://u:pw-7c1@db/x' },
      'databaseUrl',
    ],
    ['neither table nor query', {}, 'source.table'],
    ['both table and query', { table: 'customers', query: 'SELECT 1' }, 'source.query'],
    ['an empty query', { query: ' ; ' }, 'source.query'],
  ];

  it.each(INJECTIONS)('rejects %s, naming the field and not echoing the value', (_what, extra, field) => {
    let message = '';
    try {
      parseBackfillInput(source(extra), 'wf');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('invalid workflow input');
    expect(message).toContain(field);
    expect(message).not.toMatch(/DROP|victim|pw-7c1|email_address --/);
  });

  it('an injected identifier is refused by the reader too, before it connects anywhere', async () => {
    // The URL points at a closed port: reaching the network would give a connection error instead.
    const closed = `postgres://postgres:pw-7c1@127.0.0.1:${await freePort()}/nothing`;
    for (const [, extra] of INJECTIONS.slice(0, 5)) {
      const error = await failure({
        type: 'postgres',
        ...(extra as object),
        databaseUrl: closed,
      } as PostgresSourceRead);
      expect(error).toBeInstanceOf(SourceConfigError);
      expect(error.message).toMatch(/plain SQL name/);
      expect(error.message).not.toMatch(/pw-7c1|DROP|victim|--|SELECT/);
    }
    expect(await victimRows()).toBe(2);
  });
});

describe('readPostgresSource', () => {
  it('reads a mapped table in memberId order; line = 1-based position, NULL memberIds last', async () => {
    const entries = await collect({ type: 'postgres', table: 'customers', columns: MAPPING, databaseUrl: url });
    expect(entries).toEqual([
      // '' sorts first; the row schema skips it as it skips an empty CSV cell.
      { line: 1, skip: 'empty memberId' },
      // Leading/trailing spaces: ordered by the raw value, trimmed by the row schema like a CSV cell.
      {
        line: 2,
        member: { memberId: 'm-4', mobileNumber: null, email: null, unsubscribeEmail: null, unsubscribeTexting: true },
      },
      // Two rows of m-1: primary-key order (id 2 before id 6), whatever their values.
      {
        line: 3,
        member: {
          memberId: 'm-1',
          mobileNumber: null,
          email: 'a@example.org',
          unsubscribeEmail: false,
          unsubscribeTexting: true,
        },
      },
      {
        line: 4,
        member: {
          memberId: 'm-1',
          mobileNumber: '010-9999-9999',
          email: null,
          unsubscribeEmail: null,
          unsubscribeTexting: null,
        },
      },
      { line: 5, memberId: 'm-2', skip: 'unsubscribeTexting: invalid boolean' },
      // A real boolean column and the CSV word "No" in a text column read alike.
      {
        line: 6,
        member: {
          memberId: 'm-3',
          mobileNumber: '010-1111-2222',
          email: 'c@example.org',
          unsubscribeEmail: true,
          unsubscribeTexting: false,
        },
      },
      { line: 7, skip: 'empty memberId' },
    ]);
  });

  it('pages of a few memberIds return the same entries as one big page (duplicates never split)', async () => {
    const spec: PostgresSourceRead = { type: 'postgres', table: 'dupes', databaseUrl: url };
    const whole = await collect(spec, 1000);
    expect(whole).toHaveLength(40);
    for (const pageSize of [1, 2, 3, 5]) expect(await collect(spec, pageSize), `pageSize ${pageSize}`).toEqual(whole);
    // memberId order, and within one memberId the primary key's order (ids run backwards here).
    const members = whole.map((e) => ('member' in e ? e.member : undefined));
    expect(members.map((m) => m?.memberId)).toEqual(
      Array.from({ length: 40 }, (_, i) => `k-${String(Math.floor(i / 7)).padStart(2, '0')}`),
    );
    expect(members.slice(0, 7).map((m) => m?.mobileNumber)).toEqual([
      'p-06',
      'p-05',
      'p-04',
      'p-03',
      'p-02',
      'p-01',
      'p-00',
    ]);
    expect(whole.map((e) => e.line)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  });

  it('a query source reads with the same paging; mapped or named columns alike', async () => {
    const byQuery = await collect(
      {
        type: 'postgres',
        query: 'SELECT * FROM customers WHERE user_id IS NOT NULL',
        columns: MAPPING,
        databaseUrl: url,
      },
      2,
    );
    const byTable = await collect({ type: 'postgres', table: 'customers', columns: MAPPING, databaseUrl: url }, 2);
    // Without a primary key to break ties the query orders m-1's rows by their values: same two rows.
    expect(byQuery.map((e) => ('member' in e ? e.member.memberId : e.skip))).toEqual(
      byTable.slice(0, 6).map((e) => ('member' in e ? e.member.memberId : e.skip)),
    );
    const named = await collect({
      type: 'postgres',
      query: `SELECT "memberId", NULL AS "mobileNumber", email, "unsubscribeEmail", "unsubscribeTexting" FROM crm."Members" -- a trailing comment`,
      databaseUrl: url,
    });
    expect(named).toEqual([
      {
        line: 1,
        member: { memberId: 'z-1', mobileNumber: null, email: null, unsubscribeEmail: true, unsubscribeTexting: false },
      },
    ]);
  });

  it("a query source runs the operator's query once, however many pages it reads", async () => {
    // Counted by PostgreSQL itself: calls of a volatile function evaluated once per execution of the query (a
    // materialized CTE), in pg_stat_user_functions (track_functions on for this database only).
    const db = 'exec_count';
    const countUrl = await pg.createDatabase(db);
    const sql = (text: string) => pg.query(text, [], db);
    await sql(`ALTER DATABASE ${db} SET track_functions = 'pl'`);
    await sql(`CREATE FUNCTION count_exec() RETURNS int VOLATILE LANGUAGE plpgsql AS $f$ BEGIN RETURN 1; END $f$`);
    await sql(
      `CREATE TABLE people AS SELECT 'p-' || lpad(i::text, 4, '0') AS "memberId", NULL::text AS "mobileNumber", NULL::text AS email, NULL::text AS "unsubscribeEmail", NULL::text AS "unsubscribeTexting" FROM generate_series(1, 95) AS i`,
    );
    await sql(`INSERT INTO people VALUES (NULL, NULL, NULL, NULL, NULL), ('p-0007', '010', NULL, NULL, NULL)`);
    const calls = async () =>
      Number(
        (await sql(`SELECT coalesce(sum(calls), 0) AS n FROM pg_stat_user_functions WHERE funcname = 'count_exec'`))[0]
          ?.n ?? 0,
      );
    /** The reader's backend reports its counts as it exits: wait until they arrive and settle. */
    const settled = async (from: number) => {
      let last = -1;
      for (let i = 0; i < 50; i++) {
        const now = await calls();
        if (now > from && now === last) return now - from;
        last = now;
        await new Promise((r) => setTimeout(r, 100));
      }
      return last - from;
    };

    const before = await calls();
    const entries = await collect(
      {
        type: 'postgres',
        query: `WITH once AS MATERIALIZED (SELECT count_exec() AS n) SELECT p.* FROM people p CROSS JOIN once`,
        databaseUrl: countUrl,
      },
      10,
    );
    expect(await settled(before)).toBe(1); // keyset pages ran it twice per page (11 pages) and once for NULL keys: 23
    // Same rows, same order and lines as before: memberId order, duplicates kept in place, the NULL key last.
    expect(entries).toHaveLength(97);
    expect(entries.map((e) => e.line)).toEqual(Array.from({ length: 97 }, (_, i) => i + 1));
    expect(
      entries.slice(6, 9).map((e) => ('member' in e ? [e.member.memberId, e.member.mobileNumber] : e.skip)),
    ).toEqual([
      ['p-0007', '010'],
      ['p-0007', null],
      ['p-0008', null],
    ]);
    expect(entries.at(-1)).toEqual({ line: 97, skip: expect.stringMatching(/memberId/) });
    // A page size that divides the rows exactly ends after the last full page too.
    expect(await collect({ type: 'postgres', query: 'SELECT * FROM people', databaseUrl: countUrl }, 97)).toHaveLength(
      97,
    );
  });

  it('numeric ids sort as numbers and arrive as their exact decimal text; 0/1 flags read as booleans', async () => {
    const entries = await collect(
      {
        type: 'postgres',
        table: 'numeric_ids',
        columns: { memberId: 'uid', mobileNumber: 'phone', unsubscribeEmail: 'ue', unsubscribeTexting: 'ut' },
        databaseUrl: url,
      },
      1,
    );
    expect(entries).toEqual([
      {
        line: 1,
        member: { memberId: '2', mobileNumber: null, email: null, unsubscribeEmail: false, unsubscribeTexting: false },
      },
      {
        line: 2,
        member: { memberId: '10', mobileNumber: null, email: null, unsubscribeEmail: true, unsubscribeTexting: true },
      },
      {
        line: 3,
        member: {
          memberId: '9007199254740993',
          mobileNumber: null,
          email: null,
          unsubscribeEmail: null,
          unsubscribeTexting: null,
        },
      },
    ]);
  });

  it('pages through thousands of rows in order with the default page size', async () => {
    await pg.query(
      `CREATE TABLE many AS SELECT 'u-' || lpad(i::text, 5, '0') AS "memberId", NULL::text AS "mobileNumber", NULL::text AS email, NULL::text AS "unsubscribeEmail", NULL::text AS "unsubscribeTexting" FROM generate_series(1, 2500) AS i`,
      [],
      'source_tests',
    );
    const entries = await collect({ type: 'postgres', table: 'many', databaseUrl: url });
    expect(entries).toHaveLength(2500);
    expect(
      entries.every(
        (e, i) => e.line === i + 1 && 'member' in e && e.member.memberId === `u-${String(i + 1).padStart(5, '0')}`,
      ),
    ).toBe(true);
  });

  it('plugs into readSource and the prepare step: later rows of a memberId become duplicates, as in a file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pg-work-'));
    try {
      const workFile = path.join(dir, 'members.jsonl');
      const summary = await prepareWorkFile(
        { type: 'postgres', table: 'customers', columns: MAPPING, databaseUrl: url },
        workFile,
      );
      expect(summary).toMatchObject({ rows: 7, members: 3, skipped: 4 });
      const written = (await readFile(workFile, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as SourceEntry);
      expect(written[3]).toEqual({ line: 4, memberId: 'm-1', skip: 'duplicate memberId (first seen on line 3)' });
      const viaReadSource: SourceEntry[] = [];
      for await (const entry of readSource({
        type: 'postgres',
        table: 'customers',
        columns: MAPPING,
        databaseUrl: url,
      }))
        viaReadSource.push(entry);
      expect(viaReadSource).toHaveLength(7);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a query cannot write, nor run a second statement: the source is read in one READ ONLY transaction', async () => {
    const hostile = [
      `SELECT * FROM crm."Members"; DROP TABLE victim`,
      `WITH gone AS (DELETE FROM victim RETURNING x) SELECT x::text AS "memberId", NULL AS "mobileNumber", NULL AS email, NULL AS "unsubscribeEmail", NULL AS "unsubscribeTexting" FROM gone`,
    ];
    for (const query of hostile) {
      const error = await failure({ type: 'postgres', query, databaseUrl: url });
      expect(error, query).toBeInstanceOf(SourceConfigError);
    }
    expect(await victimRows()).toBe(2);
  });

  describe('configuration errors stop the run with one line naming the problem, never the password or a value', () => {
    const PASSWORD = 'pw-9d2e-secret';
    const cases: { name: string; spec: () => Promise<PostgresSourceRead>; problem: RegExp }[] = [
      {
        name: 'BACKFILL_DATABASE_URL unset',
        spec: async () => ({ type: 'postgres', table: 'customers' }),
        problem: /BACKFILL_DATABASE_URL is not set/,
      },
      {
        name: 'not a postgres URL',
        spec: async () => ({
          type: 'postgres',
          table: 'customers',
          databaseUrl: `mysql://root:${PASSWORD}@127.0.0.1/x`,
        }),
        problem: /postgres:\/\//,
      },
      {
        name: 'not a URL at all',
        spec: async () => ({
          type: 'postgres',
          table: 'customers',
          databaseUrl: `host=127.0.0.1 password=${PASSWORD}`,
        }),
        problem: /not a valid postgres:\/\/ URL/,
      },
      {
        name: 'unknown database',
        spec: async () => ({
          type: 'postgres',
          table: 'customers',
          databaseUrl: `postgres://postgres:${PASSWORD}@127.0.0.1:${pg.port}/no_such_db`,
        }),
        problem: /database named in BACKFILL_DATABASE_URL does not exist .*3D000/,
      },
      {
        name: 'unknown user',
        spec: async () => ({
          type: 'postgres',
          table: 'customers',
          databaseUrl: `postgres://nobody:${PASSWORD}@127.0.0.1:${pg.port}/source_tests`,
        }),
        problem: /refused the user or password .*28000/,
      },
      {
        name: 'missing table',
        spec: async () => ({ type: 'postgres', table: 'clients', databaseUrl: url }),
        problem: /table clients does not exist/,
      },
      {
        name: 'missing table in a query',
        spec: async () => ({ type: 'postgres', query: 'SELECT * FROM clients', databaseUrl: url }),
        problem: /relation "clients" does not exist .*42P01/,
      },
      {
        name: 'mapped columns missing, all named',
        spec: async () => ({
          type: 'postgres',
          table: 'customers',
          columns: { ...MAPPING, email: 'mail', unsubscribeTexting: 'sms' },
          databaseUrl: url,
        }),
        problem: /has no column mail \(for email\), sms \(for unsubscribeTexting\)/,
      },
      {
        name: 'unmapped names the table lacks',
        spec: async () => ({ type: 'postgres', table: 'customers', databaseUrl: url }),
        problem: /has no column memberId, mobileNumber, email, unsubscribeEmail, unsubscribeTexting/,
      },
      {
        name: 'a query lacking a column',
        spec: async () => ({
          type: 'postgres',
          query: 'SELECT user_id AS "memberId" FROM customers',
          databaseUrl: url,
        }),
        problem: /the query's result has no column mobileNumber/,
      },
      {
        name: 'SQL syntax error',
        spec: async () => ({ type: 'postgres', query: 'SELEC * FROM customers', databaseUrl: url }),
        problem: /syntax error .*42601/,
      },
      {
        name: 'an empty table',
        spec: async () => ({ type: 'postgres', table: 'empty_table', databaseUrl: url }),
        problem: /table empty_table has no rows/,
      },
      {
        name: 'a query with no rows',
        spec: async () => ({ type: 'postgres', query: 'SELECT * FROM empty_table', databaseUrl: url }),
        problem: /the query returned no rows/,
      },
      {
        name: 'a value the query cannot convert (the value is not shown)',
        spec: async () => ({
          type: 'postgres',
          query: `SELECT phone::int AS "memberId", phone AS "mobileNumber", email_address AS email, NULL AS "unsubscribeEmail", NULL AS "unsubscribeTexting" FROM customers WHERE phone IS NOT NULL AND phone <> ''`,
          databaseUrl: url,
        }),
        problem: /failed on a row's value \(SQLSTATE 22P02\); values are not shown/,
      },
    ];

    it.each(cases)('$name', async ({ spec, problem }) => {
      const error = await failure(await spec());
      expect(error).toBeInstanceOf(SourceConfigError);
      expect(error.message).toMatch(problem);
      expect(error.message).not.toContain(PASSWORD);
      expect(error.message).not.toMatch(/010-|@example\.org/);
      expect(error.message).not.toContain('\n');
    });

    it('a database that cannot be reached is retryable (a plain Error), and names host and port only', async () => {
      const port = await freePort();
      const error = await failure({
        type: 'postgres',
        table: 'customers',
        databaseUrl: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/x`,
      });
      expect(error).not.toBeInstanceOf(SourceConfigError);
      expect(error.message).toContain(`127.0.0.1:${port}`);
      expect(error.message).toContain('ECONNREFUSED');
      expect(error.message).not.toContain(PASSWORD);
    });
  });
});
