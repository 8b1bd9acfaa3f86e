import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { Pool } from 'pg';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/audit/audit-entry';
import { auditHeaderLine, type AuditHeader } from '../../src/audit/audit-header';
import {
  AuditLogNotFoundError,
  createFileAuditStore,
  newReadStats,
  type AuditStore,
} from '../../src/audit/audit-store';
import { createPostgresAuditStore, type AuditQueryable } from '../../src/audit/postgres-audit-store';
import type { AuditSummary } from '../../src/report/summary';
import type { DevServer } from '../../dev/temporal-cli';
import type { OutcomeKind } from '../../src/domain/types';
import { WORKFLOW_TYPE, type BackfillInput, type BackfillResult } from '../../workflows/definitions';
import { EXAMPLE_CSV, loadExamples, type ExpectedOutcome, type Examples } from '../support/examples';
import { startTestPostgres, type TestPostgres } from '../support/postgres';
import { readAudit, startStack, startTestServer, type Stack, type StackOptions } from '../support/stack';
import { runProcess, type ProcessResult } from '../support/child-process';

// The PostgreSQL member source and audit log end to end: the example data moved into a PostgreSQL table
// with other column names, backfilled on a real Temporal dev server, must give the example's known
// answer; the audit log in a PostgreSQL table keeps the file's contract (checked by one shared table of
// cases for both stores) and makes a re-run a no-op.

let server: DevServer;
let pg: TestPostgres;
let examples: Examples;
let dbUrl: string;

interface CsvRow {
  memberId: string;
  mobileNumber: string;
  email: string;
  unsubscribeEmail: string;
  unsubscribeTexting: string;
  name: string;
}

/** One row of crm.customers: `id` is its CSV position, so the CSV line is id + 1 (line 1 is the header). */
interface TableRow {
  id: number;
  memberId: string | null;
}

let tableRows: TableRow[] = [];
/** Every email and phone number of the example data: none may appear in an audit log. */
let contacts: string[] = [];

const MAPPING = {
  memberId: 'user_id',
  mobileNumber: 'phone',
  email: 'email_address',
  unsubscribeEmail: 'email_opt_out',
  unsubscribeTexting: 'sms_opt_out',
};
const TABLE_SOURCE = { type: 'postgres', table: 'crm.customers', columns: MAPPING } as const;
// A typical query source: one row per memberId (the earliest), named as the five values, NULL ids left out.
const QUERY_SOURCE = {
  type: 'postgres',
  query: `SELECT DISTINCT ON (user_id) user_id AS "memberId", phone AS "mobileNumber", email_address AS email,
            email_opt_out AS "unsubscribeEmail", sms_opt_out AS "unsubscribeTexting"
          FROM crm.customers WHERE user_id IS NOT NULL ORDER BY user_id, id`,
} as const;

beforeAll(async () => {
  [server, pg, examples] = await Promise.all([startTestServer(), startTestPostgres(), loadExamples()]);
  dbUrl = await pg.createDatabase('crm_app');
  const rows = parseCsv(await readFile(EXAMPLE_CSV, 'utf8'), { columns: true, bom: true }) as CsvRow[];
  expect(rows).toHaveLength(examples.expected.counts.rows);
  contacts = rows.flatMap((r) => [r.email, r.mobileNumber]).filter((v) => v.trim().length >= 6);
  // Other column names than the CSV's; the flags as text, so the invalid ones ("maybe") fit too; an
  // empty cell is NULL, as a database stores a missing value.
  await pg.query('CREATE SCHEMA crm', [], 'crm_app');
  await pg.query(
    `CREATE TABLE crm.customers (id serial PRIMARY KEY, user_id text, phone text, email_address text, email_opt_out text, sms_opt_out text, full_name text)`,
    [],
    'crm_app',
  );
  await pg.query('CREATE INDEX ON crm.customers (user_id)', [], 'crm_app');
  const cell = (v: string) => (v === '' ? null : v);
  const column = (key: keyof CsvRow) => rows.map((r) => cell(r[key]));
  await pg.query(
    `INSERT INTO crm.customers (user_id, phone, email_address, email_opt_out, sms_opt_out, full_name)
     SELECT a, b, c, d, e, f FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS u(a, b, c, d, e, f, n) ORDER BY n`,
    [
      column('memberId'),
      column('mobileNumber'),
      column('email'),
      column('unsubscribeEmail'),
      column('unsubscribeTexting'),
      column('name'),
    ],
    'crm_app',
  );
  tableRows = (await pg.query(
    'SELECT id, user_id AS "memberId" FROM crm.customers ORDER BY id',
    [],
    'crm_app',
  )) as unknown as TableRow[];
  // id n holds the CSV's n-th row: ids follow CSV order.
  expect(tableRows.map((r) => [r.id, r.memberId])).toEqual(rows.map((r, i) => [i + 1, cell(r.memberId)]));
}, 180_000);

afterAll(async () => {
  await Promise.all([server?.stop(), pg?.stop()]);
});

/** The database's collation here is C (test/support/postgres.ts runs initdb --no-locale): byte order. */
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/**
 * What the source yields, as the reader documents it: memberId order, rows of one memberId in primary
 * key order, NULL memberIds last; `line` is the 1-based position. Each carries the example's expected
 * outcome for its CSV row.
 */
function expectedInMemberIdOrder(rows: TableRow[]): { line: number; csvLine: number; want: ExpectedOutcome }[] {
  const byCsvLine = new Map(examples.expected.outcomes.map((o) => [o.line, o]));
  const sorted = [...rows].sort((a, b) => {
    if (a.memberId === null || b.memberId === null)
      return a.memberId === b.memberId ? a.id - b.id : a.memberId === null ? 1 : -1;
    return byteOrder(a.memberId, b.memberId) || a.id - b.id;
  });
  return sorted.map((row, i) => ({ line: i + 1, csvLine: row.id + 1, want: byCsvLine.get(row.id + 1)! }));
}

function countsOf(outcomes: OutcomeKind[]) {
  const count = (o: OutcomeKind) => outcomes.filter((x) => x === o).length;
  return {
    processed: outcomes.length,
    upserts: count('upsert'),
    deletes: count('delete'),
    unchanged: count('unchanged'),
    failed: count('failed'),
    skipped: count('skipped'),
  };
}

async function withStack<T>(opts: Partial<StackOptions>, body: (stack: Stack) => Promise<T>): Promise<T> {
  const stack = await startStack({
    server,
    users: examples.users,
    channelFaults: examples.faults.channel,
    receiverBehaviours: examples.faults.receiver,
    ...opts,
    env: { BACKFILL_DATABASE_URL: dbUrl, ...opts.env },
  });
  try {
    return await body(stack);
  } finally {
    await stack.close();
  }
}

function start(stack: Stack, workflowId: string, input: Record<string, unknown>) {
  return stack.client.workflow.start(WORKFLOW_TYPE, {
    taskQueue: stack.config.BACKFILL_TASK_QUEUE,
    workflowId,
    args: [{ batchSize: 40, ...input } as unknown as BackfillInput],
  });
}

/** Each audit entry matches the example's expected outcome for the row at its line; deliveries match too. */
function checkRun(stack: Stack, audit: AuditEntry[], expected: ReturnType<typeof expectedInMemberIdOrder>) {
  expect(audit).toHaveLength(expected.length);
  const byLine = new Map(audit.map((e) => [e.line, e]));
  expect(byLine.size).toBe(expected.length);
  for (const { line, csvLine, want } of expected) {
    const got = byLine.get(line);
    const what = `line ${line} (CSV line ${csvLine}, ${want.memberId || 'no memberId'})`;
    expect(got, what).toBeDefined();
    expect(got!.outcome, what).toBe(want.outcome);
    if (want.memberId !== '') expect(got!.memberId, what).toBe(want.memberId);
    if (want.outcome === 'upsert') expect(got!.fields, what).toEqual(want.fields);
    if (want.outcome === 'delete') expect(got!.reason, what).toBe(want.reason);
    if (want.outcome === 'failed') expect(got!.stage, what).toBe(want.reason);
    if (want.reason === 'duplicate') expect(got!.reason, what).toContain('duplicate memberId');
  }
  // Exactly the due deliveries reached the receiver, one per upsert or delete, with the right event.
  const due = expected.filter((e) => e.want.outcome === 'upsert' || e.want.outcome === 'delete');
  const accepted = stack.receiver.accepted();
  expect(accepted).toHaveLength(due.length);
  const acceptedByMember = new Map(accepted.map((d) => [d.memberId, d]));
  for (const { want } of due) expect(acceptedByMember.get(want.memberId)?.event, want.memberId).toBe(want.outcome);
}

describe('backfill from a PostgreSQL source on a real Temporal dev server', () => {
  it("a mapped table gives the example data's known answer, lines in memberId order", async () => {
    await withStack({}, async (stack) => {
      const handle = await start(stack, 'pg-table-run', { source: TABLE_SOURCE });
      const result = (await handle.result()) as BackfillResult;
      const { counts } = examples.expected;
      // Every CSV row fits the table (bad flags as text, empty ids as NULL), so the counts are the file's.
      expect(result).toMatchObject({
        ...countsOf(examples.expected.outcomes.map((o) => o.outcome)),
        total: counts.rows,
        dryRun: false,
      });
      expect(result).toMatchObject({
        upserts: counts.upserts,
        deletes: counts.deletes,
        unchanged: counts.unchanged,
        failed: counts.failed,
        skipped: counts.skipped,
      });
      checkRun(stack, await readAudit(result.auditPath), expectedInMemberIdOrder(tableRows));
    });
  });

  it('a query source (one row per memberId, NULL ids left out) gives the expected outcome of every member it returns', async () => {
    await withStack({}, async (stack) => {
      const handle = await start(stack, 'pg-query-run', { source: QUERY_SOURCE });
      const result = (await handle.result()) as BackfillResult;
      const seen = new Set<string>();
      const returned = tableRows.filter((r) => r.memberId !== null && !seen.has(r.memberId) && seen.add(r.memberId));
      const expected = expectedInMemberIdOrder(returned);
      // No duplicates and no NULL ids reach the job: 300 rows less 3 later duplicates and 2 empty ids.
      expect(expected).toHaveLength(examples.expected.counts.rows - 5);
      expect(expected.every((e) => e.want.reason !== 'duplicate')).toBe(true);
      expect(result).toMatchObject({ ...countsOf(expected.map((e) => e.want.outcome)), total: expected.length });
      checkRun(stack, await readAudit(result.auditPath), expected);
    });
  });

  it('the audit log in PostgreSQL: one row per member, and a re-run with the same log redoes nothing', async () => {
    await withStack({ env: { BACKFILL_AUDIT_STORE: 'postgres' } }, async (stack) => {
      const auditKey = path.join(stack.dataDir, 'campaign-2024-11');
      const input = { source: TABLE_SOURCE, auditPath: auditKey, runLabel: 'outage-2024-11' };
      const first = (await (await start(stack, 'pg-audit-run', input)).result()) as BackfillResult;
      expect(first.auditPath).toBe(auditKey);
      expect(existsSync(auditKey), 'no audit file: the log is in PostgreSQL').toBe(false);

      const stored = async () =>
        (await pg.query(
          'SELECT line, outcome, deferred, entry FROM backfill_audit WHERE key = $1 ORDER BY line',
          [auditKey],
          'crm_app',
        )) as { line: number; outcome: string; deferred: boolean; entry: AuditEntry }[];
      const rows = await stored();
      const expected = expectedInMemberIdOrder(tableRows);
      expect(rows).toHaveLength(expected.length);
      expect(rows.map((r) => r.line)).toEqual(expected.map((e) => e.line));
      for (const row of rows) {
        expect(row.outcome).toBe(row.entry.outcome);
        expect(row.deferred).toBe(row.entry.deferred === true);
      }
      checkRun(
        stack,
        rows.map((r) => r.entry),
        expected,
      );
      expect(first).toMatchObject(countsOf(expected.map((e) => e.want.outcome)));
      // The log names fields and outcomes, never the contacts themselves.
      const text = JSON.stringify(rows);
      expect(contacts.length).toBeGreaterThan(400);
      expect(contacts.filter((c) => text.includes(c))).toEqual([]);

      const requests = stack.simulator.stats().requests;
      const deliveries = stack.receiver.deliveries().length;
      const again = (await (await start(stack, 'pg-audit-rerun', input)).result()) as BackfillResult;
      expect(stack.simulator.stats().requests, 'no lookup on the re-run').toBe(requests);
      expect(stack.receiver.deliveries().length, 'no delivery on the re-run').toBe(deliveries);
      expect(again).toMatchObject({
        processed: first.processed,
        upserts: first.upserts,
        deletes: first.deletes,
        unchanged: first.unchanged,
        failed: first.failed,
        skipped: first.skipped,
      });
      const after = await stored();
      expect(after).toHaveLength(expected.length);
      expect(after).toEqual(rows);
    });
  });

  it('an SQL injection attempt in a table or column name fails the run as invalid input, before any lookup or query', async () => {
    await withStack({}, async (stack) => {
      const attempts = [
        { ...TABLE_SOURCE, table: 'crm.customers; DROP TABLE crm.customers' },
        {
          ...TABLE_SOURCE,
          columns: { ...MAPPING, email: 'email_address FROM crm.customers; DROP TABLE crm.customers; --' },
        },
      ];
      for (const [i, source] of attempts.entries()) {
        const err = await (await start(stack, `pg-injection-${i}`, { source })).result().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowFailedError);
        const cause = (err as WorkflowFailedError).cause as Error & { type?: string };
        expect(cause.message).toMatch(
          /invalid workflow input: source\.(table|columns\.email): must be a plain SQL name/,
        );
        expect(cause.message).not.toContain('DROP');
      }
      expect(stack.simulator.stats().requests).toBe(0);
      expect((await pg.query('SELECT count(*)::int AS n FROM crm.customers', [], 'crm_app'))[0]?.n).toBe(
        tableRows.length,
      );
    });
  });

  it('a worker without BACKFILL_DATABASE_URL, or with a wrong one, fails the run with one clear line and no password', async () => {
    const password = 'pw-3b7c-secret';
    const cases = [
      { env: { BACKFILL_DATABASE_URL: '' }, problem: /BACKFILL_DATABASE_URL is not set on the worker/ },
      {
        env: { BACKFILL_DATABASE_URL: `postgres://postgres:${password}@127.0.0.1:${pg.port}/no_such_db` },
        problem: /database named in BACKFILL_DATABASE_URL does not exist/,
      },
      {
        env: { BACKFILL_DATABASE_URL: dbUrl },
        source: { ...TABLE_SOURCE, table: 'crm.clients' },
        problem: /table crm\.clients does not exist/,
      },
    ];
    for (const [i, c] of cases.entries()) {
      await withStack({ env: c.env }, async (stack) => {
        const err = await (
          await start(stack, `pg-bad-config-${i}`, { source: c.source ?? TABLE_SOURCE })
        )
          .result()
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowFailedError);
        const message = String((err as WorkflowFailedError).cause?.message);
        expect(message).toMatch(c.problem);
        expect(message).not.toContain(password);
        expect(message).not.toContain('\n');
        expect(stack.simulator.stats().requests).toBe(0);
      });
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// Reading an audit log kept in PostgreSQL: `only`, `fromPlan` and `webhook-backfill report`

const PG_STORE = { BACKFILL_AUDIT_STORE: 'postgres' };
const CSV = { type: 'csv', path: EXAMPLE_CSV } as const;

/** A log of the PostgreSQL store, in line order, straight from the table. */
async function pgLog(key: string): Promise<AuditEntry[]> {
  return (
    (await pg.query('SELECT entry FROM backfill_audit WHERE key = $1 ORDER BY line', [key], 'crm_app')) as {
      entry: AuditEntry;
    }[]
  ).map((r) => r.entry);
}

/**
 * `webhook-backfill <args>` as a child process, from the TypeScript sources (bin/webhook-backfill.js would
 * run dist/ when a build is there, which may predate these sources), with only the environment given.
 */
function cliFromSource(args: string[], env: Record<string, string>): Promise<ProcessResult> {
  return runProcess(
    process.execPath,
    ['--require', require.resolve('tsx/cjs'), path.resolve(__dirname, '../../src/cli/main.ts'), ...args],
    { TEMPORAL_ADDRESS: server.address, ...env },
  );
}

describe('selections and the report read the PostgreSQL audit store', () => {
  it(
    'only: {outcomes: [failed]} over a PostgreSQL-kept log runs exactly its failed members; a missing key fails the run',
    { timeout: 120_000 },
    async () => {
      await withStack({ env: PG_STORE }, async (stack) => {
        const key = path.join(stack.dataDir, 'logs', 'partial-first'); // a key only: no file is ever made there
        const first = (await (
          await start(stack, 'pg-partial-first', { source: CSV, auditPath: key })
        ).result()) as BackfillResult;
        expect(first.failed).toBe(examples.expected.counts.failed);
        expect(existsSync(key), 'the log is in PostgreSQL, not in a file').toBe(false);
        const failed = (await pgLog(key)).filter((e) => e.outcome === 'failed').map((e) => e.memberId!);
        expect(failed).toHaveLength(examples.expected.counts.failed);

        // The faults are over: the API answers and the receiver accepts.
        stack.simulator.setFaults({});
        for (const member of Object.keys(examples.faults.receiver)) stack.receiver.setBehaviour(member, undefined);
        const before = stack.simulator.stats().requests;
        const retry = (await (
          await start(stack, 'pg-partial-retry', { source: CSV, only: { auditPath: key, outcomes: ['failed'] } })
        ).result()) as BackfillResult;
        expect(retry).toMatchObject({ processed: failed.length, total: failed.length, failed: 0, skipped: 0 });
        expect(stack.simulator.stats().requests - before, 'one lookup per failed member, none for the others').toBe(
          failed.length,
        );
        // The retry's own log went to PostgreSQL too, under its default key: exactly the failed members.
        expect(existsSync(retry.auditPath)).toBe(false);
        expect((await pgLog(retry.auditPath)).map((e) => e.memberId).sort()).toEqual([...failed].sort());

        const missing = path.join(stack.dataDir, 'never-recorded');
        const err = await (
          await start(stack, 'pg-partial-missing', { source: CSV, only: { auditPath: missing, outcomes: ['failed'] } })
        )
          .result()
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowFailedError);
        const message = String((err as WorkflowFailedError).cause?.message);
        expect(message).toContain(JSON.stringify(missing));
        expect(message).toContain('the audit log to select members from does not exist');
        expect(stack.simulator.stats().requests - before).toBe(failed.length);
      });
    },
  );

  it('fromPlan over a dry run kept in PostgreSQL replays exactly the plan', { timeout: 120_000 }, async () => {
    await withStack({ env: PG_STORE, receiverBehaviours: {} }, async (stack) => {
      const dry = (await (await start(stack, 'pg-plan-dry', { source: CSV, dryRun: true })).result()) as BackfillResult;
      expect(existsSync(dry.auditPath)).toBe(false);
      const planned = (await pgLog(dry.auditPath)).filter((e) => e.outcome === 'upsert' || e.outcome === 'delete');
      expect(planned).toHaveLength(examples.expected.dryRunCounts.upserts + examples.expected.dryRunCounts.deletes);
      expect(stack.receiver.deliveries()).toHaveLength(0);

      const done = (await (
        await start(stack, 'pg-plan-execute', { source: CSV, fromPlan: { auditPath: dry.auditPath } })
      ).result()) as BackfillResult;
      expect(done).toMatchObject({
        processed: planned.length,
        total: planned.length,
        failed: 0,
        skipped: 0,
        unchanged: 0,
      });
      expect({ upserts: done.upserts, deletes: done.deletes }).toEqual({
        upserts: planned.filter((e) => e.outcome === 'upsert').length,
        deletes: planned.filter((e) => e.outcome === 'delete').length,
      });
      // Each planned member delivered once with its planned event, and nobody else.
      const delivered = stack.receiver.accepted();
      expect(delivered.map((d) => `${d.memberId} ${d.event}`).sort()).toEqual(
        planned.map((e) => `${e.memberId} ${e.outcome}`).sort(),
      );

      // A real run's log is no plan, whichever store holds it.
      const requests = stack.simulator.stats().requests;
      const err = await (
        await start(stack, 'pg-plan-bad', { source: CSV, fromPlan: { auditPath: done.auditPath } })
      )
        .result()
        .catch((e: unknown) => e);
      expect(String((err as WorkflowFailedError).cause?.message)).toMatch(/not recorded by a dry run/);
      expect(stack.simulator.stats().requests).toBe(requests);
    });
  });

  it(
    "webhook-backfill report over a PostgreSQL-kept run prints the run's counts, the same as over the equivalent file",
    { timeout: 120_000 },
    async () => {
      await withStack({ env: PG_STORE }, async (stack) => {
        const id = 'pg-report-run';
        const result = (await (await start(stack, id, { source: CSV })).result()) as BackfillResult;
        expect(existsSync(result.auditPath)).toBe(false);
        // The equivalent file: the log's header (its own table) as the first line, then the table's entries as JSONL.
        const file = path.join(stack.dataDir, 'exported-audit.jsonl');
        const records = await pgLog(result.auditPath);
        const header = await createPostgresAuditStore(pg.pool('crm_app')).header(result.auditPath);
        expect(header).toMatchObject({ backfill: id, channel: { id: '1', name: 'Simulated channel' }, dryRun: false });
        await writeFile(file, [auditHeaderLine(header!), ...records.map((e) => JSON.stringify(e))].join('\n') + '\n');

        const pgEnv = {
          BACKFILL_TASK_QUEUE: stack.config.BACKFILL_TASK_QUEUE,
          BACKFILL_AUDIT_STORE: 'postgres',
          BACKFILL_DATABASE_URL: dbUrl,
        };
        const fileEnv = { BACKFILL_TASK_QUEUE: stack.config.BACKFILL_TASK_QUEUE };
        const [pgJson, pgText, byKey, pgCsv, fileJson, fileText, fileCsv, withoutStore, badEnv] = await Promise.all([
          cliFromSource(['report', '--workflow-id', id, '--summary', '--format', 'json'], pgEnv),
          cliFromSource(['report', '--workflow-id', id], pgEnv),
          cliFromSource(['report', '--audit', result.auditPath, '--summary', '--format', 'json'], pgEnv),
          cliFromSource(['report', '--audit', result.auditPath, '--format', 'csv'], pgEnv),
          cliFromSource(['report', '--audit', file, '--summary', '--format', 'json'], fileEnv),
          cliFromSource(['report', '--audit', file], fileEnv),
          cliFromSource(['report', '--audit', file, '--format', 'csv'], fileEnv),
          cliFromSource(['report', '--workflow-id', id], fileEnv),
          cliFromSource(['report', '--audit', result.auditPath], { BACKFILL_AUDIT_STORE: 'postgres' }),
        ]);
        for (const r of [pgJson, pgText, byKey, pgCsv, fileJson, fileText, fileCsv]) expect(r.code, r.stderr).toBe(0);

        const summary = JSON.parse(pgJson.stdout) as AuditSummary & { auditPath: string; header: AuditHeader | null };
        expect(summary.auditPath).toBe(result.auditPath);
        expect({ processed: summary.rows, ...summary.outcomes }).toEqual({
          processed: result.processed,
          upsert: result.upserts,
          delete: result.deletes,
          unchanged: result.unchanged,
          failed: result.failed,
          skipped: result.skipped,
        });
        expect(summary.rows).toBe(examples.expected.counts.rows);
        expect(summary.outcomes.failed).toBe(examples.expected.counts.failed);
        // Identical reports for the same records: the summary, its text (but for the log's name) and the CSV.
        // By workflow id the report also gives the run's own rate-limit totals (not in the log: issue 24).
        const { auditPath: _pgPath, channelPace, ...pgRest } = summary as typeof summary & { channelPace?: unknown };
        expect(channelPace).toMatchObject({ rateLimited: expect.any(Number), warnings: expect.any(Number) });
        const { auditPath: filePath, ...fileRest } = JSON.parse(fileJson.stdout) as AuditSummary & {
          auditPath: string;
        };
        expect(filePath).toBe(file);
        expect(pgRest).toEqual(fileRest);
        expect(JSON.parse(byKey.stdout)).toEqual({ auditPath: result.auditPath, ...pgRest });
        const rateLine = /^Channel Talk's rate limit: \d+ answers 429, .*\n/m;
        expect(pgText.stdout).toMatch(rateLine);
        expect(pgText.stdout.replace(result.auditPath, 'LOG').replace(rateLine, '')).toBe(
          fileText.stdout.replace(file, 'LOG'),
        );
        expect(pgText.stdout).toContain(`${summary.rows} rows (${result.auditPath})`);
        expect(pgText.stdout).toContain(
          `Channel Talk channel "Simulated channel" (id 1), from the log's header (written `,
        );
        expect(summary.header).toEqual(header);
        expect(pgCsv.stdout.split('\n').length).toBe(result.processed + 2); // header, rows, final line feed
        expect(pgCsv.stdout).toBe(fileCsv.stdout);

        // Without the store in its environment, the report looks for a file and says where else to look.
        expect(withoutStore.code).toBe(1);
        expect(withoutStore.stderr).toMatch(
          /^webhook-backfill: cannot read the audit log .*: no such file .*BACKFILL_AUDIT_STORE=postgres/,
        );
        expect(withoutStore.stderr.trim().split('\n')).toHaveLength(1);
        // The worker's validation: postgres without a database is a configuration error, exit 2.
        expect(badEnv.code).toBe(2);
        expect(badEnv.stderr).toBe(
          'webhook-backfill: invalid configuration: BACKFILL_AUDIT_STORE is "postgres" but BACKFILL_DATABASE_URL is not set\n',
        );
      });
    },
  );

  it(
    'report: no such key, no audit table, no such database: one line, exit 1, no password',
    { timeout: 60_000 },
    async () => {
      const password = 'pw-9d1e-secret';
      // crm_app has the audit table (made by a store, as a worker would at start); a fresh database has none.
      const pool = new Pool({ connectionString: dbUrl, max: 1 });
      await createPostgresAuditStore(pool).ready();
      await pool.end();
      const emptyDb = await pg.createDatabase('no_audit_table');
      const env = (url: string) => ({ BACKFILL_AUDIT_STORE: 'postgres', BACKFILL_DATABASE_URL: url });
      const [unknownKey, noTable, noDb] = await Promise.all([
        cliFromSource(['report', '--audit', '/no/such/run/audit.jsonl'], env(dbUrl)),
        cliFromSource(['report', '--audit', '/no/such/run/audit.jsonl'], env(emptyDb)),
        cliFromSource(
          ['report', '--audit', '/x/audit.jsonl'],
          env(`postgres://postgres:${password}@127.0.0.1:${pg.port}/no_such_db`),
        ),
      ]);
      expect(unknownKey.stderr).toMatch(
        /^webhook-backfill: cannot read the audit log \/no\/such\/run\/audit\.jsonl: no records under this key in the table "backfill_audit"/,
      );
      expect(noTable.stderr).toMatch(
        /^webhook-backfill: cannot read the audit log \/no\/such\/run\/audit\.jsonl: there is no audit table "backfill_audit" in the database of BACKFILL_DATABASE_URL \(SQLSTATE 42P01\)/,
      );
      expect(noDb.stderr).toMatch(
        /^webhook-backfill: cannot read the audit log \/x\/audit\.jsonl: the database named in BACKFILL_DATABASE_URL does not exist \(SQLSTATE 3D000\)/,
      );
      for (const r of [unknownKey, noTable, noDb]) {
        expect(r.code).toBe(1);
        expect(r.stdout).toBe('');
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).not.toContain(password);
      }
      // Reading created nothing: a report needs no right to create tables.
      expect(await pg.query(`SELECT to_regclass('backfill_audit') IS NULL AS absent`, [], 'no_audit_table')).toEqual([
        { absent: true },
      ]);
    },
  );
});

// ---------------------------------------------------------------------------------------------------
// One contract, two stores

interface StoreUnderTest {
  /** A fresh log's name: a file path, or a key in the table. */
  newLog(): Promise<string>;
  store(): AuditStore;
  /** What the log holds, in recording order. */
  records(log: string): Promise<AuditEntry[]>;
}

let fileDir: string;
beforeAll(async () => {
  fileDir = await mkdtemp(path.join(os.tmpdir(), 'audit-contract-'));
});
afterAll(async () => {
  await rm(fileDir, { recursive: true, force: true });
});

let logs = 0;
const STORES: [name: string, make: () => StoreUnderTest][] = [
  [
    'file',
    () => ({
      newLog: async () => path.join(fileDir, `log-${++logs}`, 'audit.jsonl'),
      store: () => createFileAuditStore(),
      records: async (log) => (existsSync(log) ? readAudit(log) : []),
    }),
  ],
  [
    'postgres',
    () => ({
      newLog: async () => `contract-log-${++logs}`,
      store: () => createPostgresAuditStore(pg.pool('crm_app'), { table: 'contract.audit' }),
      records: async (log) =>
        (
          (await pg.query(
            'SELECT entry FROM contract.audit WHERE key = $1 ORDER BY recorded_at, line',
            [log],
            'crm_app',
          )) as { entry: AuditEntry }[]
        ).map((r) => r.entry),
    }),
  ],
];

const entry = (line: number, outcome: OutcomeKind, extra: Partial<AuditEntry> = {}): AuditEntry => ({
  ts: '2026-01-01T00:00:00.000Z',
  backfill: 'b',
  runLabel: 'b',
  line,
  memberId: `m-${line}`,
  outcome,
  dryRun: false,
  ...extra,
});

describe.each(STORES)('audit store contract: %s', (name, make) => {
  let t: StoreUnderTest;
  beforeAll(async () => {
    if (name === 'postgres') await pg.query('CREATE SCHEMA IF NOT EXISTS contract', [], 'crm_app');
    t = make();
  });

  it('records each line once; later entries for a recorded line are dropped (first wins, within one append too)', async () => {
    const log = await t.newLog();
    const store = t.store();
    await store.append(log, [entry(2, 'upsert', { fields: ['email', 'mobileNumber'] }), entry(3, 'unchanged')]);
    await store.append(log, [entry(2, 'failed'), entry(4, 'delete', { reason: 'not-found' }), entry(4, 'failed')]);
    expect((await t.records(log)).map((e) => [e.line, e.outcome])).toEqual([
      [2, 'upsert'],
      [3, 'unchanged'],
      [4, 'delete'],
    ]);
    expect(Object.fromEntries(await store.lookup(log, [2, 3, 4, 5]))).toEqual({
      // Fields come back in their canonical order, whatever order the entry listed them in.
      2: { outcome: 'upsert', deferred: false, fields: ['mobileNumber', 'email'] },
      3: { outcome: 'unchanged', deferred: false },
      4: { outcome: 'delete', deferred: false },
    });
  });

  it('keeps the whole entry as recorded', async () => {
    const log = await t.newLog();
    const full = entry(9, 'upsert', {
      fields: ['unsubscribeTexting'],
      event: 'upsert',
      delivered: true,
      webhookId: 'msg_1',
      status: 202,
      attempts: 2,
      updatedAt: 1_730_400_000_000,
    });
    await t.store().append(log, [full]);
    expect(await t.records(log)).toEqual([full]);
  });

  it('flags lines recorded by a deferred replay', async () => {
    const log = await t.newLog();
    const store = t.store();
    await store.append(log, [entry(7, 'delete', { deferred: true }), entry(8, 'failed', { deferred: false })]);
    expect(Object.fromEntries(await store.lookup(log, [7, 8]))).toEqual({
      7: { outcome: 'delete', deferred: true },
      8: { outcome: 'failed', deferred: false },
    });
  });

  it('another store on the same log (another worker) sees what this one recorded, and cannot overwrite it', async () => {
    const log = await t.newLog();
    const a = t.store();
    const b = t.store();
    await a.append(log, [entry(10, 'upsert')]);
    expect((await b.lookup(log, [10])).get(10)?.outcome).toBe('upsert');
    await b.append(log, [entry(10, 'failed'), entry(11, 'skipped')]);
    expect((await a.lookup(log, [11])).get(11)?.outcome).toBe('skipped');
    expect((await a.lookup(log, [10])).get(10)?.outcome).toBe('upsert');
    expect(await t.records(log)).toHaveLength(2);
  });

  it('concurrent appends lose nothing, and racing appends of one line record it once', async () => {
    const log = await t.newLog();
    const store = t.store();
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => store.append(log, [entry(i + 2, i % 3 ? 'upsert' : 'unchanged')])),
    );
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.append(log, [entry(1000, i % 2 ? 'upsert' : 'failed')])),
    );
    const written = await t.records(log);
    expect(written).toHaveLength(301);
    expect(new Set(written.map((e) => e.line)).size).toBe(301);
    expect((await store.lookup(log, [1000])).get(1000)?.outcome).toBe(written.find((e) => e.line === 1000)?.outcome);
  });

  it('two stores (two workers) racing on the same lines agree on one recorded outcome per line', async () => {
    const log = await t.newLog();
    const a = t.store();
    const b = t.store();
    const lines = Array.from({ length: 50 }, (_, i) => i + 1);
    await Promise.all(
      lines.flatMap((line) => [a.append(log, [entry(line, 'upsert')]), b.append(log, [entry(line, 'failed')])]),
    );
    const [fromA, fromB] = [await a.lookup(log, lines), await b.lookup(log, lines)];
    expect(fromA.size).toBe(50);
    expect(Object.fromEntries(fromB)).toEqual(Object.fromEntries(fromA));
  });

  it("entries() streams each line's first record whole, and a log never written is AuditLogNotFoundError", async () => {
    const log = await t.newLog();
    const store = t.store();
    const full = entry(9, 'upsert', {
      fields: ['email'],
      event: 'upsert',
      delivered: true,
      webhookId: 'msg_9',
      status: 202,
      attempts: 1,
      updatedAt: 1_730_400_000_000,
    });
    await store.append(log, [full, entry(4, 'failed', { stage: 'fetch', reason: 'HTTP 503 after 5 attempts' })]);
    await store.append(log, [entry(9, 'delete'), entry(2, 'skipped', { reason: 'not valid JSON' })]);
    const stats = newReadStats();
    const read: AuditEntry[] = [];
    for await (const e of store.entries(log, stats)) read.push(e);
    // The file in file order, the table in line order: the same records either way.
    const byLine = [...read].sort((a, b) => a.line - b.line);
    expect(byLine).toEqual([
      entry(2, 'skipped', { reason: 'not valid JSON' }),
      entry(4, 'failed', { stage: 'fetch', reason: 'HTTP 503 after 5 attempts' }),
      full,
    ]);
    expect(read.map((e) => e.line)).toEqual(name === 'file' ? [9, 4, 2] : [2, 4, 9]);
    expect(stats).toEqual({ entries: 3, repeated: 0, unreadable: 0 });
    // Keys in the order of an AuditEntry, as the file has them.
    expect(JSON.stringify(read.find((e) => e.line === 9))).toBe(JSON.stringify(full));

    const never = await t.newLog();
    const drain = async () => {
      for await (const _ of store.entries(never)) void _;
    };
    await expect(drain()).rejects.toBeInstanceOf(AuditLogNotFoundError);
    await expect(drain()).rejects.toThrow(`cannot read the audit log ${never}: `);
  });

  it('logs are separate, and lookups of nothing find nothing', async () => {
    const [one, two] = [await t.newLog(), await t.newLog()];
    const store = t.store();
    await store.append(one, [entry(5, 'upsert')]);
    expect((await store.lookup(two, [5])).size).toBe(0);
    expect((await store.lookup(one, [])).size).toBe(0);
    expect((await store.lookup(await t.newLog(), [1, 2, 3])).size).toBe(0);
    await store.append(two, []);
    expect(await t.records(two)).toEqual([]);
  });
});

describe('postgres audit store', () => {
  it('creates its table with the documented columns when missing, also when two workers start at once', async () => {
    const pool = pg.pool('crm_app');
    const stores = [
      createPostgresAuditStore(pool, { table: 'fresh_audit' }),
      createPostgresAuditStore(pool, { table: 'fresh_audit' }),
    ];
    await Promise.all(stores.map((s) => s.ready()));
    const columns = await pg.query(
      `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = 'fresh_audit' ORDER BY ordinal_position`,
      [],
      'crm_app',
    );
    expect(columns.map((c) => [c.column_name, c.data_type])).toEqual([
      ['key', 'text'],
      ['line', 'integer'],
      ['entry', 'jsonb'],
      ['outcome', 'text'],
      ['deferred', 'boolean'],
      ['recorded_at', 'timestamp with time zone'],
    ]);
    const primaryKey = await pg.query(
      `SELECT a.attname AS name FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = 'fresh_audit'::regclass AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)`,
      [],
      'crm_app',
    );
    expect(primaryKey.map((r) => r.name)).toEqual(['key', 'line']);
  });

  it('holds exactly one row per line even when two workers race to record it', async () => {
    const pool = pg.pool('crm_app');
    const [a, b] = [
      createPostgresAuditStore(pool, { table: 'race_audit' }),
      createPostgresAuditStore(pg.pool('crm_app'), { table: 'race_audit' }),
    ];
    const lines = Array.from({ length: 100 }, (_, i) => i + 1);
    await Promise.all(
      lines.flatMap((line) => [a.append('race', [entry(line, 'upsert')]), b.append('race', [entry(line, 'failed')])]),
    );
    const rows = await pg.query(
      'SELECT line, count(*)::int AS n FROM race_audit WHERE key = $1 GROUP BY line',
      ['race'],
      'crm_app',
    );
    expect(rows).toHaveLength(100);
    expect(rows.every((r) => r.n === 1)).toBe(true);
  });

  it('entries() reads a log in keyset pages of pageSize rows, in line order, one page at a time', async () => {
    // Its own small pool, ended here: the cluster's connections are few and the other tests' pools stay open.
    const pool = new Pool({ connectionString: dbUrl, max: 2 });
    const queries: { text: string; values: unknown[] }[] = [];
    // The real pool, its queries noted on the way.
    const watched: AuditQueryable = {
      query: ((text: string, values: unknown[]) => {
        queries.push({ text, values });
        return pool.query(text, values);
      }) as AuditQueryable['query'],
    };
    const store = createPostgresAuditStore(watched, { table: 'paged_audit', pageSize: 7 });
    const lines = Array.from({ length: 50 }, (_, i) => 1000 - i * 13); // appended out of line order
    for (let i = 0; i < lines.length; i += 10)
      await store.append(
        'paged',
        lines.slice(i, i + 10).map((line) => entry(line, line % 2 ? 'upsert' : 'failed')),
      );
    await store.append('other-log', [entry(1, 'upsert')]);
    queries.length = 0;

    const read: number[] = [];
    const pagesSeen: number[] = [];
    for await (const e of store.entries('paged')) {
      read.push(e.line);
      pagesSeen.push(queries.length); // queries issued so far when this record arrives
    }
    expect(read).toEqual([...lines].sort((a, b) => a - b));
    // The header's query first, then ceil(50 / 7) = 8 pages, the last one short, so no extra query; each keyed on
    // the last line seen; after the records, the log's waits (src/audit/run-wait.ts).
    expect(queries.shift()).toEqual({
      text: `SELECT header FROM "paged_audit_header" WHERE key = $1`,
      values: ['paged'],
    });
    expect(queries.pop()).toMatchObject({ text: expect.stringMatching(/ FROM "paged_audit_waits" WHERE key = \$1 /) });
    expect(queries).toHaveLength(8);
    expect(queries.map((q) => q.values)).toEqual(
      [0, ...read.filter((_, i) => i % 7 === 6)].map((after) => ['paged', after, 7]),
    );
    expect(queries.every((q) => /WHERE key = \$1 AND line > \$2 ORDER BY line LIMIT \$3/.test(q.text))).toBe(true);
    // The k-th page is fetched only once the records before it were taken.
    expect(pagesSeen).toEqual(read.map((_, i) => Math.floor(i / 7) + 2));
    expect(() => createPostgresAuditStore(pool, { pageSize: 0 })).toThrow(/page size/);
    await pool.end();
  });

  it('refuses a table name that is not a plain SQL name', () => {
    expect(() => createPostgresAuditStore(pg.pool('crm_app'), { table: 'audit; DROP TABLE crm.customers' })).toThrow(
      /plain SQL name/,
    );
  });
});
