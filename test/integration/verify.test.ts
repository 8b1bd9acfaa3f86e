import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/audit/audit-entry';
import type { DevServer } from '../../dev/temporal-cli';
import type { ComparedField } from '../../src/types';
import type { Verdict } from '../../workflows/verdicts';
import { applyToTable, CustomerRows, customerWrites, type Drops } from '../support/customer-database';
import { startTestPostgres } from '../support/postgres';
import { EXAMPLE_CSV, loadExamples, type Examples } from '../support/examples';
import { readAudit, runBackfill, startStack, startTestServer } from '../support/stack';

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

const delivered = (audit: AuditEntry[]) =>
  audit.filter((e) => e.delivered === true && (e.outcome === 'upsert' || e.outcome === 'delete'));

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
