import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UserChange } from '../../dev/simulator/channel-simulator';
import type { Delivery } from '../../dev/simulator/webhook-receiver';
import type { DevServer } from '../../dev/temporal-cli';
import { compareMember, userAsStored } from '../../src/domain/decide';
import { summarize } from '../../src/report/summary';
import type { ChannelUser, StoredMember } from '../../src/domain/types';
import { webhookId } from '../../src/webhook/webhook-id';
import {
  WORKFLOW_TYPE,
  pauseSignal,
  progressQuery,
  resumeSignal,
  type BackfillResult,
} from '../../workflows/definitions';
import { readAudit, startStack, startTestServer, waitFor, type Stack } from '../support/stack';
import { workerProcess, type WorkerProcess } from '../support/worker-process';

// Issue 23: Channel Talk's own webhooks flow again while a repair runs. Members change or are deleted on Channel
// Talk's side after their lookup while their replay waits (refused by the receiver, held by the delete guard), and
// Channel Talk's live webhook reaches the endpoint first. Applying every accepted delivery in arrival order, as a
// customer's webhook logic does, every member must end with Channel Talk's state: no value regressed, no deleted
// user created again, no user who came back deleted.

let server: DevServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
});

const PHONE = '+821012345678';
const row = (memberId: string, email: string, unsubscribeEmail = false): StoredMember => ({
  memberId,
  mobileNumber: PHONE,
  email,
  unsubscribeEmail,
  unsubscribeTexting: false,
});
const user = (memberId: string, email: string, over: Partial<ChannelUser> = {}): ChannelUser => ({
  id: `u-${memberId}`,
  memberId,
  type: 'member',
  mobileNumber: PHONE,
  email,
  unsubscribeEmail: false,
  unsubscribeTexting: false,
  updatedAt: 1_730_500_000_000,
  ...over,
});

const CHANGED = ['chg-1', 'chg-2', 'chg-3'];
const DELETED = ['del-1', 'del-2', 'del-3'];
const REFUSED = [...CHANGED, ...DELETED, 'same-1'];
const FILLERS = Array.from({ length: 20 }, (_, i) => `f-${String(i).padStart(2, '0')}`);

/** The customer's table: the stored rows, as the CSV holds them. back-* and gone-1 are members Channel Talk lost. */
const STORED: StoredMember[] = [
  row('back-1', 'back1@example.com'),
  row('back-2', 'back2@example.com'),
  row('gone-1', 'gone1@example.com'),
  ...REFUSED.map((m) => row(m, `${m}-old@example.com`)),
  ...FILLERS.map((m) => row(m, `${m}@example.com`)),
];
/** Channel Talk at the first lookups: the upserts' new email; nothing for back-*, gone-1. */
const AT_LOOKUP: ChannelUser[] = [
  ...REFUSED.map((m) => user(m, `${m}-new@example.com`)),
  ...FILLERS.map((m) => user(m, `${m}@example.com`)),
];

function changes(liveWebhookUrl: string): Record<string, UserChange> {
  const c: Record<string, UserChange> = {};
  // Contact and consent change again 100 ms after the lookup; deletions then too; two users come back.
  for (const m of CHANGED)
    c[m] = {
      afterMs: 100,
      user: user(m, `${m}-newer@example.com`, { unsubscribeEmail: true, updatedAt: Date.now() }),
      liveWebhookUrl,
    };
  for (const m of DELETED) c[m] = { afterMs: 100, user: null, liveWebhookUrl };
  c['back-1'] = { afterMs: 50, user: user('back-1', 'back1@example.com'), liveWebhookUrl };
  c['back-2'] = { afterMs: 50, user: user('back-2', 'back2-again@example.com'), liveWebhookUrl };
  return c;
}

/** The customer's table after applying every accepted delivery in arrival order (null: the user is deleted). */
function customerState(deliveries: Delivery[]): Map<string, StoredMember | null> {
  const state = new Map<string, StoredMember | null>(STORED.map((r) => [r.memberId, r]));
  for (const d of [...deliveries].sort((a, b) => a.seq - b.seq)) {
    const body = d.body as { event: string; entity: ChannelUser };
    if (!d.memberId) continue;
    state.set(d.memberId, body.event === 'delete' ? null : userAsStored(d.memberId, body.entity));
  }
  return state;
}

async function startRun(stack: Stack, workflowId: string) {
  const csv = path.join(stack.dataDir, 'members.csv');
  const lines = ['memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting'];
  for (const r of STORED) lines.push(`${r.memberId},${r.mobileNumber},${r.email},${r.unsubscribeEmail},false`);
  await writeFile(csv, `${lines.join('\n')}\n`);
  return stack.client.workflow.start(WORKFLOW_TYPE, {
    taskQueue: stack.config.BACKFILL_TASK_QUEUE,
    workflowId,
    args: [{ source: { type: 'csv', path: csv }, batchSize: 5, parallelBatches: 1 }],
  });
}

describe('members that change on Channel Talk while their replay waits', () => {
  it('end with Channel Talk state; the audit says what changed; counters exact', { timeout: 120_000 }, async () => {
    const stack = await startStack({
      server,
      users: AT_LOOKUP,
      // The receiver refuses the replays of these members four times (Channel Talk's own webhooks go through).
      receiverBehaviours: Object.fromEntries(REFUSED.map((m) => [m, { status: 503, times: 4, replaysOnly: true }])),
      // The last batch is slow, so the deletes the delete guard holds wait well past the freshness window.
      channelFaults: { [FILLERS.at(-1)!]: { delayMs: 1_500 } },
      env: { REPLAY_RECHECK_AFTER_MS: '300' },
    });
    try {
      stack.simulator.setChanges(changes(stack.receiver.url));
      const handle = await startRun(stack, 'live-changes');
      const result = (await handle.result()) as BackfillResult;
      expect(result).toMatchObject({
        processed: STORED.length,
        upserts: CHANGED.length + 1 + 1, // chg-*, same-1, back-2
        deletes: DELETED.length + 1, // del-*, gone-1
        unchanged: FILLERS.length + 1, // back-1
        failed: 0,
        skipped: 0,
        changedDuringRepair: CHANGED.length + DELETED.length + 2,
      });
      expect(stack.simulator.changesApplied()).toHaveLength(CHANGED.length + DELETED.length + 2);

      // Every member ends with Channel Talk's state.
      const state = customerState(stack.receiver.accepted());
      for (const { memberId } of STORED) {
        const now = stack.simulator.user(memberId);
        const theirs = state.get(memberId);
        if (!now) expect(theirs, memberId).toBeNull();
        else {
          expect(theirs, memberId).not.toBeNull();
          expect(compareMember(theirs!, now), memberId).toEqual([]);
        }
      }

      const entries = await readAudit(result.auditPath);
      // The report counts them beside the outcomes, as the workflow did.
      expect(summarize(entries)).toMatchObject({
        changedDuringRepair: result.changedDuringRepair,
        outcomes: { upsert: result.upserts, delete: result.deletes, unchanged: result.unchanged },
      });
      const audit = new Map(entries.map((e) => [e.memberId, e]));
      const replays = (m: string) => stack.receiver.deliveries().filter((d) => d.memberId === m && d.webhookId);
      for (const m of CHANGED) {
        expect(audit.get(m), m).toMatchObject({
          outcome: 'upsert',
          fields: ['email', 'unsubscribeEmail'],
          deferred: true,
          changedDuringRepair: true,
          recheck: 'upsert [email] -> upsert [email, unsubscribeEmail]',
        });
        expect(audit.get(m)!.recheckedAt).toEqual(expect.any(String));
        // The same webhook-id for every attempt of the event.
        expect(new Set(replays(m).map((d) => d.webhookId)), m).toEqual(
          new Set([webhookId('live-changes', m, 'upsert')]),
        );
        const sent = stack.receiver.accepted().filter((d) => d.memberId === m && d.webhookId);
        expect((sent[0]!.body as { entity: ChannelUser }).entity.email, m).toBe(`${m}-newer@example.com`);
      }
      for (const m of DELETED) {
        expect(audit.get(m), m).toMatchObject({
          outcome: 'delete',
          reason: 'not-found',
          event: 'delete',
          changedDuringRepair: true,
          recheck: 'upsert [email] -> delete (not-found)',
          webhookId: webhookId('live-changes', m, 'delete'),
        });
        // Never the stale upsert: the upserts tried before the change were all refused.
        expect(
          stack.receiver.accepted().filter((d) => d.memberId === m && d.event === 'upsert' && d.webhookId),
        ).toEqual([]);
      }
      expect(audit.get('back-1')).toMatchObject({
        outcome: 'unchanged',
        changedDuringRepair: true,
        recheck: 'delete (not-found) -> unchanged',
      });
      expect(audit.get('back-1')!.event).toBeUndefined();
      expect(replays('back-1')).toEqual([]);
      expect(audit.get('back-2')).toMatchObject({
        outcome: 'upsert',
        fields: ['email'],
        changedDuringRepair: true,
        recheck: 'delete (not-found) -> upsert [email]',
      });
      expect(replays('back-2').map((d) => d.event)).toEqual(['upsert']);
      // Looked up again, nothing changed: delivered as decided, not counted as changed.
      for (const m of ['same-1', 'gone-1']) {
        expect(audit.get(m)!.recheckedAt, m).toEqual(expect.any(String));
        expect(audit.get(m)!.changedDuringRepair, m).toBeUndefined();
      }
      expect(audit.get('gone-1')).toMatchObject({ outcome: 'delete', heldByDeleteGuard: true });

      // Proving the repair: the customer's table as the deliveries left it, exported; after the repair chg-2 changes
      // once more on Channel Talk's side (its live webhook lost). Every replayed member is repaired, chg-2 is
      // "changed since" (not "still differs"), whatever changed while its replay waited.
      stack.simulator.setUser(
        'chg-2',
        user('chg-2', 'chg-2-after@example.com', { unsubscribeEmail: true, updatedAt: Date.now() + 1_000 }),
      );
      const exported = path.join(stack.dataDir, 'export.csv');
      const rows = ['memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting'];
      for (const [, r] of state)
        if (r) rows.push(`${r.memberId},${r.mobileNumber ?? ''},${r.email ?? ''},${r.unsubscribeEmail},false`);
      await writeFile(exported, `${rows.join('\n')}\n`);
      const verify = await stack.client.workflow.execute(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId: 'live-changes-verify',
        args: [{ source: { type: 'csv', path: exported }, verifyAfter: { auditPath: result.auditPath } }],
      });
      const verdicts = new Map((await readAudit(verify.auditPath)).map((e) => [e.memberId, e.verdict]));
      const replayed = [...CHANGED, ...DELETED, 'back-2', 'same-1', 'gone-1'];
      expect(Object.fromEntries(verdicts)).toEqual(
        Object.fromEntries(replayed.map((m) => [m, m === 'chg-2' ? 'changed since' : 'repaired'])),
      );
    } finally {
      await stack.close();
    }
  });

  // chg-1 and del-1 are refused until the test lets them through; the rest (same-1 aside) are in sync.
  const waitingStack = (o: { worker?: false } = {}) =>
    startStack({
      server,
      users: AT_LOOKUP,
      receiverBehaviours: {
        'chg-1': { status: 503, replaysOnly: true },
        'del-1': { status: 503, replaysOnly: true },
      },
      ...o,
      env: { REPLAY_RECHECK_AFTER_MS: '300' },
    });

  const twoReplaysWaiting = (handle: WorkflowHandle) =>
    waitFor(
      'two replays waiting',
      async () => {
        const p = await handle.query(progressQuery);
        return p.batchesDone === p.batchesTotal && p.pendingReplays === 2 ? true : undefined;
      },
      90_000,
    );

  /** While the replays wait, Channel Talk changes chg-1 and deletes del-1; the receiver recovers. */
  function changeWhileWaiting(stack: Stack): void {
    stack.simulator.setUser('chg-1', user('chg-1', 'chg-1-newer@example.com', { unsubscribeTexting: true }));
    stack.simulator.setUser('del-1', null);
    stack.receiver.setBehaviour('chg-1', undefined);
    stack.receiver.setBehaviour('del-1', undefined);
  }

  /** The run sent the state of the moment of sending: chg-1's fresh values, a delete for del-1. */
  async function expectFreshState(stack: Stack, handle: WorkflowHandle): Promise<void> {
    const result = (await handle.result()) as BackfillResult;
    expect(result).toMatchObject({ processed: STORED.length, failed: 0, changedDuringRepair: 2 });
    const accepted = stack.receiver.accepted().filter((d) => d.webhookId);
    const chg = accepted.filter((d) => d.memberId === 'chg-1');
    expect(chg.map((d) => d.event)).toEqual(['upsert']);
    expect((chg[0]!.body as { entity: ChannelUser }).entity).toMatchObject({
      email: 'chg-1-newer@example.com',
      unsubscribeTexting: true,
    });
    expect(accepted.filter((d) => d.memberId === 'del-1').map((d) => d.event)).toEqual(['delete']);
    const audit = new Map((await readAudit(result.auditPath)).map((e) => [e.memberId, e]));
    expect(audit.get('chg-1')).toMatchObject({
      outcome: 'upsert',
      recheck: 'upsert [email] -> upsert [email, unsubscribeTexting]',
    });
    expect(audit.get('del-1')).toMatchObject({ outcome: 'delete', recheck: 'upsert [email] -> delete (not-found)' });
  }

  it('a pause with replays waiting, resumed: the fresh state is sent', { timeout: 120_000 }, async () => {
    const stack = await waitingStack();
    try {
      const handle = await startRun(stack, 'live-changes-pause');
      await twoReplaysWaiting(handle);
      await handle.signal(pauseSignal, 'test pause');
      await waitFor('paused', async () => ((await handle.query(progressQuery)).paused ? true : undefined));
      changeWhileWaiting(stack);
      await new Promise((r) => setTimeout(r, 2_000));
      await handle.signal(resumeSignal);
      await expectFreshState(stack, handle);
    } finally {
      await stack.close();
    }
  });

  it('a worker killed while replays wait: the next worker sends the fresh state', { timeout: 240_000 }, async () => {
    const stack = await waitingStack({ worker: false });
    let worker: WorkerProcess | undefined;
    try {
      worker = workerProcess({ env: stack.env, logFile: path.join(stack.dataDir, 'worker.log') });
      await worker.start();
      const handle = await startRun(stack, 'live-changes-crash');
      await twoReplaysWaiting(handle);
      await worker.kill();
      changeWhileWaiting(stack);
      await worker.start();
      await expectFreshState(stack, handle);
    } finally {
      await worker?.stop();
      await stack.close();
    }
  });
});
