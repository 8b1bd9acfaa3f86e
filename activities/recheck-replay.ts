// Right before a replay that waited is sent (a deferred replay's attempt, a delete the delete guard held back,
// anything that waited through a pause or a crash), the member is looked up again when its lookup is older than
// REPLAY_RECHECK_AFTER_MS, and decided again against the stored row (src/redecide.ts): Channel Talk's own webhooks
// flow again during a repair, and a replay must never send a state older than Channel Talk's (issue 23).
import { recordChangeTimes, type AuditEntry } from '../src/audit/audit-entry';
import type { PendingReplay } from '../src/audit/pending-store';
import type { ChannelClient } from '../src/channel/client';
import type { RateLimiter } from '../src/channel/rate-limiter';
import type { DecideOptions } from '../src/domain/decide';
import { planDrift } from '../src/domain/plan-drift';
import { redecide } from '../src/domain/redecide';
import type { ChannelUser } from '../src/domain/types';
import { buildDeletePayload, buildUpsertPayload } from '../src/webhook/payload';
import { webhookId } from '../src/webhook/webhook-id';

export interface RecheckDeps {
  channel: ChannelClient;
  /** Where a lookup made again for `backfill` takes its permit (activities/run-limiters.ts). */
  limiter(backfill: string, fallbackRate: number | undefined): RateLimiter;
  decideOptions: DecideOptions;
  entityType: string;
  /** REPLAY_RECHECK_AFTER_MS: a lookup older than this is made again before the replay is sent. */
  recheckAfterMs: number;
  /**
   * The channel check: why this worker must not look members of the run whose audit log is `auditPath` up (its
   * credentials open another channel than the one the run's preparation checked), or undefined when it may.
   */
  channelCheck?(auditPath: string): Promise<string | undefined>;
  now: () => Date;
}

/** What the replay comes to: send it (fresh, or fresh enough), record it unsent, or try again later. */
export type Rechecked =
  | { kind: 'send'; replay: PendingReplay; rechecked: boolean }
  | { kind: 'record'; entry: AuditEntry }
  | { kind: 'lookup-failed'; reason: string; entry: AuditEntry }
  /** Not looked up on this worker (the channel check): nothing sent, tried again later, on any worker. */
  | { kind: 'refused'; reason: string };

/** Keys of an entry that belong to the decision it records; a fresh decision writes its own. */
const DECISION_KEYS = [
  'fields',
  'reason',
  'stage',
  'event',
  'delivered',
  'webhookId',
  'status',
  'webhooks',
  'deliveries',
  'updatedAt',
  'unsubscribeEmailUpdatedAt',
  'unsubscribeTextingUpdatedAt',
] as const;

/**
 * The replay to send now, or what to record instead. Throws BadCredentialsError like any lookup (the caller does
 * not count the attempt) and lets an abort propagate. A replay stored before issue 23 (no `member`) is sent as is.
 */
export async function recheckReplay(
  deps: RecheckDeps,
  replay: PendingReplay,
  auditPath: string,
  signal?: AbortSignal,
): Promise<Rechecked> {
  const { member } = replay;
  const age = deps.now().getTime() - (replay.lookedUpAt ?? 0);
  if (!member || age <= deps.recheckAfterMs) return { kind: 'send', replay, rechecked: false };
  // Another channel's 404s would turn every waiting upsert into a delete: no lookup from such a worker.
  const refused = await deps.channelCheck?.(auditPath);
  if (refused !== undefined) return { kind: 'refused', reason: refused };

  const fresh = await deps.channel.getUserByMemberId(member.memberId, {
    limiter: deps.limiter(replay.base.backfill, replay.recheckRate),
    ...(signal ? { signal } : {}),
  });
  const lookedUpAt = deps.now().getTime();
  const base: AuditEntry = { ...replay.base, recheckedAt: new Date(lookedUpAt).toISOString() };
  for (const key of DECISION_KEYS) delete base[key];
  base.attempts = (replay.base.attempts ?? 0) + fresh.attempts;
  if (fresh.kind === 'found') recordChangeTimes(base, fresh.user);

  const waitingUser = replay.event === 'upsert' || replay.base.reason === 'unified' ? replay.payload.entity : undefined;
  const options = {
    ...deps.decideOptions,
    ...(replay.onlyChangedSince ? { onlyChangedSince: replay.onlyChangedSince } : {}),
  };
  const r = redecide(
    {
      event: replay.event,
      ...(replay.base.fields ? { fields: replay.base.fields } : {}),
      ...(replay.base.reason ? { reason: replay.base.reason } : {}),
      ...(waitingUser ? { user: waitingUser as ChannelUser } : {}),
    },
    member,
    fresh,
    options,
  );
  if (r.changed) {
    base.changedDuringRepair = true;
    if (r.change) base.recheck = r.change;
  }
  const { decision } = r;
  if (decision.action === 'failed') {
    return { kind: 'lookup-failed', reason: decision.reason, entry: { ...base, outcome: 'failed', stage: 'fetch' } };
  }
  // A plan was reviewed: a fresh decision other than the planned one is reported, never sent unreviewed.
  const drift = replay.planned ? planDrift(replay.planned, decision) : undefined;
  if (drift) return { kind: 'record', entry: { ...base, outcome: 'skipped', reason: drift } };

  switch (decision.action) {
    case 'unchanged':
      return { kind: 'record', entry: { ...base, outcome: 'unchanged' } };
    case 'skipped':
      return {
        kind: 'record',
        entry: { ...base, outcome: 'skipped', fields: decision.fields, reason: decision.reason },
      };
    case 'upsert': {
      if (fresh.kind !== 'found') throw new Error('upsert decided without a fetched user');
      const entry: AuditEntry = { ...base, outcome: 'upsert', fields: decision.fields, event: 'upsert' };
      return sendFresh(replay, entry, buildUpsertPayload(fresh.user, deps.entityType), lookedUpAt);
    }
    case 'delete': {
      const user = fresh.kind === 'found' ? fresh.user : undefined;
      const entry: AuditEntry = { ...base, outcome: 'delete', reason: decision.reason, event: 'delete' };
      return sendFresh(replay, entry, buildDeletePayload({ user, stored: member }, deps.entityType), lookedUpAt);
    }
  }
}

/** The replay rebuilt from the fresh decision; its webhook-id is the (run, member, event) one, as for any attempt. */
function sendFresh(
  replay: PendingReplay,
  base: AuditEntry,
  payload: PendingReplay['payload'],
  lookedUpAt: number,
): Rechecked {
  const event = base.event!;
  base.webhookId = webhookId(base.runLabel, replay.memberId, event);
  return {
    kind: 'send',
    rechecked: true,
    replay: { ...replay, event, webhookId: base.webhookId, payload, base, lookedUpAt },
  };
}
