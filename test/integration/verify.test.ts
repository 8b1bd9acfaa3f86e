import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoggedEntry } from '../../src/audit/audit-entry';
import type { DevServer } from '../../dev/temporal-cli';
import type { ComparedField } from '../../src/domain/types';
import type { Verdict } from '../../src/domain/verdicts';
import { applyToTable, CustomerRows, customerWrites, type Drops } from '../../dev/customer-database';
import { startTestPostgres } from '../support/postgres';
import { EXAMPLE_CSV, loadExamples, type Examples } from '../support/examples';
import { runProcess } from '../support/child-process';
import {
  readAudit,
  readAuditHeader,
  runBackfill,
  startStack,
  startTestServer,
  waitFor,
  type Stack,
} from '../support/stack';
import { progressQuery, type BackfillResult } from '../../workflows/definitions';

// "Prove the repair": a repair whose receiver accepted every replay but whose customer logic applied only some of
// them, then a verify run over a fresh export of the customer's data. It must find exactly what was dropped.
let server: DevServer;
let examples: Examples;

beforeAll(async () => {
  [server, examples] = await Promise.all([startTestServer(), loadExamples()]);
});
afterAll(async () => {
  await server?.stop();
});

const BIN = path.resolve(__dirname, '../../bin/webhook-backfill.js');
/** `node bin/webhook-backfill.js ...args` as a user runs it, with only the Temporal variables of the stack. */
const cli = (stack: Stack, args: string[]) =>
  runProcess(process.execPath, [BIN, ...args], {
    TEMPORAL_ADDRESS: server.address,
    BACKFILL_TASK_QUEUE: stack.env.BACKFILL_TASK_QUEUE!,
  });

const delivered = (audit: LoggedEntry[]) =>
  audit.filter((e) => e.delivered === true && (e.outcome === 'upsert' || e.outcome === 'delete'));

/** A repair of the examples, its delivered replays, and the customer's rows with every accepted replay applied. */
async function repairAllApplied(stack: Stack, workflowId: string) {
  const repair = await runBackfill(stack, workflowId, {});
  const replayed = delivered(await readAudit(repair.auditPath));
  const db = await CustomerRows.fromCsv(EXAMPLE_CSV);
  db.apply(customerWrites(stack.receiver.accepted(), {}));
  return { repair, replayed, db };
}

/**
 * A verify run over an export that may hold some members on a row it cannot attribute: those (`unknown`) are
 * `failed` with `reason` in theirs, every other replayed member repaired, and the result counts them so.
 */
function expectUnknownFailed(
  verify: BackfillResult,
  audit: LoggedEntry[],
  o: { replayed: LoggedEntry[]; unknown: LoggedEntry[]; reason: string },
): void {
  for (const e of audit) {
    const unknown = o.unknown.some((n) => n.memberId === e.memberId);
    expect(e.verdict, e.memberId).toBe(unknown ? 'failed' : 'repaired');
    if (unknown) expect(e.reason).toContain(o.reason);
  }
  expect(verify).toMatchObject({
    total: o.replayed.length,
    processed: o.replayed.length,
    verify: { repaired: o.replayed.length - o.unknown.length, failed: o.unknown.length },
  });
}

describe('verify after a repair', () => {
  it('finds exactly the dropped replays, per field; a later Channel Talk change is "changed since"; sends nothing', async () => {
    const stack = await startStack({ server, users: examples.users, env: { CHANNEL_MAX_ATTEMPTS: '2' } });
    try {
      const repair = await runBackfill(stack, 'verify-repair', {});
      const replayed = delivered(await readAudit(repair.auditPath));
      const upserts = replayed.filter((e) => e.outcome === 'upsert');
      const deletes = replayed.filter((e) => e.outcome === 'delete');
      expect(upserts.length).toBeGreaterThan(8);
      expect(deletes.length).toBeGreaterThan(3);

      // The customer's logic drops three upserts whole, one field of two others, and two deletes.
      const wholeUpserts = upserts.slice(0, 3);
      const partial = upserts.filter((e) => e.fields!.length >= 2).slice(-2);
      const droppedDeletes = deletes.slice(0, 2);
      const drops: Drops = {
        members: new Set([...wholeUpserts, ...droppedDeletes].map((e) => e.memberId!)),
        fields: Object.fromEntries(partial.map((e) => [e.memberId!, [e.fields![0]!]])),
      };
      const untouched = upserts.filter((e) => !drops.members!.has(e.memberId!) && !drops.fields![e.memberId!]);
      // After the repair, one user's email changes on Channel Talk's side; another one's lookups start failing.
      const [changed, failing] = untouched;
      const changedUser = examples.users.find((u) => u.memberId === changed!.memberId)!;
      changedUser.email = 'changed.after.the.repair@example.org';
      changedUser.updatedAt = Date.now();
      stack.simulator.setFaults({ [failing!.memberId!]: { status: 500 } });

      const db = await CustomerRows.fromCsv(EXAMPLE_CSV);
      db.apply(customerWrites(stack.receiver.accepted(), drops));
      const exported = path.join(stack.dataDir, 'export-after-repair.csv');
      await db.exportCsv(exported);

      const sent = stack.receiver.deliveries().length;
      const requests = stack.simulator.stats().requests;
      const verify = await runBackfill(stack, 'verify-check', {
        source: { type: 'csv', path: exported },
        verifyAfter: { auditPath: repair.auditPath },
        // 128 members to verify, more than a round of 4 x 20: the rest of the export (and the members it no longer
        // holds) is read while the first batches run (issue 26).
        batchSize: 20,
      });
      // A verify run never POSTs: the receiver got nothing.
      expect(stack.receiver.deliveries().length).toBe(sent);

      const want = new Map<string, [Verdict, ComparedField[] | undefined]>(
        replayed.map((e) => [e.memberId!, ['repaired', undefined]]),
      );
      for (const e of wholeUpserts) want.set(e.memberId!, ['still differs', e.fields]);
      for (const e of partial) want.set(e.memberId!, ['still differs', [e.fields![0]!]]);
      for (const e of droppedDeletes) want.set(e.memberId!, ['still present', undefined]);
      want.set(changed!.memberId!, ['changed since', ['email']]);
      want.set(failing!.memberId!, ['failed', undefined]);

      const audit = await readAudit(verify.auditPath);
      // Exactly one verdict per replayed member, on the repair's line.
      expect(audit.map((e) => [e.line, e.memberId]).sort()).toEqual(replayed.map((e) => [e.line, e.memberId]).sort());
      const got = new Map(audit.map((e) => [e.memberId!, [e.verdict, e.fields] as const]));
      expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want));
      for (const e of audit) expect(e.dryRun, `line ${e.line}`).toBe(true);
      // Every replayed member was looked up again, at the same budget (the failing one as often as it was tried).
      const attempts = audit.reduce((n, e) => n + (e.attempts ?? 0), 0);
      expect(stack.simulator.stats().requests - requests).toBe(attempts);
      expect(attempts).toBe(replayed.length + 1); // CHANNEL_MAX_ATTEMPTS=2 for the failing one

      const count = (v: Verdict) => [...want.values()].filter(([w]) => w === v).length;
      expect(verify).toMatchObject({
        dryRun: true,
        total: replayed.length,
        processed: replayed.length,
        verify: {
          repaired: count('repaired'),
          'still differs': wholeUpserts.length + partial.length,
          'still present': droppedDeletes.length,
          'changed since': 1,
          failed: 1,
        },
      });
      expect(count('repaired')).toBe(replayed.length - wholeUpserts.length - partial.length - 4);

      // The verify log names fields, never values.
      const text = JSON.stringify(audit);
      for (const row of db.rows.values())
        for (const value of [row.email, row.mobileNumber]) if (value) expect(text).not.toContain(value);
      expect(text).not.toContain('changed.after.the.repair');
    } finally {
      await stack.close();
    }
  });

  it('from the CLI: verify --after the repair, paused and resumed, one verdict each; report; --from-plan fixes the rest', async () => {
    const stack = await startStack({ server, users: examples.users });
    try {
      const repair = await runBackfill(stack, 'verify-cli-repair', {});
      const replayed = delivered(await readAudit(repair.auditPath));
      const droppedUpserts = replayed.filter((e) => e.outcome === 'upsert').slice(-2);
      const droppedDelete = replayed.filter((e) => e.outcome === 'delete').slice(-1);
      const dropped = [...droppedUpserts, ...droppedDelete];
      const db = await CustomerRows.fromCsv(EXAMPLE_CSV);
      db.apply(customerWrites(stack.receiver.accepted(), { members: new Set(dropped.map((e) => e.memberId!)) }));
      const exported = path.join(stack.dataDir, 'export-now.csv');
      await db.exportCsv(exported);
      const sent = stack.receiver.deliveries().length;

      // 20 lookups/s: the verify run of about 120 members takes seconds, long enough to pause it mid-way.
      const started = await cli(stack, [
        'verify',
        ...['--after', 'verify-cli-repair', '--source', exported, '--workflow-id', 'verify-cli-check'],
        ...['--rate', '20', '--batch-size', '10'],
      ]);
      expect(started.code, started.stderr).toBe(0);
      expect(started.stdout).toContain('verify-cli-check');
      const handle = stack.client.workflow.getHandle('verify-cli-check');
      await waitFor('the verify run to get going', async () => (await handle.query(progressQuery)).processed >= 10);
      const paused = await cli(stack, ['pause', '--workflow-id', 'verify-cli-check', '--reason', 'lunch']);
      expect(paused.code, paused.stderr).toBe(0);
      const held = await waitFor('the verify run to be paused and settled', async () => {
        const a = await handle.query(progressQuery);
        await new Promise((r) => setTimeout(r, 1_500));
        const b = await handle.query(progressQuery);
        return a.paused && b.paused && a.processed === b.processed ? b : undefined;
      });
      expect(held.pauseReason).toBe('lunch');
      expect(held.processed).toBeLessThan(replayed.length);
      const resumed = await cli(stack, ['resume', '--workflow-id', 'verify-cli-check']);
      expect(resumed.code, resumed.stderr).toBe(0);
      const verify = (await handle.result()) as BackfillResult;

      // Exactly one verdict per delivered replay, through the pause; nothing POSTed.
      const audit = await readAudit(verify.auditPath);
      expect(audit.map((e) => e.line).sort((a, b) => a - b)).toEqual(replayed.map((e) => e.line).sort((a, b) => a - b));
      const want = Object.fromEntries(replayed.map((e) => [e.memberId!, 'repaired']));
      for (const e of droppedUpserts) want[e.memberId!] = 'still differs';
      for (const e of droppedDelete) want[e.memberId!] = 'still present';
      expect(Object.fromEntries(audit.map((e) => [e.memberId!, e.verdict]))).toEqual(want);
      expect(verify.processed).toBe(replayed.length);
      expect(stack.receiver.deliveries().length).toBe(sent);
      // The Web UI's current details show the verdicts, not upserts and deletes.
      const meta = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
      expect(meta.currentDetails).toContain(
        `verify: repaired ${replayed.length - 3} · still differs 2 · still present 1 · changed since 0 · failed 0`,
      );
      expect(meta.currentDetails).not.toContain('upserts ');
      // So does `status`.
      const status = await cli(stack, ['status', '--workflow-id', 'verify-cli-check']);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toContain(
        `repaired ${replayed.length - 3} still differs 2 still present 1 changed since 0 failed 0`,
      );
      expect(status.stdout).not.toContain('upserts ');

      // The report answers in one screen: the counts, per field, and the three lines to look at.
      const report = await cli(stack, ['report', '--workflow-id', 'verify-cli-check']);
      expect(report.code, report.stderr).toBe(0);
      expect(report.stdout).toMatch(new RegExp(`members checked +${replayed.length}\n`));
      expect(report.stdout).toMatch(new RegExp(`repaired +${replayed.length - 3}\n`));
      expect(report.stdout).toMatch(/still differs +2\n/);
      expect(report.stdout).toMatch(/still present +1\n/);
      expect(report.stdout).toContain('lines to look at (3)');
      for (const e of dropped) expect(report.stdout).toContain(`line ${e.line}  ${e.memberId}  `);
      const csv = await cli(stack, ['report', '--workflow-id', 'verify-cli-check', '--format', 'csv']);
      expect(csv.code, csv.stderr).toBe(0);
      const rows = csv.stdout.trimEnd().split('\n').slice(1);
      expect(rows.map((r) => r.split(',')[1]).sort()).toEqual(dropped.map((e) => e.memberId!).sort());

      // The verify log is a plan: --from-plan replays exactly what is still wrong.
      const fix = await cli(stack, [
        'start',
        ...['--source', exported, '--from-plan', 'verify-cli-check', '--workflow-id', 'verify-cli-fix', '--wait'],
      ]);
      expect(fix.code, fix.stderr).toBe(0);
      const fixes = stack.receiver.deliveries().slice(sent);
      expect(fixes.map((d) => d.memberId).sort()).toEqual(dropped.map((e) => e.memberId!).sort());
      expect(fixes.every((d) => d.status >= 200 && d.status < 300)).toBe(true);
    } finally {
      await stack.close();
    }
  });

  it('an export whose last quoted field is never closed: one bad row naming its line, the run goes on', async () => {
    const stack = await startStack({ server, users: examples.users });
    try {
      // The customer applied every replay, but the export was cut inside its last row: a replayed member's email
      // opens a quote the file never closes.
      const { repair, replayed, db } = await repairAllApplied(stack, 'verify-unclosed-repair');
      const cut = replayed.find((e) => e.outcome === 'upsert' && db.rows.has(e.memberId!))!;
      db.rows.delete(cut.memberId!);
      const exported = path.join(stack.dataDir, 'export-cut.csv');
      await db.exportCsv(exported);
      // The physical line the cut row starts on (a quoted cell of the export may hold a line break).
      const cutLine = (await readFile(exported, 'utf8')).split('\n').length;
      await appendFile(exported, `${cut.memberId},,"someone@exam`);

      const handle = await stack.client.workflow.start('backfillWebhooks', {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId: 'verify-unclosed-check',
        // More members than a round of 4 x 20: the export's end is read by normaliseSource, beside the batches.
        args: [
          { source: { type: 'csv', path: exported }, verifyAfter: { auditPath: repair.auditPath }, batchSize: 20 },
        ],
      });
      const ended = await waitFor(
        'the verify run to end or pause',
        async () => {
          const p = await handle.query(progressQuery);
          return p.done || p.paused ? p : undefined;
        },
        120_000,
      );
      expect(ended.pauseReason ?? undefined).toBeUndefined();
      expect(ended.paused).toBe(false);
      const verify = (await handle.result()) as BackfillResult;

      // One verdict per replayed member: the cut one failed with its line and problem; the members the export
      // does not hold before its unreadable end may be in it, so they are not called repaired either.
      const audit = await readAudit(verify.auditPath);
      expect(audit.map((e) => e.line).sort((a, b) => a - b)).toEqual(replayed.map((e) => e.line).sort((a, b) => a - b));
      // The file is named once, in the verify log's header; each bad row names its line.
      expect((await readAuditHeader(verify.auditPath)).source).toEqual({ type: 'csv', path: exported });
      const unread = `the export's end is unreadable from line ${cutLine} on and may hold it (quoted field never closed`;
      const cutVerdict = audit.find((e) => e.memberId === cut.memberId)!;
      expect(cutVerdict).toMatchObject({ verdict: 'failed' });
      expect(cutVerdict.reason).toContain(unread);
      const notInExport = replayed.filter((e) => e.memberId === cut.memberId || !db.rows.has(e.memberId!));
      expect(notInExport.length).toBeGreaterThan(1);
      expectUnknownFailed(verify, audit, { replayed, unknown: notInExport, reason: unread });
    } finally {
      await stack.close();
    }
  });

  it('an export with an unreadable row in its middle: the members it does not hold are bad rows naming it', async () => {
    const stack = await startStack({ server, users: examples.users });
    try {
      // The customer applied every replay (its deleted members are not in the export), but one row in the middle of
      // the export is cut short: whose row it is cannot be known. Another has an empty memberId: no member's row.
      const { repair, replayed, db } = await repairAllApplied(stack, 'verify-unread-repair');
      const exported = path.join(stack.dataDir, 'export-unread-row.csv');
      await db.exportCsv(exported);
      const text = await readFile(exported, 'utf8');
      const middle = text.indexOf(`\n${[...db.rows.keys()][150]},`) + 1;
      expect(middle).toBeGreaterThan(1);
      const unreadLine = text.slice(0, middle).split('\n').length;
      const rows = `someone@example.com\n,,nobody@example.com,,\n`;
      await writeFile(exported, `${text.slice(0, middle)}${rows}${text.slice(middle)}`);

      // More members than a round of 4 x 20: the export's rest is read by normaliseSource, beside the batches.
      const verify = await runBackfill(stack, 'verify-unread-check', {
        verifyAfter: { auditPath: repair.auditPath },
        source: { type: 'csv', path: exported },
        batchSize: 20,
      });
      const audit = await readAudit(verify.auditPath);
      expect(audit.map((e) => e.line).sort((a, b) => a - b)).toEqual(replayed.map((e) => e.line).sort((a, b) => a - b));
      const notInExport = replayed.filter((e) => !db.rows.has(e.memberId!));
      expect(notInExport.length).toBeGreaterThan(1);
      expect(notInExport.every((e) => e.outcome === 'delete')).toBe(true);
      const reason = `the export's line ${unreadLine} (has 1 fields, the header has 5) cannot be read and may be its row`;
      // Without it, a replayed delete whose member the export does not hold would be called repaired.
      expectUnknownFailed(verify, audit, { replayed, unknown: notInExport, reason });
      for (const e of audit.filter((a) => a.verdict === 'failed'))
        expect(e.reason).toBe(`not among the export's readable rows: ${reason}`);
      // The report counts them failed and lists each with that line; the header names the file.
      expect((await readAuditHeader(verify.auditPath)).source).toEqual({ type: 'csv', path: exported });
      const report = await cli(stack, ['report', '--workflow-id', 'verify-unread-check']);
      expect(report.code, report.stderr).toBe(0);
      expect(report.stdout).toMatch(new RegExp(`failed +${notInExport.length}\n`));
      for (const e of notInExport) expect(report.stdout).toContain(`line ${e.line}  ${e.memberId}  failed  `);
      expect(report.stdout).toContain(reason);
    } finally {
      await stack.close();
    }
  });

  it('a verify over a PostgreSQL source reads the table as it is after the repair', async () => {
    const pg = await startTestPostgres();
    try {
      const dbUrl = await pg.createDatabase('customer_app');
      const query = (sql: string, values: unknown[] = []) => pg.query(sql, values, 'customer_app');
      await query(
        `CREATE TABLE members ("memberId" text PRIMARY KEY, "mobileNumber" text, email text, "unsubscribeEmail" boolean, "unsubscribeTexting" boolean)`,
      );
      const db = await CustomerRows.fromCsv(EXAMPLE_CSV);
      for (const r of db.rows.values())
        await query('INSERT INTO members VALUES ($1, $2, $3, $4, $5)', [
          r.memberId,
          r.mobileNumber,
          r.email,
          r.unsubscribeEmail,
          r.unsubscribeTexting,
        ]);
      const stack = await startStack({ server, users: examples.users, env: { BACKFILL_DATABASE_URL: dbUrl } });
      try {
        const source = { type: 'postgres', table: 'members' } as const;
        const repair = await runBackfill(stack, 'verify-pg-repair', { source });
        const replayed = delivered(await readAudit(repair.auditPath));
        const dropped = [replayed.find((e) => e.outcome === 'upsert')!, replayed.find((e) => e.outcome === 'delete')!];
        // The customer's logic writes to the table itself (UPDATE/DELETE), dropping one upsert and one delete.
        const writes = customerWrites(stack.receiver.accepted(), { members: new Set(dropped.map((e) => e.memberId!)) });
        await applyToTable(query, 'members', writes);
        const sent = stack.receiver.deliveries().length;

        const verify = await runBackfill(stack, 'verify-pg-check', {
          source,
          verifyAfter: { auditPath: repair.auditPath },
        });
        expect(stack.receiver.deliveries().length).toBe(sent);
        const audit = await readAudit(verify.auditPath);
        const got = Object.fromEntries(audit.map((e) => [e.memberId!, e.verdict]));
        const want = Object.fromEntries(replayed.map((e) => [e.memberId!, 'repaired']));
        want[dropped[0]!.memberId!] = 'still differs';
        want[dropped[1]!.memberId!] = 'still present';
        expect(got).toEqual(want);
        expect(audit.find((e) => e.memberId === dropped[0]!.memberId)!.fields).toEqual(dropped[0]!.fields);
        expect(verify.verify).toEqual({
          repaired: replayed.length - 2,
          'still differs': 1,
          'still present': 1,
          'changed since': 0,
          failed: 0,
        });
      } finally {
        await stack.close();
      }
    } finally {
      await pg.stop();
    }
  });
});
