// The rule for a replay that waited (issue 23): a deferred replay, a delete the delete guard held back, anything
// that waited through a pause or a crash. Channel Talk's own webhooks flow again while a repair runs, so the member
// may have changed since its lookup: it is looked up again and decided again against the stored row, and the fresh
// decision is what is sent. Pure, like decide.ts, and built on it, so the guarantees are decide's own:
// - a delete is sent only for a user Channel Talk answers 404 for or has unified, never for a live member;
// - an upsert only for a live member, never after a 404, and with the fresh user as its entity;
// - nothing when the member no longer differs (or `onlyChangedSince` now skips it).
import { compareMember, decide, userAsStored, type DecideOptions } from './decide';
import { describeDecision } from './plan-drift';
import type { ChannelUser, ComparedField, Decision, FetchResult, StoredMember, WebhookEvent } from './types';

/** What the waiting replay would have sent: its event, the decision behind it, and the user it carries, if any. */
export interface WaitingReplay {
  event: WebhookEvent;
  /** upsert: the fields that differed at the first lookup. */
  fields?: readonly ComparedField[];
  /** delete: not-found | unified. */
  reason?: string;
  /** The user of the first lookup (an upsert's entity, a unified user's delete); absent after a 404. */
  user?: ChannelUser;
}

export interface Redecision {
  /** The fresh decision: what is sent now (upsert, delete) or recorded without a send (unchanged, skipped, failed). */
  decision: Decision;
  /** Channel Talk changed the member between the two lookups: the decision changed, or the compared values did. */
  changed: boolean;
  /** For the audit line, field names only: `upsert [email] -> delete (not-found)`, `upsert [email]: email changed`. */
  change?: string;
}

/** The waiting replay's decision, as decide() would have said it. */
function waitingDecision(w: WaitingReplay): Decision {
  if (w.event === 'delete') return { action: 'delete', reason: w.reason === 'unified' ? 'unified' : 'not-found' };
  return { action: 'upsert', fields: [...(w.fields ?? [])] };
}

/**
 * The fresh decision for a member whose replay waited, from a new lookup. A lookup that failed decides nothing
 * (`failed`, `changed` false): the caller keeps the replay unsent and tries again later.
 */
export function redecide(
  waiting: WaitingReplay,
  stored: StoredMember,
  fresh: FetchResult,
  opts: DecideOptions = {},
): Redecision {
  const decision = decide(stored, fresh, opts);
  if (decision.action === 'failed') return { decision, changed: false };
  const before = describeDecision(waitingDecision(waiting));
  const now = describeDecision(decision);
  if (before !== now) return { decision, changed: true, change: `${before} -> ${now}` };
  // Same decision: the values may still have moved (an upsert of a new email, a unified user's new fields).
  if (fresh.kind === 'found' && waiting.user) {
    const moved = compareMember(userAsStored(stored.memberId, waiting.user), fresh.user, opts);
    if (moved.length > 0) return { decision, changed: true, change: `${now}: ${moved.join(', ')} changed` };
  }
  return { decision, changed: false };
}
