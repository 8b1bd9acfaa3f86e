// The repair's decision rules, from the incident notice: 404 or a "unified" user means the user was
// deleted; otherwise any difference in the four stale fields means an upsert was missed.
// Pure: no I/O, so it can run anywhere (activity or workflow) and be tested exhaustively.
import { COMPARED_FIELDS } from './types';
import type { ChannelUser, ComparedField, Decision, FetchResult, StoredMember } from './types';
import { samePhoneNumber, type CountryCode } from './phone';
import { changeTime, type ChangeTimes } from './change-time';

export interface DecideOptions {
  /** Region assumed for stored phone numbers written without a country code. Default 'KR'. */
  defaultRegion?: CountryCode;
  /** The `user.type` that marks a user merged into another one (treated as deleted). Default 'unified'. */
  unifiedType?: string;
  /**
   * `onlyChangedSince` (epoch ms, and the text the user gave for the reason): an upsert whose every differing
   * field was last changed on Channel Talk's side before it is skipped, since the outage cannot have hidden it.
   */
  onlyChangedSince?: { time: number; text: string };
}

/**
 * When Channel Talk last changed a field: the consent flags have their own change times (falling back to
 * `updatedAt` when absent); contact fields only `updatedAt`, the latest change of anything.
 */
export function fieldChangeTime(times: ChangeTimes, field: ComparedField): number | undefined {
  if (field === 'unsubscribeEmail') return changeTime(times.unsubscribeEmailUpdatedAt) ?? changeTime(times.updatedAt);
  if (field === 'unsubscribeTexting')
    return changeTime(times.unsubscribeTextingUpdatedAt) ?? changeTime(times.updatedAt);
  return changeTime(times.updatedAt);
}

/** Whether every differing field last changed before `since`. A field without a change time never counts as before. */
export function changedOnlyBefore(times: ChangeTimes, fields: readonly ComparedField[], since: number): boolean {
  return (
    fields.length > 0 &&
    fields.every((field) => {
      const time = fieldChangeTime(times, field);
      return time !== undefined && time < since;
    })
  );
}

/** The audit reason of an upsert that `onlyChangedSince` skips. */
export function changedBeforeReason(sinceText: string): string {
  return `differs since before ${sinceText}: not hidden by the outage`;
}

const DEFAULT_REGION: CountryCode = 'KR';
const DEFAULT_UNIFIED_TYPE = 'unified';

/** Trimmed text, or null for anything empty, whitespace-only, missing or not a string. */
function text(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const trimmed = value.trim();
  return trimmed === '' ? null : trimmed;
}

/** A consent flag: only an explicit true counts as unsubscribed; missing/null mean "never unsubscribed". */
function flag(value: unknown): boolean {
  return value === true;
}

/** The top-level value, or the profile's when the top-level one is missing or empty (the notice says they match). */
function userText(user: ChannelUser, key: 'mobileNumber' | 'email'): string | null {
  return text(user[key]) ?? text(user.profile?.[key]);
}

function sameEmail(stored: string | null, channel: string | null): boolean {
  return (text(stored)?.toLowerCase() ?? null) === (channel?.toLowerCase() ?? null);
}

/** A user's compared values as a stored row would hold them: to compare two lookups of one member. */
export function userAsStored(memberId: string, user: ChannelUser): StoredMember {
  return {
    memberId,
    mobileNumber: userText(user, 'mobileNumber'),
    email: userText(user, 'email'),
    unsubscribeEmail: flag(user.unsubscribeEmail),
    unsubscribeTexting: flag(user.unsubscribeTexting),
  };
}

/** The compared fields whose stored value differs from Channel Talk's, in COMPARED_FIELDS order. */
export function compareMember(stored: StoredMember, user: ChannelUser, opts: DecideOptions = {}): ComparedField[] {
  const region = opts.defaultRegion ?? DEFAULT_REGION;
  const equal: Record<ComparedField, boolean> = {
    mobileNumber: samePhoneNumber(stored.mobileNumber, userText(user, 'mobileNumber'), region),
    email: sameEmail(stored.email, userText(user, 'email')),
    unsubscribeEmail: flag(stored.unsubscribeEmail) === flag(user.unsubscribeEmail),
    unsubscribeTexting: flag(stored.unsubscribeTexting) === flag(user.unsubscribeTexting),
  };
  return COMPARED_FIELDS.filter((field) => !equal[field]);
}

/** What the repair must do for one member, given what the lookup returned. Never carries values. */
export function decide(stored: StoredMember, fetched: FetchResult, opts: DecideOptions = {}): Decision {
  switch (fetched.kind) {
    case 'not-found':
      return { action: 'delete', reason: 'not-found' };
    case 'failed':
      return { action: 'failed', reason: fetched.reason };
    case 'found': {
      // A unified user was merged away: its memberId is gone, whatever its fields say.
      if (fetched.user.type === (opts.unifiedType ?? DEFAULT_UNIFIED_TYPE)) {
        return { action: 'delete', reason: 'unified' };
      }
      const fields = compareMember(stored, fetched.user, opts);
      if (fields.length === 0) return { action: 'unchanged' };
      const since = opts.onlyChangedSince;
      if (since && changedOnlyBefore(fetched.user, fields, since.time)) {
        return { action: 'skipped', fields, reason: changedBeforeReason(since.text) };
      }
      return { action: 'upsert', fields };
    }
  }
}
