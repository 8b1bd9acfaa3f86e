// Domain types shared by the source reader, the Channel Talk client, the decision rules, the
// replay sender and the audit log. Pure (constants and one type guard), so workflows may import them.

/** What the customer stored for one member (a row of the member source). null = empty/missing. */
export interface StoredMember {
  memberId: string;
  mobileNumber: string | null;
  email: string | null;
  unsubscribeEmail: boolean | null;
  unsubscribeTexting: boolean | null;
}

/** One data row of the source, after parsing: either a member to check or a reason to skip it. */
export type SourceEntry =
  { line: number; member: StoredMember; planned?: PlannedDecision } | { line: number; memberId?: string; skip: string };

/**
 * One entry of a verify run's work set (src/source/verify-selection.ts): a member an earlier run replayed, with
 * `repair` what that run delivered. `line` is the earlier run's line of the member (both audit logs join on it),
 * `exportLine` the row's line in the fresh export; a member the export no longer holds is `absent` (no export line,
 * its stored values null). The fresh export's row may be unreadable (`skip`).
 */
export type VerifyEntry = { line: number; repair: RepairRecord; exportLine?: number } & (
  { member: StoredMember; absent?: true } | { memberId?: string; skip: string }
);

/** What a work set holds, one per line: the source's entries (a repair, a dry run) or a verify run's. */
export type WorkEntry = SourceEntry | VerifyEntry;

/** Whether a work entry is a verify run's (it carries the repair it checks). */
export const isVerifyWorkEntry = (entry: WorkEntry): entry is VerifyEntry => 'repair' in entry;

/** What the earlier run delivered for a member, from its audit log (field names and times only). */
export interface RepairRecord {
  event: 'upsert' | 'delete';
  /** upsert: the fields it found different. */
  fields?: ComparedField[];
  /** delete: not-found | unified. */
  reason?: string;
  /** When the replay was delivered (epoch ms): the repair entry's `ts`. */
  deliveredAt: number;
}

/** What a dry run decided for a member; a run from that plan replays it only if it still holds. */
export interface PlannedDecision {
  action: 'upsert' | 'delete';
  fields?: ComparedField[];
  reason?: string;
}

/** The fields the outage left stale; the only ones compared. */
export const COMPARED_FIELDS = ['mobileNumber', 'email', 'unsubscribeEmail', 'unsubscribeTexting'] as const;
export type ComparedField = (typeof COMPARED_FIELDS)[number];

/**
 * The member row: its id and the compared fields (CSV header names, JSONL keys, PostgreSQL column names). The only
 * list of them; a fifth compared field added to COMPARED_FIELDS is a column of every source.
 */
export const MEMBER_COLUMNS = ['memberId', ...COMPARED_FIELDS] as const;
export type MemberColumn = (typeof MEMBER_COLUMNS)[number];

/**
 * A Channel Talk user exactly as returned by `GET /open/v5/users/@{memberId}` (`body.user`): every key and every
 * `null` kept, since a replay's `entity` is this object. The fields the repair decides on are checked
 * (src/channel/user-schema.ts) and typed here; the change times are read only through `changeTime`
 * (src/domain/change-time.ts: finite numbers), since Channel Talk may send null or anything there.
 */
export interface ChannelUser {
  type?: string | null;
  mobileNumber?: string | null;
  email?: string | null;
  unsubscribeEmail?: boolean | null;
  unsubscribeTexting?: boolean | null;
  profile?: Record<string, unknown> | null;
  updatedAt?: unknown;
  unsubscribeEmailUpdatedAt?: unknown;
  unsubscribeTextingUpdatedAt?: unknown;
  [key: string]: unknown;
}

/** The outcome of looking a member up, after the client's own retries. */
export type FetchResult =
  | { kind: 'found'; user: ChannelUser; attempts: number }
  | { kind: 'not-found'; status: number; attempts: number }
  | { kind: 'failed'; reason: string; attempts: number };

/** What the repair must do for one member. Carries field names only, never values. */
export type Decision =
  | { action: 'upsert'; fields: ComparedField[] }
  | { action: 'delete'; reason: 'not-found' | 'unified' }
  | { action: 'unchanged' }
  /** A difference `onlyChangedSince` leaves alone: it predates the outage. */
  | { action: 'skipped'; fields: ComparedField[]; reason: string }
  | { action: 'failed'; reason: string };

export type WebhookEvent = 'upsert' | 'delete';

/**
 * A registered Channel Talk webhook a member's replay was routed to (target "channel-webhooks"), by id and name
 * only: never its URL or token. `skipped` says why a webhook subscribed to the change got nothing.
 */
export interface WebhookRoute {
  id: string;
  name?: string;
  skipped?: 'blocked' | 'api-version';
}

/**
 * One scope's delivery of a member's replay (WEBHOOK_EVENT_NAMES=scopes), as its audit entry records it: the body's
 * `event` (the scope), the delivery's webhook-id, and how many endpoints it went (in a dry run: would go) to.
 */
export interface ScopeDelivery {
  event: string;
  webhookId: string;
  endpoints: number;
}

/**
 * The result of replaying one member to the customer's endpoint(s). `webhooks`: where a channel-webhooks target routed
 * it; `deliveries`: with WEBHOOK_EVENT_NAMES=scopes, the member's deliveries per scope.
 */
export type SendResult =
  | { kind: 'delivered'; status: number; webhooks?: WebhookRoute[]; deliveries?: ScopeDelivery[] }
  | {
      kind: 'retryable';
      status?: number;
      retryAfterMs?: number;
      reason: string;
      webhooks?: WebhookRoute[];
      deliveries?: ScopeDelivery[];
    }
  | { kind: 'rejected'; status: number; reason: string; webhooks?: WebhookRoute[]; deliveries?: ScopeDelivery[] };

/**
 * The one recorded outcome of a source row: the only list of outcome names. The order is part of the audit
 * store's format (a line's stored code is its index + 1, src/audit/audit-entry.ts): append, never reorder.
 */
export const OUTCOMES = ['upsert', 'delete', 'unchanged', 'failed', 'skipped'] as const;
export type OutcomeKind = (typeof OUTCOMES)[number];
