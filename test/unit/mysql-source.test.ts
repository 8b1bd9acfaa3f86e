import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceConfigError } from '../../src/source/errors';
import { mysqlSourceSpecSchema, readMysqlChunks, type MysqlSourceRead } from '../../src/source/mysql-source';
import { readSource } from '../../src/source/read-source';
import { freePort } from '../../dev/temporal-cli';
import type { SourceEntry } from '../../src/domain/types';
import { parseBackfillInput } from '../../src/workflow-input';
import { startTestMariaDb, type TestMariaDb } from '../support/mariadb';

// The MySQL/MariaDB member source against a real MariaDB (a throwaway server, see test/support/mariadb.ts): the
// spec's validation, a table with its own column names and flags of every kind (tinyint(1), 'Y'/'N', '1'/'0', text
// words, BIT(1), NULL), Korean text and emoji through utf8mb4, memberId order (byte-wise, NULLs last), 20,000 rows
// streamed in chunks while the server is still sending, and every configuration error without secrets or values.

let db: TestMariaDb;
let url: string;

const MAPPING = {
  memberId: 'member_no',
  mobileNumber: 'hp',
  email: 'mail_addr',
  unsubscribeEmail: 'mail_reject_yn',
  unsubscribeTexting: 'sms_agree_flag',
};

const BULK_ROWS = 20_000;
/** A wide email, so the 20,000 rows (about 20 MB) cannot all sit in socket buffers at once. */
const bulkEmail = (i: number) => `${'가'.repeat(300)}😀${i}@예시.kr`;

beforeAll(async () => {
  db = await startTestMariaDb();
  url = await db.createDatabase('shop');
  const sql = (text: string) => db.query(text, [], 'shop');
  // A PHP shop's table: its own names, a 'Y'/'N' CHAR(1) flag, a tinyint(1) flag, Korean names, emoji.
  await sql(
    `CREATE TABLE members (
       id int AUTO_INCREMENT PRIMARY KEY, member_no varchar(64) NULL, hp varchar(32) NULL, mail_addr varchar(255) NULL,
       mail_reject_yn char(1) NULL, sms_agree_flag tinyint(1) NULL, nick varchar(64) NULL, KEY (member_no)
     ) ENGINE=InnoDB`,
  );
  await db.query(
    `INSERT INTO members (member_no, hp, mail_addr, mail_reject_yn, sms_agree_flag, nick) VALUES ?`,
    [
      [
        ['m-3', '010-1111-2222', '김민수😀@예시.kr', 'Y', 0, '김민수'],
        ['m-1', null, 'a@example.org', 'N', 1, '이서연'],
        [null, '010-0000-0000', null, null, null, null],
        ['M-1', null, null, 'y', null, 'upper case'],
        ['m-2', '', null, 'X', null, null],
        ['', null, null, null, null, null],
        ['m-1', '010-9999-9999', null, null, null, null],
        ['  m-4  ', null, '🎉party@example.org', null, 1, '🎉'],
      ],
    ],
    'shop',
  );
  // Text flags as customers spell them ('1'/'0', words), a BIT(1) flag, a numeric id, no primary key.
  await sql(
    `CREATE TABLE legacy_users (uid bigint unsigned, phone varchar(20), email varchar(100), opt_out_mail varchar(8), opt_out_sms bit(1))`,
  );
  await sql(
    `INSERT INTO legacy_users VALUES (10, NULL, NULL, '1', b'1'), (2, NULL, NULL, 'false', b'0'), (9007199254740993, NULL, NULL, 'TRUE', NULL)`,
  );
  await sql(
    `CREATE TABLE bulk (id int PRIMARY KEY, memberId varchar(16), mobileNumber varchar(16), email varchar(400), unsubscribeEmail tinyint(1), unsubscribeTexting tinyint(1))`,
  );
  await sql(
    `CREATE TABLE empty_table (memberId text, mobileNumber text, email text, unsubscribeEmail text, unsubscribeTexting text)`,
  );
  for (let start = 0; start < BULK_ROWS; start += 2000) {
    const rows = Array.from({ length: 2000 }, (_, k) => {
      const i = start + k;
      return [i, `b-${String(i).padStart(5, '0')}`, null, bulkEmail(i), i % 2, null];
    });
    await db.query('INSERT INTO bulk VALUES ?', [rows], 'shop');
  }
}, 180_000);

afterAll(async () => {
  await db?.stop();
});

async function collect(spec: MysqlSourceRead, chunkRows?: number): Promise<SourceEntry[]> {
  const entries: SourceEntry[] = [];
  for await (const chunk of readMysqlChunks(spec, chunkRows ? { chunkRows } : {})) entries.push(...chunk);
  return entries;
}

async function failure(spec: MysqlSourceRead): Promise<Error> {
  const error = await collect(spec).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the read should fail').toBeInstanceOf(Error);
  return error as Error;
}

const member = (
  memberId: string,
  values: Partial<{ mobileNumber: string; email: string; unsubscribeEmail: boolean; unsubscribeTexting: boolean }>,
) => ({ mobileNumber: null, email: null, unsubscribeEmail: null, unsubscribeTexting: null, memberId, ...values });

describe('mysql source spec (workflow input)', () => {
  it.each([
    ['a table with a column mapping', { table: 'members', columns: MAPPING }],
    ['a database-qualified table', { table: 'shop.members' }],
    ['Korean names', { table: '회원', columns: { memberId: '회원번호' } }],
  ])('accepts %s', (_what, extra) => {
    const { options } = parseBackfillInput({ source: { type: 'mysql', ...extra } }, 'wf');
    expect(options.source).toEqual({ type: 'mysql', ...extra });
  });

  it.each([
    ['no table', {}, /needs "table"/],
    ['a statement after the table name', { table: 'members; DROP TABLE members' }, /plain SQL name/],
    ['a backquote closing the identifier', { table: 'members` ; DROP TABLE members; --' }, /plain SQL name/],
    ['three-part names', { table: 'a.b.c' }, /plain SQL name/],
    ['an injected column', { table: 'members', columns: { email: 'mail_addr FROM members; --' } }, /plain SQL name/],
    ['an unknown column key', { table: 'members', columns: { name: 'nick' } }, /Unrecognized key/i],
    ['a connection string in the input', { table: 'members', url: 'mysql://root:pw@db/shop' }, /Unrecognized key/i],
    ['a query (tables only)', { query: 'SELECT * FROM members' }, /Unrecognized key|needs "table"/i],
  ])('refuses %s', (_what, extra, problem) => {
    const result = mysqlSourceSpecSchema.safeParse({ type: 'mysql', ...extra });
    expect(result.success).toBe(false);
    const message = result.error!.issues.map((i) => i.message).join('; ');
    expect(message).toMatch(problem);
    expect(message).not.toContain('DROP');
  });
});

describe('readMysqlChunks', () => {
  it('reads a mapped table in memberId order (byte-wise), flags of each kind, Korean and emoji whole, NULL ids last', async () => {
    const entries = await collect({ type: 'mysql', table: 'members', columns: MAPPING, mysqlUrl: url });
    expect(entries).toEqual([
      // '' sorts first, then leading spaces (byte order); the row schema trims them as it trims a CSV cell.
      { line: 1, skip: 'empty memberId' },
      { line: 2, member: member('m-4', { email: '🎉party@example.org', unsubscribeTexting: true }) },
      // "M-1" and "m-1" are two members, though the column's collation calls them equal.
      { line: 3, member: member('M-1', { unsubscribeEmail: true }) },
      // Two rows of m-1, in primary-key order.
      {
        line: 4,
        member: member('m-1', { email: 'a@example.org', unsubscribeEmail: false, unsubscribeTexting: true }),
      },
      { line: 5, member: member('m-1', { mobileNumber: '010-9999-9999' }) },
      { line: 6, memberId: 'm-2', skip: 'unsubscribeEmail: invalid boolean' },
      {
        line: 7,
        member: member('m-3', {
          mobileNumber: '010-1111-2222',
          email: '김민수😀@예시.kr',
          unsubscribeEmail: true,
          unsubscribeTexting: false,
        }),
      },
      { line: 8, skip: 'empty memberId' },
    ]);
  });

  it('numeric ids in numeric order and exact; text flags, BIT(1) flags; a table without a primary key', async () => {
    const entries = await collect({
      type: 'mysql',
      table: 'shop.legacy_users',
      columns: {
        memberId: 'uid',
        mobileNumber: 'phone',
        email: 'email',
        unsubscribeEmail: 'opt_out_mail',
        unsubscribeTexting: 'opt_out_sms',
      },
      mysqlUrl: url,
    });
    expect(entries).toEqual([
      { line: 1, member: member('2', { unsubscribeEmail: false, unsubscribeTexting: false }) },
      { line: 2, member: member('10', { unsubscribeEmail: true, unsubscribeTexting: true }) },
      { line: 3, member: member('9007199254740993', { unsubscribeEmail: true }) },
    ]);
  });

  it('column names match as MySQL matches them (case-insensitively)', async () => {
    const upper = Object.fromEntries(Object.entries(MAPPING).map(([k, v]) => [k, v.toUpperCase()]));
    const entries = await collect({ type: 'mysql', table: 'members', columns: upper, mysqlUrl: url });
    expect(entries).toEqual(await collect({ type: 'mysql', table: 'members', columns: MAPPING, mysqlUrl: url }));
  });

  it(`streams ${BULK_ROWS} rows in chunks: the first chunk arrives while the server is still sending`, async () => {
    const chunks = readMysqlChunks({ type: 'mysql', table: 'bulk', mysqlUrl: url }, { chunkRows: 500 });
    const iterator = chunks[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.done).toBe(false);
    const firstChunk = first.value as SourceEntry[];
    expect(firstChunk).toHaveLength(500);
    // Hold the reader a while: with bounded read-ahead the server cannot send 20 MB, so its SELECT is still running
    // however long we wait. A reader that buffered the whole result lets the statement finish meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const running = await db.query(
      `SELECT ID, STATE FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND COMMAND = 'Query' AND INFO LIKE 'SELECT % FROM \`bulk\` AS src%'`,
    );
    expect(running, 'the SELECT is still sending rows').toHaveLength(1);
    const lines = firstChunk.map((e) => e.line);
    let largest = firstChunk.length;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      largest = Math.max(largest, next.value.length);
      for (const entry of next.value) lines.push(entry.line);
    }
    expect(largest).toBe(500);
    expect(lines).toEqual(Array.from({ length: BULK_ROWS }, (_, i) => i + 1));
    // Every row whole, Korean and emoji included, in memberId order.
    const again = await collect({ type: 'mysql', table: 'bulk', mysqlUrl: url });
    expect(again).toHaveLength(BULK_ROWS);
    expect(again[12_345]).toEqual({
      line: 12_346,
      member: member('b-12345', { email: bulkEmail(12_345), unsubscribeEmail: true }),
    });
  }, 120_000);

  it('plugs into readSource through the registry (resolved with the worker setting)', async () => {
    const entries: SourceEntry[] = [];
    for await (const entry of readSource({ type: 'mysql', table: 'members', columns: MAPPING, mysqlUrl: url }))
      entries.push(entry);
    expect(entries).toHaveLength(8);
  });

  describe('configuration errors stop the run with one line naming the problem, never the password or a value', () => {
    const PASSWORD = 'pw-51ac-secret';
    const cases: { name: string; spec: () => MysqlSourceRead; problem: RegExp }[] = [
      {
        name: 'BACKFILL_MYSQL_URL unset',
        spec: () => ({ type: 'mysql', table: 'members' }),
        problem: /BACKFILL_MYSQL_URL is not set/,
      },
      {
        name: 'not a mysql URL',
        spec: () => ({ type: 'mysql', table: 'members', mysqlUrl: `postgres://root:${PASSWORD}@127.0.0.1/x` }),
        problem: /must be a mysql:\/\/ or mariadb:\/\/ URL/,
      },
      {
        name: 'unknown database',
        spec: () => ({
          type: 'mysql',
          table: 'members',
          mysqlUrl: `mysql://root@127.0.0.1:${db.port}/no_such_db`,
        }),
        problem: /database named in BACKFILL_MYSQL_URL does not exist/,
      },
      {
        name: 'unknown user',
        spec: () => ({
          type: 'mysql',
          table: 'members',
          mysqlUrl: `mysql://nobody:${PASSWORD}@127.0.0.1:${db.port}/shop`,
        }),
        problem: /refused the user or password in BACKFILL_MYSQL_URL/,
      },
      {
        name: 'no database in the URL and an unqualified table',
        spec: () => ({ type: 'mysql', table: 'members', mysqlUrl: db.url() }),
        problem: /BACKFILL_MYSQL_URL names no database/,
      },
      {
        name: 'missing table',
        spec: () => ({ type: 'mysql', table: 'clients', mysqlUrl: url }),
        problem: /table clients does not exist/,
      },
      {
        name: 'mapped columns missing, all named',
        spec: () => ({
          type: 'mysql',
          table: 'members',
          columns: { ...MAPPING, email: 'mail', unsubscribeTexting: 'sms' },
          mysqlUrl: url,
        }),
        problem: /table members has no column mail \(for email\), sms \(for unsubscribeTexting\)/,
      },
      {
        name: 'an empty table',
        spec: () => ({ type: 'mysql', table: 'empty_table', mysqlUrl: url }),
        problem: /table empty_table has no rows/,
      },
    ];

    it.each(cases)('$name', async ({ spec, problem }) => {
      const error = await failure(spec());
      expect(error).toBeInstanceOf(SourceConfigError);
      expect(error.message).toMatch(problem);
      expect(error.message).not.toContain(PASSWORD);
      expect(error.message).not.toMatch(/010-|@example\.org|예시/);
      expect(error.message).not.toContain('\n');
    });

    it('a server that cannot be reached is retryable (a plain Error), and names host and port only', async () => {
      const port = await freePort();
      const error = await failure({
        type: 'mysql',
        table: 'members',
        mysqlUrl: `mysql://root:${PASSWORD}@127.0.0.1:${port}/shop`,
      });
      expect(error).not.toBeInstanceOf(SourceConfigError);
      expect(error.message).toContain(`127.0.0.1:${port}`);
      expect(error.message).toContain('ECONNREFUSED');
      expect(error.message).not.toContain(PASSWORD);
    });
  });
});
