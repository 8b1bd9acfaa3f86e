import { recordChangeTimes, type AuditEntry } from '../src/audit/audit-entry';
import type { PendingReplay } from '../src/audit/pending-store';
import type { ChannelClient } from '../src/channel/client';
import type { RateLimiter } from '../src/channel/rate-limiter';
import { decide, type DecideOptions } from '../src/domain/decide';
import { isDecision } from '../src/domain/delete-guard';
import { planDrift } from '../src/domain/plan-drift';
import type {
  ComparedField,
  Decision,
  FetchResult,
  PlannedDecision,
  StoredMember,
  WebhookEvent,
} from '../src/domain/types';
import { buildDeletePayload, buildUpsertPayload, type ReplayPayload } from '../src/webhook/payload';
import type { ReceiverHealth } from '../src/webhook/receiver-health';
import type { WebhookSender } from '../src/webhook/sender';
import { webhookId } from '../src/webhook/webhook-id';
import { sendWithRetries } from './send-with-retries';

export interface RepairContext {
  backfill: string;
  runLabel: string;
  dryRun: boolean;
  channel: ChannelClient;
  target: WebhookSender | undefined;
  /** This worker's view of the target's endpoint: told of every send (src/webhook/receiver-health.ts). */
  health?: ReceiverHealth;
  limiter: RateLimiter;
  decideOptions: DecideOptions;
  entityType: string;
  signal: AbortSignal;
  now: () => Date;
  /**
   * The delete guard's view of this batch (absent in dry runs): told of every decision; for a delete it answers
   * whether to hold it back (not sent: handed over as a held replay the workflow releases or keeps).
   */
  guard?: { decided(isDelete: boolean): boolean };
  /** When the deletes were confirmed past the guard: stamped on each delete recorded. */
  deletesConfirmedAt?: string;
  /**
   * REPLAY_RECHECK_AFTER_MS: a replay whose lookup is older than this is not sent from it. The batch's quick retries
   * stop there (the member is handed over to its replay activity, which looks it up again before sending).
   */
  recheckAfterMs?: number;
  /** Requests/s a replay's lookup made again may use when no batch of the run runs (activities/run-limiters.ts). */
  recheckRate?: number;
}

/** What became of one member: recorded now, or handed over to its own replay activity. */
export type RepairResult =
  { kind: 'recorded'; entry: AuditEntry } | { kind: 'deferred'; replay: PendingReplay; held?: boolean };

/**
 * Fetch, decide and replay for one member. Throws BadCredentialsError (the run must pause, the
 * member stays unrecorded) and lets an abort propagate (the member stays unrecorded and is redone).
 */
export async function repairMember(
  line: number,
  member: StoredMember,
  ctx: RepairContext,
  planned?: PlannedDecision,
): Promise<RepairResult> {
  const base: AuditEntry = {
    ts: ctx.now().toISOString(),
    backfill: ctx.backfill,
    runLabel: ctx.runLabel,
    line,
    memberId: member.memberId,
    outcome: 'unchanged',
    dryRun: ctx.dryRun,
  };
  const fetched = await ctx.channel.getUserByMemberId(member.memberId, { limiter: ctx.limiter, signal: ctx.signal });
  const lookedUpAt = ctx.now().getTime();
  base.attempts = fetched.attempts;
  if (fetched.kind === 'found') recordChangeTimes(base, fetched.user);
  const decision = decide(member, fetched, ctx.decideOptions);
  if (planned) {
    const drift = planDrift(planned, decision);
    // The plan was reviewed; anything else is reported, never replayed blindly.
    if (drift) return recorded(base, { outcome: 'skipped', reason: drift });
  }

  // Counted as made, before any replay (the guard cannot wait for the batch to finish).
  const decided = isDecision(decision.action, 'fields' in decision ? decision.fields : undefined);
  const hold = decided && ctx.guard ? ctx.guard.decided(decision.action === 'delete') : false;

  const replay = replayOf(decision, fetched, member, base, ctx);
  if (replay.kind === 'recorded') return replay;
  const { event, payload } = replay;
  base.event = event;
  base.webhookId = webhookId(ctx.runLabel, member.memberId, event);
  const fields = decision.action === 'upsert' ? decision.fields : undefined;
  const pendingReplay = (): PendingReplay => ({
    line,
    memberId: member.memberId,
    event,
    webhookId: base.webhookId!,
    payload,
    base,
    // What a replay that waits is decided again from, right before it is sent (activities/recheck-replay.ts).
    member,
    lookedUpAt,
    ...(ctx.decideOptions.onlyChangedSince ? { onlyChangedSince: ctx.decideOptions.onlyChangedSince } : {}),
    ...(planned ? { planned } : {}),
    ...(ctx.recheckRate !== undefined ? { recheckRate: ctx.recheckRate } : {}),
  });
  if (hold && !ctx.dryRun) {
    // Its own replay activity delivers it once the guard releases it (so its entry says deferred, and why).
    base.heldByDeleteGuard = true;
    return { kind: 'deferred', held: true, replay: pendingReplay() };
  }
  if (ctx.dryRun) return planReplay(base, event, fields, ctx);
  if (!ctx.target)
    throw new Error('this worker has no WEBHOOK_URL: it cannot replay for a backfill that is not a dry run');
  return sendReplay(base, { payload, fields, lookedUpAt, memberId: member.memberId }, ctx, ctx.target, pendingReplay);
}

/** The replay a decision makes (its event and body, the entry saying what it is), or the entry when there is none. */
function replayOf(
  decision: Decision,
  fetched: FetchResult,
  member: StoredMember,
  base: AuditEntry,
  ctx: RepairContext,
): { kind: 'replay'; event: WebhookEvent; payload: ReplayPayload } | (RepairResult & { kind: 'recorded' }) {
  switch (decision.action) {
    case 'unchanged':
      return { kind: 'recorded', entry: base };
    case 'failed':
      return recorded(base, { outcome: 'failed', stage: 'fetch', reason: decision.reason });
    case 'skipped':
      return recorded(base, { outcome: 'skipped', fields: decision.fields, reason: decision.reason });
    case 'upsert':
      if (fetched.kind !== 'found') throw new Error('upsert decided without a fetched user');
      base.outcome = 'upsert';
      base.fields = decision.fields;
      return { kind: 'replay', event: 'upsert', payload: buildUpsertPayload(fetched.user, ctx.entityType) };
    case 'delete':
      base.outcome = 'delete';
      base.reason = decision.reason;
      if (ctx.deletesConfirmedAt && !ctx.dryRun) base.deletesConfirmedAt = ctx.deletesConfirmedAt;
      return {
        kind: 'replay',
        event: 'delete',
        payload: buildDeletePayload(
          { user: fetched.kind === 'found' ? fetched.user : undefined, stored: member },
          ctx.entityType,
        ),
      };
  }
}

/** A dry run's entry: where the replay would go (channel-webhooks) and its deliveries per scope, so the plan counts them. */
async function planReplay(
  base: AuditEntry,
  event: WebhookEvent,
  fields: ComparedField[] | undefined,
  ctx: RepairContext,
): Promise<RepairResult> {
  if (ctx.target?.route) base.webhooks = await ctx.target.route({ event, fields, signal: ctx.signal });
  const planned = await ctx.target?.plan?.({ event, fields, webhookId: base.webhookId!, signal: ctx.signal });
  if (planned) base.deliveries = planned;
  return recorded(base, { delivered: false });
}

/**
 * Sends the replay with the batch's quick retries: delivered or rejected is recorded; anything else waits. Also how
 * a batch sends the deletes it held back (activities/held-deletes.ts).
 */
export async function sendReplay(
  base: AuditEntry,
  replay: {
    payload: ReplayPayload;
    fields: readonly ComparedField[] | undefined;
    lookedUpAt: number;
    memberId: string;
  },
  ctx: Pick<RepairContext, 'health' | 'now' | 'signal' | 'recheckAfterMs'>,
  target: WebhookSender,
  pendingReplay: () => PendingReplay,
): Promise<RepairResult> {
  const health = ctx.health ? { of: ctx.health, member: replay.memberId, now: () => ctx.now().getTime() } : undefined;
  const sent = await sendWithRetries(target, {
    webhookId: base.webhookId!,
    payload: replay.payload,
    fields: replay.fields,
    signal: ctx.signal,
    ...(health ? { health } : {}),
    ...(ctx.recheckAfterMs !== undefined ? { freshUntil: replay.lookedUpAt + ctx.recheckAfterMs, now: ctx.now } : {}),
  });
  // Set before a deferral too: the deferred replay's entry starts from this base.
  if (sent.webhooks) base.webhooks = sent.webhooks;
  if (sent.deliveries) base.deliveries = sent.deliveries;
  if (sent.kind === 'delivered') return recorded(base, { delivered: true, status: sent.status });
  if (sent.kind === 'rejected') {
    return recorded(base, {
      outcome: 'failed',
      stage: 'replay',
      delivered: false,
      status: sent.status,
      reason: `replay rejected: ${sent.reason}`,
    });
  }
  return { kind: 'deferred', replay: pendingReplay() };
}

/**
 * The final entry: `base` with `final` assigned onto it, which gives the same keys in the same order as
 * `{ ...base, ...final }` (a key already on base keeps its place) without copying an object that grew key
 * by key, which V8 does slowly. Only for a base that is not used afterwards.
 */
function recorded(base: AuditEntry, final: Partial<AuditEntry>): RepairResult & { kind: 'recorded' } {
  return { kind: 'recorded', entry: Object.assign(base, final) };
}
