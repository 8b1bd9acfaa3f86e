import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecheckDeps } from '../../activities/recheck-replay';
import { refreshHeldDeletes } from '../../activities/refresh-held';
import { createFilePendingStore, type PendingReplay } from '../../src/audit/pending-store';
import type { ChannelClient } from '../../src/channel/client';
import { createRateLimiter, type RateLimiter } from '../../src/channel/rate-limiter';
import type { ChannelUser, FetchResult } from '../../src/domain/types';
import { buildDeletePayload } from '../../src/webhook/payload';
import { webhookId } from '../../src/webhook/webhook-id';

// A batch whose view of the delete guard has cleared looks its held deletes up again before it ends, with its own
// permits, so that their replays (released right after) send a fresh decision without looking up again.

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
  root = await mkdtemp(path.join(tmpdir(), 'refresh-held-test-'));
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

describe('refreshHeldDeletes', () => {
  it('looks up again only held replays older than the window, with the batch limiter, and stores the fresh decision', async () => {
    const dir = path.join(root, 'pending-1');
    const pending = createFilePendingStore();
    // Line 1: held, old, still gone. Line 2: held, old, back on Channel Talk with other fields (now an upsert).
    // Line 3: held but fresh. Line 4: an old replay the guard did not hold (the receiver's, not ours to refresh).
    // Line 5: held, old, its lookup fails: left as it was. Line 6: held, old, now equal (nothing to send): left.
    const replays = [
      heldDelete(1, NOW - 30_000),
      heldDelete(2, NOW - 30_000),
      heldDelete(3, NOW - 500),
      heldDelete(4, NOW - 30_000),
      heldDelete(5, NOW - 30_000),
      heldDelete(6, NOW - 30_000),
    ];
    for (const r of replays) await pending.put(dir, r);
    const back: ChannelUser = { memberId: 'm-2', type: 'member', email: 'other@example.com', updatedAt: null };
    const same: ChannelUser = { memberId: 'm-6', type: 'member', email: 'm-6@example.com', updatedAt: null };
    const channel = channelAnswering({
      'm-1': { kind: 'not-found', status: 404, attempts: 1 },
      'm-2': { kind: 'found', user: back, attempts: 1 },
      'm-5': 'throw',
      'm-6': { kind: 'found', user: same, attempts: 1 },
    });
    let permits = 0;
    const batchLimiter: RateLimiter = {
      ratePerSecond: Infinity,
      acquire: () => {
        permits += 1;
        return Promise.resolve();
      },
    };
    const recheck: RecheckDeps = {
      channel,
      // The replays' own limiter: must not be used here.
      limiter: () => createRateLimiter(0.001),
      decideOptions: {},
      entityType: 'user',
      recheckAfterMs: 2_000,
      now: () => new Date(NOW),
    };
    const refreshed = await refreshHeldDeletes(
      {
        pending,
        recheck,
        limiter: batchLimiter,
        concurrency: 2,
        persist: (write) => write(),
        signal: new AbortController().signal,
      },
      [
        { line: 1, memberId: 'm-1', held: true },
        { line: 2, memberId: 'm-2', held: true },
        { line: 3, memberId: 'm-3', held: true },
        { line: 4, memberId: 'm-4' },
        { line: 5, memberId: 'm-5', held: true },
        { line: 6, memberId: 'm-6', held: true },
      ],
      { pendingDir: dir, auditPath: path.join(root, 'audit.jsonl') },
    );

    expect(refreshed).toBe(2);
    expect([...channel.asked].sort()).toEqual(['m-1', 'm-2', 'm-5', 'm-6']);
    expect(permits).toBe(3); // m-5's request failed before its permit in this stand-in
    expect(await pending.get(dir, 1)).toMatchObject({ event: 'delete', lookedUpAt: NOW });
    expect((await pending.get(dir, 1))?.base.recheckedAt).toBe(new Date(NOW).toISOString());
    expect(await pending.get(dir, 2)).toMatchObject({
      event: 'upsert',
      webhookId: webhookId('run', 'm-2', 'upsert'),
      lookedUpAt: NOW,
    });
    for (const line of [3, 4, 5, 6]) expect(await pending.get(dir, line)).toEqual(replays[line - 1]);
  });

  it('an aborted batch looks nothing up', async () => {
    const dir = path.join(root, 'pending-2');
    const pending = createFilePendingStore();
    await pending.put(dir, heldDelete(1, NOW - 30_000));
    const channel = channelAnswering({ 'm-1': { kind: 'not-found', status: 404, attempts: 1 } });
    const stop = new AbortController();
    stop.abort();
    const refreshed = await refreshHeldDeletes(
      {
        pending,
        recheck: {
          channel,
          limiter: () => createRateLimiter(undefined),
          decideOptions: {},
          entityType: 'user',
          recheckAfterMs: 2_000,
          now: () => new Date(NOW),
        },
        limiter: createRateLimiter(undefined),
        concurrency: 2,
        persist: (write) => write(),
        signal: stop.signal,
      },
      [{ line: 1, memberId: 'm-1', held: true }],
      { pendingDir: dir, auditPath: path.join(root, 'audit.jsonl') },
    );
    expect(refreshed).toBe(0);
    expect(channel.asked).toEqual([]);
  });
});
