import { describe, expect, it } from 'vitest';
import { recheckReplay, type RecheckDeps } from '../../activities/recheck-replay';
import type { PendingReplay } from '../../src/audit/pending-store';
import type { ChannelClient } from '../../src/channel/client';
import { createRateLimiter } from '../../src/channel/rate-limiter';
import type { ChannelUser, FetchResult } from '../../src/domain/types';
import { buildUpsertPayload } from '../../src/webhook/payload';
import { webhookId } from '../../src/webhook/webhook-id';

// A replay that waited, right before it is sent: looked up again only when its lookup is older than the window,
// never from a worker whose credentials open another channel, and rebuilt from the fresh decision.

const NOW = Date.parse('2026-12-06T12:00:00Z');
const stored = {
  memberId: 'm-1',
  mobileNumber: null,
  email: 'old@example.com',
  unsubscribeEmail: false,
  unsubscribeTexting: false,
};
const user = (email: string): ChannelUser => ({ memberId: 'm-1', type: 'member', email, updatedAt: null });

function waiting(lookedUpAt: number): PendingReplay {
  const id = webhookId('run', 'm-1', 'upsert');
  return {
    line: 7,
    memberId: 'm-1',
    event: 'upsert',
    webhookId: id,
    payload: buildUpsertPayload(user('new@example.com')),
    base: {
      ts: new Date(lookedUpAt).toISOString(),
      backfill: 'bf',
      runLabel: 'run',
      line: 7,
      memberId: 'm-1',
      outcome: 'upsert',
      fields: ['email'],
      event: 'upsert',
      webhookId: id,
      attempts: 1,
      dryRun: false,
    },
    member: stored,
    lookedUpAt,
  };
}

function deps(answer: FetchResult, refuse?: string): RecheckDeps & { lookups: () => number } {
  let lookups = 0;
  const channel = {
    getUserByMemberId: () => {
      lookups += 1;
      return Promise.resolve(answer);
    },
  } as unknown as ChannelClient;
  return {
    channel,
    limiter: () => createRateLimiter(undefined),
    decideOptions: {},
    entityType: 'user',
    recheckAfterMs: 2_000,
    now: () => new Date(NOW),
    channelCheck: () => Promise.resolve(refuse),
    lookups: () => lookups,
  };
}

describe('recheckReplay', () => {
  it('a lookup younger than the window: sent as stored, no lookup', async () => {
    const d = deps({ kind: 'not-found', status: 404, attempts: 1 });
    const r = await recheckReplay(d, waiting(NOW - 1_000), 'audit');
    expect(r).toMatchObject({ kind: 'send', rechecked: false });
    expect(d.lookups()).toBe(0);
  });

  it('older: the user deleted since -> a delete with its own webhook-id, the user kept as the API answered', async () => {
    const d = deps({ kind: 'not-found', status: 404, attempts: 1 });
    const r = await recheckReplay(d, waiting(NOW - 5_000), 'audit');
    expect(r.kind).toBe('send');
    const replay = (r as { replay: PendingReplay }).replay;
    expect(replay).toMatchObject({ event: 'delete', webhookId: webhookId('run', 'm-1', 'delete'), lookedUpAt: NOW });
    expect(replay.base).toMatchObject({
      outcome: 'delete',
      reason: 'not-found',
      attempts: 2,
      changedDuringRepair: true,
      recheck: 'upsert [email] -> delete (not-found)',
      recheckedAt: new Date(NOW).toISOString(),
    });
    expect(replay.base.fields).toBeUndefined();
  });

  it('older: changed again -> the fresh user, null kept, as the entity', async () => {
    const d = deps({ kind: 'found', user: user('newer@example.com'), attempts: 1 });
    const r = await recheckReplay(d, waiting(NOW - 5_000), 'audit');
    const replay = (r as { replay: PendingReplay }).replay;
    expect(replay.payload.entity).toEqual(user('newer@example.com'));
    expect(replay.base).toMatchObject({ outcome: 'upsert', recheck: 'upsert [email]: email changed' });
  });

  it('older: now equal -> recorded unchanged, nothing to send', async () => {
    const d = deps({ kind: 'found', user: user('old@example.com'), attempts: 1 });
    const r = await recheckReplay(d, waiting(NOW - 5_000), 'audit');
    expect(r).toMatchObject({ kind: 'record', entry: { outcome: 'unchanged', changedDuringRepair: true } });
    expect((r as { entry: { event?: string } }).entry.event).toBeUndefined();
  });

  it('a worker whose credentials open another channel looks nothing up', async () => {
    const d = deps({ kind: 'not-found', status: 404, attempts: 1 }, 'credentials open channel 2, not 1');
    const r = await recheckReplay(d, waiting(NOW - 5_000), 'audit');
    expect(r).toEqual({ kind: 'refused', reason: 'credentials open channel 2, not 1' });
    expect(d.lookups()).toBe(0);
  });
});
