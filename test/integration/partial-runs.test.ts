import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DevServer } from '../../dev/temporal-cli';
import type { BackfillResult } from '../../workflows/definitions';
import { loadExamples, type Examples } from '../support/examples';
import { readAudit, runBackfill, startStack, startTestServer } from '../support/stack';

// Runs over part of an earlier run's members: retrying the failed ones, and executing a dry run's plan.
let server: DevServer;
let examples: Examples;

beforeAll(async () => {
  [server, examples] = await Promise.all([startTestServer(), loadExamples()]);
});
afterAll(async () => {
  await server?.stop();
});

describe('partial runs', () => {
  it('retries exactly the failed members of an earlier run, from its audit log', async () => {
    const stack = await startStack({
      server,
      users: examples.users,
      channelFaults: examples.faults.channel,
      receiverBehaviours: examples.faults.receiver,
    });
    try {
      const first = await runBackfill(stack, 'partial-first', {});
      expect(first.failed).toBe(examples.expected.counts.failed);
      const failed = (await readAudit(first.auditPath)).filter((e) => e.outcome === 'failed').map((e) => e.memberId);

      // The faults are over: the API answers and the receiver accepts.
      stack.simulator.setFaults({});
      for (const member of Object.keys(examples.faults.receiver)) stack.receiver.setBehaviour(member, undefined);
      const before = stack.simulator.stats().requests;

      const retry = await runBackfill(stack, 'partial-retry', {
        only: { auditPath: first.auditPath, outcomes: ['failed'] },
      });
      expect(retry).toMatchObject({ processed: failed.length, total: failed.length, failed: 0, skipped: 0 });
      expect(stack.simulator.stats().requests - before).toBe(failed.length);
      const audit = await readAudit(retry.auditPath);
      expect(audit.map((e) => e.memberId).sort()).toEqual([...failed].sort());
      for (const entry of audit) {
        const want = examples.expected.outcomes.find((o) => o.line === entry.line)!;
        // A failed replay's decision is known from the dry run; a failed lookup's never was.
        if (want.dryRunOutcome !== 'failed') expect(entry.outcome, `line ${entry.line}`).toBe(want.dryRunOutcome);
        else expect(['upsert', 'delete', 'unchanged']).toContain(entry.outcome);
      }
    } finally {
      await stack.close();
    }
  });

  it('executes a dry run plan: only planned members, each re-checked; a changed one is reported, not replayed', async () => {
    const stack = await startStack({
      server,
      users: examples.users,
      channelFaults: examples.faults.channel,
      receiverBehaviours: {},
    });
    try {
      const plan = await runBackfill(stack, 'plan-dry', { dryRun: true });
      const planned = (await readAudit(plan.auditPath)).filter((e) => e.outcome === 'upsert' || e.outcome === 'delete');
      expect(planned.length).toBe(examples.expected.dryRunCounts.upserts + examples.expected.dryRunCounts.deletes);
      expect(stack.receiver.deliveries()).toHaveLength(0);

      // Since the plan, one planned upsert's user was deleted in Channel Talk.
      const drifted = planned.find((e) => e.outcome === 'upsert')!;
      stack.simulator.setFaults({ [drifted.memberId!]: { status: 404 } });

      const done = await runBackfill(stack, 'plan-execute', { fromPlan: { auditPath: plan.auditPath } });
      expect(done).toMatchObject({ processed: planned.length, skipped: 1, failed: 0, unchanged: 0 });
      expect(done.upserts + done.deletes).toBe(planned.length - 1);
      const audit = await readAudit(done.auditPath);
      const report = audit.find((e) => e.memberId === drifted.memberId)!;
      expect(report.outcome).toBe('skipped');
      expect(report.reason).toBe(
        `changed since the plan: planned upsert [${drifted.fields!.join(', ')}], now delete (not-found)`,
      );
      const delivered = stack.receiver.accepted();
      expect(delivered).toHaveLength(planned.length - 1);
      expect(delivered.some((d) => d.memberId === drifted.memberId)).toBe(false);
      const plannedIds = new Set(planned.map((e) => e.memberId));
      expect(delivered.every((d) => plannedIds.has(d.memberId!))).toBe(true);
    } finally {
      await stack.close();
    }
  });

  it('refuses a plan that is not a dry run audit, before any lookup', async () => {
    const stack = await startStack({ server, users: examples.users });
    try {
      const real = await runBackfill(stack, 'plan-real', {});
      const requests = stack.simulator.stats().requests;
      const err = await runBackfill(stack, 'plan-bad', { fromPlan: { auditPath: real.auditPath } }).catch(
        (e: unknown) => e as Error,
      );
      expect(String((err as { cause?: Error }).cause?.message)).toMatch(/not recorded by a dry run/);
      expect(stack.simulator.stats().requests).toBe(requests);
    } finally {
      await stack.close();
    }
  });

  it("a later backfill sharing the audit log counts the earlier one's deferred replays, and replays nothing again", async () => {
    // Four 503s outlast the batch's three quick attempts: these members are deferred to their own replay activity.
    const deferredIds = ['m-0004', 'm-0006'];
    const receiverBehaviours = {
      ...examples.faults.receiver,
      ...Object.fromEntries(deferredIds.map((id) => [id, { status: 503, times: 4 }])),
    };
    const stack = await startStack({
      server,
      users: examples.users,
      channelFaults: examples.faults.channel,
      receiverBehaviours,
    });
    try {
      const first = await runBackfill(stack, 'shared-audit-first', {});
      const audit = await readAudit(first.auditPath);
      // Deletes the delete guard held back until 100 decisions were in are sent too (some refused by the receiver's
      // faults): by their batch when its own view of the guard had cleared by its end, else by their own replay.
      const held = audit.filter((e) => e.heldByDeleteGuard === true);
      expect(held.length).toBeGreaterThan(0);
      expect(held.every((e) => e.event === 'delete' && e.stage !== 'fetch')).toBe(true);
      const deferred = audit.filter((e) => e.deferred === true && e.heldByDeleteGuard !== true).map((e) => e.memberId);
      // Others that the receiver refused a few times may be deferred too: three different members refused in a row
      // look like an endpoint outage (src/webhook/receiver-health.ts), and a batch then stops its quick retries.
      expect(deferred).toEqual(expect.arrayContaining(deferredIds));
      for (const id of deferred) expect(Object.keys(receiverBehaviours)).toContain(id);
      expect(first.processed).toBe(examples.expected.counts.rows);
      const deliveries = stack.receiver.deliveries().length;

      const second = await runBackfill(stack, 'shared-audit-second', { auditPath: first.auditPath });
      // Every line was recorded by the first backfill: nothing is looked up or sent again, and every line,
      // the two deferred ones included, is counted once with its recorded outcome.
      expect(stack.receiver.deliveries().length).toBe(deliveries);
      const counts = (r: BackfillResult) => ({
        processed: r.processed,
        upserts: r.upserts,
        deletes: r.deletes,
        unchanged: r.unchanged,
        failed: r.failed,
        skipped: r.skipped,
      });
      expect(counts(second)).toEqual(counts(first));
    } finally {
      await stack.close();
    }
  });
});
