// The repair's decision rules, from the incident notice: 404 or a "unified" user means the user was
// deleted; otherwise any difference in the four stale fields means an upsert was missed.
// Pure: no I/O, so it can run anywhere (activity or workflow) and be tested exhaustively.
import { COMPARED_FIELDS } from './types';
import type { ChannelUser, ComparedField, Decision, FetchResult, StoredMember } from './types';
import { normalizePhone, type CountryCode } from './phone';

export interface DecideOptions {
  /** Region assumed for stored phone numbers written without a country code. Default 'KR'. */
  defaultRegion?: CountryCode;
  /** The `user.type` that marks a user merged into another one (treated as deleted). Default 'unified'. */
  unifiedType?: string;
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

function samePhone(stored: string | null, channel: string | null, region: CountryCode): boolean {
  // Normalising is deterministic, so equal text needs no parsing (libphonenumber is ~10% of a run's CPU).
  if ((stored?.trim() ?? '') === (channel?.trim() ?? '')) return true;
  return normalizePhone(stored, region) === normalizePhone(channel, region);
}

/** The compared fields whose stored value differs from Channel Talk's, in COMPARED_FIELDS order. */
export function compareMember(stored: StoredMember, user: ChannelUser, opts: DecideOptions = {}): ComparedField[] {
  const region = opts.defaultRegion ?? DEFAULT_REGION;
  const equal: Record<ComparedField, boolean> = {
    mobileNumber: samePhone(stored.mobileNumber, userText(user, 'mobileNumber'), region),
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
      return fields.length > 0 ? { action: 'upsert', fields } : { action: 'unchanged' };
    }
  }
}
