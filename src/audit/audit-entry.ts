import { CHANGE_TIME_KEYS, changeTime } from '../domain/change-time';
import { VERDICT_OUTCOMES, type Verdict } from '../domain/verdicts';
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
 * What a repair (or a dry run) records for one source row: its single outcome. It names fields, never their values,
 * so the log can be shared with whoever reviews the repair without leaking contacts. A verify run records a
 * VerdictEntry instead (below).
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
  dryRun: boolean;
}

/** What only a verify run's entry holds. */
interface VerdictKeys {
  verdict: Verdict;
  /** The earlier run's delivery it checks: its event and when (ISO time). */
  repairedEvent: WebhookEvent;
  repairedAt: string;
  /** The member's line in the fresh export (absent when the export no longer holds it). */
  exportLine?: number;
}

/**
 * One line of a verify run's audit log (issue 15, activities/verify-member.ts): the verdict on one member an earlier
 * run replayed, with what explains it (field names, reasons) and the earlier run's delivery it checks. `line` is
 * the earlier run's line, so both logs join on it. A verify run replays nothing: it has no outcome of its own.
 */
export interface VerdictEntry
  extends
    Pick<AuditEntry, 'ts' | 'backfill' | 'runLabel' | 'line' | 'memberId' | 'fields' | 'reason' | 'attempts'>,
    Pick<AuditEntry, 'updatedAt' | 'unsubscribeEmailUpdatedAt' | 'unsubscribeTextingUpdatedAt'>,
    VerdictKeys {
  /** failed: the lookup failed. */
  stage?: 'fetch';
  dryRun: true;
}

/** What an activity records: a repair's outcome, or a verify run's verdict. */
export type AuditRecord = AuditEntry | VerdictEntry;

/**
 * A line of an audit log as stored and read back. A verdict is stored under an outcome (VERDICT_OUTCOMES: what a dry
 * run over the fresh export decides), so the stores index every line by its outcome, `only`/`fromPlan` read a
 * verify log like any other, and logs written by release 1.0, which recorded verdicts that way, read the same.
 */
export type LoggedEntry = AuditEntry & Partial<VerdictKeys>;

/** A record as its log stores it: a verdict gets its outcome, after who and what, where release 1.0 wrote it. */
export function loggedEntry(record: AuditRecord): LoggedEntry {
  if (!('verdict' in record)) return record;
  const { ts, backfill, runLabel, line, memberId, ...rest } = record;
  const outcome = VERDICT_OUTCOMES[record.verdict];
  return { ts, backfill, runLabel, line, ...(memberId === undefined ? {} : { memberId }), outcome, ...rest };
}

/** The outcome names a record may carry (a Set: `in` over an object would also accept "toString"). */
export const OUTCOME_NAMES: ReadonlySet<string> = new Set(OUTCOMES);

/** Copies the user's change times onto an entry, those it has (finite numbers: `changeTime`): times, not values. */
export function recordChangeTimes(entry: Pick<AuditEntry, (typeof CHANGE_TIME_KEYS)[number]>, user: ChannelUser): void {
  for (const key of CHANGE_TIME_KEYS) {
    const time = changeTime(user[key]);
    if (time !== undefined) entry[key] = time;
  }
}
