import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverHeldDeletes, type HeldDeletesDeps } from '../../activities/held-deletes';
import { createFilePendingStore, type PendingReplay } from '../../src/audit/pending-store';
import type { ChannelClient } from '../../src/channel/client';
import { createRateLimiter, type RateLimiter } from '../../src/channel/rate-limiter';
import type { AuditEntry } from '../../src/audit/audit-entry';
import type { ChannelUser, FetchResult, SendResult } from '../../src/domain/types';
import type { SendInput, WebhookSender } from '../../src/webhook/sender';
import { buildDeletePayload } from '../../src/webhook/payload';
import { webhookId } from '../../src/webhook/webhook-id';

// A batch whose view of the delete guard has cleared sends the deletes it held itself before it ends, with its own
// permits: looked up again when their lookup is too old, then sent and recorded. What it cannot finish (a failed
// lookup, a send not delivered after its quick retries, an abort) is left to its replay activity.

const NOW = Date.parse('2026-12-07T02:00:00Z');
const stored = (id: string) => ({
  memberId: id,
  mobileNumber: null,
  email: `${id}@example.com`,
  unsubscribeEmail: false,
  unsubscribeTexting: false,
});

function heldDelete(line: number, lookedUpAt: number): PendingReplay {
  const memberId = `m-${line}`;
  const id = webhookId('run', memberId, 'delete');
  return {
    line,
    memberId,
    event: 'delete',
    webhookId: id,
    payload: buildDeletePayload({ user: undefined, stored: stored(memberId) }, 'user'),
    base: {
      ts: new Date(lookedUpAt).toISOString(),
      backfill: 'bf',
      runLabel: 'run',
      line,
      memberId,
      outcome: 'delete',
      reason: 'not-found',
      event: 'delete',
      webhookId: id,
      heldByDeleteGuard: true,
      attempts: 1,
      dryRun: false,
    },
    member: stored(memberId),
    lookedUpAt,
  };
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'held-deletes-test-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Answers per member; 'throw' rejects like a request that failed for good. */
function channelAnswering(answers: Record<string, FetchResult | 'throw'>): ChannelClient & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    getUserByMemberId: (memberId: string, opts?: { limiter?: RateLimiter }) => {
      asked.push(memberId);
      if (!opts?.limiter) throw new Error('no limiter');
      const answer = answers[memberId];
      if (!answer || answer === 'throw') return Promise.reject(new Error('connection reset'));
      return opts.limiter.acquire().then(() => answer);
    },
    getChannel: () => Promise.reject(new Error('not used')),
    close: () => Promise.resolve(),
  };
}

/** A receiver answering per webhook-id: a status, or 'down' (a network error, retryable). */
function receiverAnswering(answers: Record<string, number | 'down'>): WebhookSender & { sent: SendInput[] } {
  const sent: SendInput[] = [];
  return {
    sent,
    send: (input) => {
      sent.push(input);
      const answer = answers[input.webhookId] ?? 200;
      const result: SendResult =
        answer === 'down'
          ? { kind: 'retryable', reason: 'network error (ECONNREFUSED)' }
          : answer < 300
            ? { kind: 'delivered', status: answer }
            : { kind: 'rejected', status: answer, reason: `HTTP ${answer}` };
      return Promise.resolve(result);
    },
    close: () => Promise.resolve(),
  };
}

function deps(
  o: { pending: HeldDeletesDeps['pending']; channel: ChannelClient; target: WebhookSender; signal?: AbortSignal },
  recorded: AuditEntry[],
  limiter: RateLimiter = createRateLimiter(undefined),
): HeldDeletesDeps {
  return {
    pending: o.pending,
    recheck: {
      channel: o.channel,
      // The replays' own limiter: must not be used here.
      limiter: () => createRateLimiter(0.001),
      decideOptions: {},
      entityType: 'user',
      recheckAfterMs: 2_000,
      now: () => new Date(NOW),
    },
    limiter,
    concurrency: 2,
    repair: {
      target: o.target,
      signal: o.signal ?? new AbortController().signal,
      now: () => new Date(NOW),
      recheckAfterMs: 2_000,
    },
    persist: (write) => write(),
    record: (entry) => recorded.push(entry),
  };
}

describe('deliverHeldDeletes', () => {
  it('sends held deletes (looked up again when old, with the batch limiter), records them, leaves what it cannot finish', async () => {
    const dir = path.join(root, 'pending-1');
    const pending = createFilePendingStore();
    // Line 1: held, old, still gone: sent. Line 2: held, old, back on Channel Talk with other fields: an upsert sent.
    // Line 3: held but fresh: sent as stored, not looked up. Line 4: an old replay the guard did not hold (the
    // receiver's): not ours. Line 5: held, old, its lookup fails: left as it was. Line 6: held, old, now equal:
    // recorded unchanged, nothing sent. Line 7: held, old, the receiver down: the fresh decision kept for its replay.
    const replays = [1, 2, 3, 4, 5, 6, 7].map((line) => heldDelete(line, line === 3 ? NOW - 500 : NOW - 30_000));
    for (const r of replays) await pending.put(dir, r);
    const back: ChannelUser = { memberId: 'm-2', type: 'member', email: 'other@example.com', updatedAt: null };
    const same: ChannelUser = { memberId: 'm-6', type: 'member', email: 'm-6@example.com', updatedAt: null };
    const channel = channelAnswering({
      'm-1': { kind: 'not-found', status: 404, attempts: 1 },
      'm-2': { kind: 'found', user: back, attempts: 1 },
      'm-5': 'throw',
      'm-6': { kind: 'found', user: same, attempts: 1 },
      'm-7': { kind: 'not-found', status: 404, attempts: 1 },
    });
    const target = receiverAnswering({ [webhookId('run', 'm-7', 'delete')]: 'down' });
    let permits = 0;
    const batchLimiter: RateLimiter = {
      ratePerSecond: Infinity,
      acquire: () => {
        permits += 1;
        return Promise.resolve();
      },
    };
    const recorded: AuditEntry[] = [];
    const done = await deliverHeldDeletes(
      deps({ pending, channel, target }, recorded, batchLimiter),
      [
        { line: 1, memberId: 'm-1', held: true },
        { line: 2, memberId: 'm-2', held: true },
        { line: 3, memberId: 'm-3', held: true },
        { line: 4, memberId: 'm-4' },
        { line: 5, memberId: 'm-5', held: true },
        { line: 6, memberId: 'm-6', held: true },
        { line: 7, memberId: 'm-7', held: true },
      ],
      { pendingDir: dir, auditPath: path.join(root, 'audit.jsonl') },
    );

    expect([...done].sort()).toEqual([1, 2, 3, 6]);
    expect([...channel.asked].sort()).toEqual(['m-1', 'm-2', 'm-5', 'm-6', 'm-7']);
    expect(permits).toBe(4); // m-5's request failed before its permit in this stand-in
    const byLine = new Map(recorded.map((e) => [e.line, e]));
    expect(byLine.get(1)).toMatchObject({ outcome: 'delete', delivered: true, status: 200, heldByDeleteGuard: true });
    expect(byLine.get(1)?.recheckedAt).toBe(new Date(NOW).toISOString());
    expect(byLine.get(1)?.deferred).toBeUndefined();
    expect(byLine.get(2)).toMatchObject({
      outcome: 'upsert',
      fields: ['email'],
      delivered: true,
      webhookId: webhookId('run', 'm-2', 'upsert'),
      changedDuringRepair: true,
    });
    expect(byLine.get(3)).toMatchObject({
      outcome: 'delete',
      delivered: true,
      webhookId: webhookId('run', 'm-3', 'delete'),
    });
    expect(byLine.get(3)?.recheckedAt).toBeUndefined();
    expect(byLine.get(6)).toMatchObject({ outcome: 'unchanged', changedDuringRepair: true });
    expect(recorded).toHaveLength(4);
    // Sent: 1, 2, 3, and 7 three times (the quick retries); never 4, 5 or 6.
    expect(target.sent.map((s) => s.webhookId).sort()).toEqual(
      [
        webhookId('run', 'm-1', 'delete'),
        webhookId('run', 'm-2', 'upsert'),
        webhookId('run', 'm-3', 'delete'),
        ...Array<string>(3).fill(webhookId('run', 'm-7', 'delete')),
      ].sort(),
    );
    // Left for their replay activity: 4 and 5 as they were, 7 with its fresh lookup.
    for (const line of [4, 5]) expect(await pending.get(dir, line)).toEqual(replays[line - 1]);
    expect(await pending.get(dir, 7)).toMatchObject({ event: 'delete', lookedUpAt: NOW });
  }, 10_000);

  it('an aborted batch looks nothing up and sends nothing', async () => {
    const dir = path.join(root, 'pending-2');
    const pending = createFilePendingStore();
    await pending.put(dir, heldDelete(1, NOW - 30_000));
    const channel = channelAnswering({ 'm-1': { kind: 'not-found', status: 404, attempts: 1 } });
    const target = receiverAnswering({});
    const stop = new AbortController();
    stop.abort();
    const recorded: AuditEntry[] = [];
    const done = await deliverHeldDeletes(
      deps({ pending, channel, target, signal: stop.signal }, recorded),
      [{ line: 1, memberId: 'm-1', held: true }],
      { pendingDir: dir, auditPath: path.join(root, 'audit.jsonl') },
    );
    expect(done.size).toBe(0);
    expect(channel.asked).toEqual([]);
    expect(target.sent).toEqual([]);
    expect(recorded).toEqual([]);
  });
});
