import type { Verdict } from '../domain/verdicts';
import {
  OUTCOMES,
  type ChannelUser,
  type ComparedField,
  type OutcomeKind,
  type ScopeDelivery,
  type WebhookEvent,
  type WebhookRoute,
} from '../domain/types';

/**
 * One line of the audit log: the single recorded outcome of one source row. It names fields, never
 * their values, so the log can be shared with whoever reviews the repair without leaking contacts.
 */
export interface AuditEntry {
  ts: string;
  backfill: string; // workflow id
  runLabel: string; // names the webhook ids
  line: number; // line of the source row
  memberId?: string;
  outcome: OutcomeKind;
  fields?: ComparedField[]; // upsert: which fields differed
  reason?: string; // delete: not-found | unified; failed/skipped: why
  stage?: 'fetch' | 'replay'; // failed: where
  event?: WebhookEvent; // what was (or, in a dry run, would have been) replayed
  delivered?: boolean; // false in a dry run
  webhookId?: string;
  status?: number; // last HTTP status of the replay, if any
  attempts?: number; // API lookups made
  deferred?: boolean; // delivered by a per-member replay activity after the batch gave up waiting
  webhooks?: WebhookRoute[]; // target channel-webhooks: the registered webhooks it went (or would go) to, by id/name
  /**
   * WEBHOOK_EVENT_NAMES=scopes: the member's deliveries, one per scope (its event, its own webhook-id, how many
   * endpoints), that went (or in a dry run would go) out; `webhookId` above is then the member's id they derive from.
   */
  deliveries?: ScopeDelivery[];
  // Channel Talk's change times (epoch ms), so a report can tell what the outage caused from what was
  // already out of sync. Times, not values: no personal data.
  updatedAt?: number;
  unsubscribeEmailUpdatedAt?: number;
  unsubscribeTextingUpdatedAt?: number;
  /** A delete replayed after someone resumed the run with {"confirmDeletes": true} (the delete guard): when. */
  deletesConfirmedAt?: string;
  /** A delete the delete guard held back until enough decisions were in (then `deferred`: its own replay sent it). */
  heldByDeleteGuard?: boolean;
  /**
   * A replay that waited longer than REPLAY_RECHECK_AFTER_MS was looked up again right before it was sent, at this
   * time, and decided again (issue 23): what it records is that fresh decision (`attempts` counts both lookups).
   */
  recheckedAt?: string;
  /** Channel Talk changed the member during the repair (between its two lookups); `recheck` says how. */
  changedDuringRepair?: boolean;
  /** How the decision changed, field names only: `upsert [email] -> delete (not-found)`, `upsert [email]: email changed`. */
  recheck?: string;
  /**
   * A verify run's entry (issue 15): its verdict (recorded under the outcome VERDICT_OUTCOMES gives it), the
   * earlier run's delivery it checks (`repairedAt`, `repairedEvent`) and the member's line in the fresh export
   * (absent when the export no longer holds it). `line` is the earlier run's line, so both logs join on it.
   */
  verdict?: Verdict;
  repairedEvent?: WebhookEvent;
  repairedAt?: string;
  exportLine?: number;
  dryRun: boolean;
}

/** The outcome names a record may carry (a Set: `in` over an object would also accept "toString"). */
export const OUTCOME_NAMES: ReadonlySet<string> = new Set(OUTCOMES);

/** Copies the user's change times (numbers only) onto an entry: times, not values. */
export function recordChangeTimes(entry: AuditEntry, user: ChannelUser): void {
  const { updatedAt, unsubscribeEmailUpdatedAt, unsubscribeTextingUpdatedAt } = user;
  if (typeof updatedAt === 'number') entry.updatedAt = updatedAt;
  if (typeof unsubscribeEmailUpdatedAt === 'number') entry.unsubscribeEmailUpdatedAt = unsubscribeEmailUpdatedAt;
  if (typeof unsubscribeTextingUpdatedAt === 'number') entry.unsubscribeTextingUpdatedAt = unsubscribeTextingUpdatedAt;
}
