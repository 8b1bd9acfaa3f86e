// The verdict of a verify run for one member: did the earlier run's replay really change the customer's data?
// Pure, like decide.ts (and built on its comparison), so every case is a row of a table test.
export type { RepairRecord } from './types';
import { compareMember, fieldChangeTime, type DecideOptions } from './decide';
import type { ComparedField, FetchResult, RepairRecord, StoredMember } from './types';
import type { Verdict } from './verdicts';
import { changeTime } from './change-time';

export interface VerifyOptions extends DecideOptions {
  /**
   * Channel Talk's change times come from its clocks, the delivery time from the worker's: a change time later
   * than `deliveredAt - clockSkewMs` counts as after the repair. Default 0 (see docs/channel-talk-unconfirmed.md).
   */
  clockSkewMs?: number;
}

/** A verdict with what explains it: field names and reasons, never values. Each of VERDICTS is one variant. */
export type VerdictResult = { verdict: Verdict } & (
  | { verdict: 'repaired' }
  | { verdict: 'still differs'; fields: ComparedField[]; reason?: string }
  | { verdict: 'still present'; reason: string }
  | { verdict: 'changed since'; fields?: ComparedField[]; reason: string }
  | { verdict: 'failed'; reason: string }
);

const DEFAULT_UNIFIED_TYPE = 'unified';

/**
 * The member's verdict. `stored` is its row in the fresh export, undefined when the export no longer holds it.
 * - upsert: now equal -> repaired; the fields still differing -> still differs, except those Channel Talk changed
 *   after the delivery (when every differing field did -> changed since); the user deleted or unified on Channel
 *   Talk's side since (the repair saw it live) -> changed since; absent from the export -> still differs (the
 *   repaired fields: the customer's webhook logic dropped the member instead of updating it).
 * - delete: absent from the export and gone from Channel Talk -> repaired; still in the export -> still present;
 *   Channel Talk has a live, non-unified user again: changed since when anything of it (createdAt, updatedAt, a
 *   consent time) is later than the delivery, else still present (in the export) or still differs (absent: the
 *   fields the live user has that the customer no longer stores).
 * - a lookup that failed -> failed.
 */
export function verdict(
  repair: RepairRecord,
  stored: StoredMember | undefined,
  fetched: FetchResult,
  opts: VerifyOptions = {},
): VerdictResult {
  if (fetched.kind === 'failed') return { verdict: 'failed', reason: fetched.reason };
  const since = repair.deliveredAt - (opts.clockSkewMs ?? 0);
  const after = (t: number | undefined) => t !== undefined && t > since;
  const gone: string | undefined =
    fetched.kind === 'not-found'
      ? 'not-found'
      : fetched.user.type === (opts.unifiedType ?? DEFAULT_UNIFIED_TYPE)
        ? 'unified'
        : undefined;

  if (repair.event === 'delete') {
    if (gone !== undefined) {
      return stored === undefined
        ? { verdict: 'repaired' }
        : { verdict: 'still present', reason: `the export still holds a member Channel Talk has deleted (${gone})` };
    }
    if (fetched.kind !== 'found') throw new Error('unreachable: a live user without a lookup');
    const { user } = fetched;
    const times = [user.createdAt, user.updatedAt, user.unsubscribeEmailUpdatedAt, user.unsubscribeTextingUpdatedAt];
    if (times.some((t) => after(changeTime(t))))
      return { verdict: 'changed since', reason: 'Channel Talk has a live user again, changed after the delete' };
    if (stored !== undefined)
      return { verdict: 'still present', reason: 'Channel Talk now has a live user, not changed since the delete' };
    const empty: StoredMember = {
      memberId: '',
      mobileNumber: null,
      email: null,
      unsubscribeEmail: null,
      unsubscribeTexting: null,
    };
    return {
      verdict: 'still differs',
      fields: compareMember(empty, user, opts),
      reason: 'deleted from the export, but Channel Talk has a live user not changed since the delete',
    };
  }

  if (gone !== undefined)
    return { verdict: 'changed since', reason: `deleted on Channel Talk's side since the repair (${gone})` };
  if (fetched.kind !== 'found') throw new Error('unreachable: a live user without a lookup');
  if (stored === undefined)
    return { verdict: 'still differs', fields: [...(repair.fields ?? [])], reason: 'absent from the export' };
  const differing = compareMember(stored, fetched.user, opts);
  if (differing.length === 0) return { verdict: 'repaired' };
  const changed = differing.filter((field) => after(fieldChangeTime(fetched.user, field)));
  const reason = `Channel Talk changed ${changed.join(', ')} after the repair was delivered`;
  if (changed.length === differing.length) return { verdict: 'changed since', fields: differing, reason };
  const stale = differing.filter((field) => !changed.includes(field));
  return { verdict: 'still differs', fields: stale, ...(changed.length > 0 ? { reason } : {}) };
}
