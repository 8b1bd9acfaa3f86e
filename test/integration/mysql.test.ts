import { readFile } from 'node:fs/promises';
import { parse as parseCsv } from 'csv-parse/sync';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoggedEntry } from '../../src/audit/audit-entry';
import { customerWrites, type CustomerWrite } from '../../dev/customer-database';
import type { DevServer } from '../../dev/temporal-cli';
import { WORKFLOW_TYPE, type BackfillInput } from '../../workflows/definitions';
import { EXAMPLE_CSV, loadExamples, type Examples } from '../support/examples';
import { startTestMariaDb, type TestMariaDb } from '../support/mariadb';
import { readAudit, runBackfill, startStack, startTestServer, type Stack } from '../support/stack';

// The MySQL/MariaDB member source end to end: the example data in a MariaDB table of a PHP shop (its own column
// names, 'Y'/'N' and '1'/'0' flags, Korean names), backfilled on a real Temporal dev server through the worker, must
// give the example's known answer; a missing column stops the run before any lookup; and a verify run over the same
// table, after the customer's logic applied all but two replays, finds exactly those two.

let server: DevServer;
let db: TestMariaDb;
let examples: Examples;
let shopUrl: string;

interface CsvRow {
  memberId: string;
  mobileNumber: string;
  email: string;
  unsubscribeEmail: string;
  unsubscribeTexting: string;
  name: string;
}

const MAPPING = {
  memberId: 'member_no',
  mobileNumber: 'hp',
  email: 'mail_addr',
  unsubscribeEmail: 'mail_reject_yn',
  unsubscribeTexting: 'sms_reject',
};
const SOURCE = { type: 'mysql', table: 'shop.members', columns: MAPPING } as const;

/** One row: its id is its CSV position, so the CSV line is id + 1. */
let tableRows: { id: number; memberId: string | null }[] = [];

const TRUE_WORDS = new Set(['true', '1', 'yes']);
const FALSE_WORDS = new Set(['false', '0', 'no']);
/** A CSV flag in the shop's spelling ('Y'/'N' or '1'/'0'); an invalid one ("maybe") kept, to be skipped as in the CSV. */
function shopFlag(cell: string, yes: string, no: string): string | null {
  const word = cell.trim().toLowerCase();
  if (word === '') return null;
  return TRUE_WORDS.has(word) ? yes : FALSE_WORDS.has(word) ? no : cell;
}

beforeAll(async () => {
  [server, db, examples] = await Promise.all([startTestServer(), startTestMariaDb(), loadExamples()]);
  shopUrl = await db.createDatabase('shop');
  const rows = parseCsv(await readFile(EXAMPLE_CSV, 'utf8'), { columns: true, bom: true }) as CsvRow[];
  await db.query(
    `CREATE TABLE members (id int AUTO_INCREMENT PRIMARY KEY, member_no varchar(300), hp varchar(40), mail_addr varchar(255),
       mail_reject_yn varchar(40), sms_reject varchar(40), nick varchar(64), KEY (member_no))`,
    [],
    'shop',
  );
  const cell = (v: string) => (v === '' ? null : v);
  const values = rows.map((r) => [
    cell(r.memberId),
    cell(r.mobileNumber),
    cell(r.email),
    shopFlag(r.unsubscribeEmail, 'Y', 'N'),
    shopFlag(r.unsubscribeTexting, '1', '0'),
    cell(r.name),
  ]);
  await db.query(
    'INSERT INTO members (member_no, hp, mail_addr, mail_reject_yn, sms_reject, nick) VALUES ?',
    [values],
    'shop',
  );
  tableRows = (await db.query('SELECT id, member_no AS memberId FROM members ORDER BY id', [], 'shop')) as {
    id: number;
    memberId: string | null;
  }[];
  expect(tableRows.map((r) => r.memberId)).toEqual(rows.map((r) => cell(r.memberId)));
  // Korean arrived whole (utf8mb4 on a latin1 server).
  const korean = rows.find((r) => /[가-힣]/.test(r.name))!;
  const [stored] = await db.query('SELECT nick FROM members WHERE nick = ?', [korean.name], 'shop');
  expect(stored?.nick).toBe(korean.name);
}, 180_000);

afterAll(async () => {
  await Promise.all([server?.stop(), db?.stop()]);
});

const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/** The documented order: memberId byte-wise, rows of one memberId by primary key, NULL memberIds last. */
function expectedInMemberIdOrder() {
  const byCsvLine = new Map(examples.expected.outcomes.map((o) => [o.line, o]));
  const sorted = [...tableRows].sort((a, b) => {
    if (a.memberId === null || b.memberId === null)
      return a.memberId === b.memberId ? a.id - b.id : a.memberId === null ? 1 : -1;
    return byteOrder(a.memberId, b.memberId) || a.id - b.id;
  });
  return sorted.map((row, i) => ({ line: i + 1, want: byCsvLine.get(row.id + 1)! }));
}

async function withStack<T>(env: Record<string, string>, body: (stack: Stack) => Promise<T>): Promise<T> {
  const stack = await startStack({
    server,
    users: examples.users,
    channelFaults: examples.faults.channel,
    receiverBehaviours: examples.faults.receiver,
    env: { BACKFILL_MYSQL_URL: shopUrl, ...env },
  });
  try {
    return await body(stack);
  } finally {
    await stack.close();
  }
}

/** The customer's logic applying the replays to its own table, in its own column names and flag spellings. */
async function applyToShop(writes: readonly CustomerWrite[]): Promise<void> {
  const spell: Record<string, (v: unknown) => unknown> = {
    unsubscribeEmail: (v) => (v === null ? null : v ? 'Y' : 'N'),
    unsubscribeTexting: (v) => (v === null ? null : v ? '1' : '0'),
  };
  for (const w of writes) {
    if (w.kind === 'delete') {
      await db.query('DELETE FROM members WHERE member_no = ?', [w.memberId], 'shop');
      continue;
    }
    const entries = Object.entries(w.values);
    if (entries.length === 0) continue;
    const set = entries.map(([column]) => `${MAPPING[column as keyof typeof MAPPING]} = ?`).join(', ');
    const values = entries.map(([column, v]) => (spell[column] ? spell[column](v) : v));
    await db.query(`UPDATE members SET ${set} WHERE member_no = ?`, [...values, w.memberId], 'shop');
  }
}

const delivered = (audit: LoggedEntry[]) =>
  audit.filter((e) => e.delivered === true && (e.outcome === 'upsert' || e.outcome === 'delete'));

describe('backfill from a MariaDB table on a real Temporal dev server', () => {
  it("a mapped shop table gives the example data's known answer; a verify over the same table finds the two dropped replays", async () => {
    await withStack({}, async (stack) => {
      const repair = await runBackfill(stack, 'mysql-repair', { source: SOURCE, batchSize: 40 });
      const audit = await readAudit(repair.auditPath);
      const expected = expectedInMemberIdOrder();
      expect(audit).toHaveLength(expected.length);
      const byLine = new Map(audit.map((e) => [e.line, e]));
      for (const { line, want } of expected) {
        const got = byLine.get(line);
        const what = `line ${line} (${want.memberId || 'no memberId'})`;
        expect(got?.outcome, what).toBe(want.outcome);
        if (want.memberId !== '') expect(got!.memberId, what).toBe(want.memberId);
        if (want.outcome === 'upsert') expect(got!.fields, what).toEqual(want.fields);
      }
      expect(repair.processed).toBe(tableRows.length);

      // The shop's webhook logic applies every accepted replay but one upsert and one delete.
      const replayed = delivered(audit);
      const dropped = [replayed.find((e) => e.outcome === 'upsert')!, replayed.find((e) => e.outcome === 'delete')!];
      await applyToShop(
        customerWrites(stack.receiver.accepted(), { members: new Set(dropped.map((e) => e.memberId!)) }),
      );
      const sent = stack.receiver.deliveries().length;
      const verify = await runBackfill(stack, 'mysql-verify', {
        source: SOURCE,
        verifyAfter: { auditPath: repair.auditPath },
      });
      expect(stack.receiver.deliveries().length, 'a verify run sends nothing').toBe(sent);
      const verdicts = Object.fromEntries((await readAudit(verify.auditPath)).map((e) => [e.memberId!, e.verdict]));
      const want = Object.fromEntries(replayed.map((e) => [e.memberId!, 'repaired']));
      want[dropped[0]!.memberId!] = 'still differs';
      want[dropped[1]!.memberId!] = 'still present';
      expect(verdicts).toEqual(want);
    });
  });

  it('a mapped column the table lacks, or a worker without BACKFILL_MYSQL_URL, fails the run in one line before any lookup', async () => {
    const cases: { env: Record<string, string>; source: typeof SOURCE; problem: RegExp }[] = [
      {
        env: {},
        source: { ...SOURCE, columns: { ...MAPPING, email: 'email' } },
        problem: /table shop\.members has no column email/,
      },
      { env: { BACKFILL_MYSQL_URL: '' }, source: SOURCE, problem: /BACKFILL_MYSQL_URL is not set on the worker/ },
    ];
    for (const [i, c] of cases.entries()) {
      await withStack(c.env, async (stack) => {
        const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
          taskQueue: stack.config.BACKFILL_TASK_QUEUE,
          workflowId: `mysql-bad-${i}`,
          args: [{ source: c.source } as unknown as BackfillInput],
        });
        const err = await handle.result().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowFailedError);
        const message = String((err as WorkflowFailedError).cause?.message);
        expect(message).toMatch(c.problem);
        expect(message).not.toContain('\n');
        expect(stack.simulator.stats().requests).toBe(0);
      });
    }
  });
});
