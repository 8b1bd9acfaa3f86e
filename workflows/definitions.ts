// The workflow's public interface, defined once and shared by the workflow, the client scripts and
// the tests. Users script against these names from the Temporal CLI: keep them stable.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Counters, FieldCounts } from '../src/domain/counters';
import type { MemberColumn, OutcomeKind } from '../src/domain/types';
import type { GuardCounts, GuardStatus } from '../src/domain/delete-guard';
import type { VerdictCounts, VerifyCounters } from '../src/domain/verdicts';

export const WORKFLOW_TYPE = 'backfillWebhooks';
/**
 * The failure type of a replay that found the webhook endpoint down for every member (src/webhook/receiver-health.ts):
 * the run goes into its "receiver unavailable" state. Details: `[{ since: ISO time }]`.
 */
export const RECEIVER_UNAVAILABLE = 'ReceiverUnavailable';
export const DEFAULT_TASK_QUEUE = 'webhook-backfill';

/** `temporal workflow signal --name pause [--input '"why"']`: no new fetch or replay starts until resume. */
export const pauseSignal = defineSignal<[reason?: string]>('pause');
/**
 * `temporal workflow signal --name resume [--input '{"confirmDeletes": true}']`. A run the delete guard paused
 * stays paused on a plain resume; `confirmDeletes` lets its deletes go for the rest of the run.
 */
export const resumeSignal = defineSignal<[options?: ResumeOptions]>('resume');
export interface ResumeOptions {
  confirmDeletes?: boolean;
}
/**
 * Pause and resume acknowledged: the same effect as the signals, answered with what actually happened
 * (`webhook-backfill pause|resume`, `temporal workflow update execute --name pause|resume [--input ...]`). An
 * argument that is not what the signal takes is rejected before it reaches the run (nothing recorded).
 */
// The argument is required in the type (the client's typing has no optional update arguments): pass null for none.
// `temporal workflow update execute` without --input sends none, which the run reads the same.
export const pauseUpdate = defineUpdate<ControlAnswer, [reason: string | null]>('pause');
export const resumeUpdate = defineUpdate<ControlAnswer, [options: ResumeOptions | null]>('resume');
export interface ControlAnswer {
  /**
   * `paused`: this call paused the run (before the preparation ends: as soon as it ends); `already-paused`;
   * `resumed`; `already-running`; `still-paused`: the delete guard keeps it paused (`pauseReason` says why).
   */
  outcome: 'paused' | 'already-paused' | 'resumed' | 'already-running' | 'still-paused';
  paused: boolean;
  pauseReason: string | null;
  /** This resume confirmed the deletes the delete guard held back (not an earlier one). */
  deletesConfirmed?: boolean;
  /** The delete guard's counts when it is on (as in `progress`). */
  deleteGuard?: Progress['deleteGuard'];
}
/** `temporal workflow query --name progress`. */
export const progressQuery = defineQuery<Progress>('progress');

/**
 * Search attributes a run keeps current, to filter runs in the Web UI (e.g. `BackfillStatus = "paused"`).
 * The project's dev server registers them; on another cluster: `temporal operator search-attribute create`.
 */
export const SEARCH_ATTRIBUTES = {
  BackfillStatus: 'Keyword',
  BackfillProcessed: 'Int',
  BackfillFailed: 'Int',
} as const;

export type SourceType = 'csv' | 'jsonl' | 'postgres' | 'mysql';
export type { MemberColumn };
/** A CSV or JSONL file on the workers' storage. */
export interface FileSourceSpec {
  type: 'csv' | 'jsonl';
  path: string;
}
/**
 * A PostgreSQL table (or `schema.table`), or a SELECT whose result holds the five columns. The
 * connection string is the workers' BACKFILL_DATABASE_URL, never part of the input.
 */
export interface PostgresSourceSpec {
  type: 'postgres';
  table?: string;
  query?: string;
  /** Column (of the table or of the query's result) holding each value; by default its own name. */
  columns?: Partial<Record<MemberColumn, string>>;
}
/**
 * A MySQL or MariaDB table (or `database.table`). The connection string is the workers' BACKFILL_MYSQL_URL, never
 * part of the input.
 */
export interface MysqlSourceSpec {
  type: 'mysql';
  table: string;
  /** Column holding each value; by default its own name. */
  columns?: Partial<Record<MemberColumn, string>>;
}
export type SourceSpec = FileSourceSpec | PostgresSourceSpec | MysqlSourceSpec;
export type ReplayTargetSpec = { type: 'url' } | { type: 'channel-webhooks' };
export interface OnlySpec {
  auditPath: string;
  outcomes: OutcomeKind[];
}

/** The one JSON argument of `backfillWebhooks`, as users write it. Validated by the first activity. */
export interface BackfillInput {
  source: SourceSpec;
  dryRun?: boolean;
  batchSize?: number;
  /** Names the webhook ids; defaults to the workflow id. Reuse it to re-run with the same ids. */
  runLabel?: string;
  /** Batches in flight at once; the API rate budget is split between them. */
  parallelBatches?: number;
  /** Requests/s for this run; the worker's CHANNEL_RATE_LIMIT still caps it. */
  rateLimit?: number;
  /** History length at which the run continues as new (Temporal's hard limit is far above). */
  maxHistoryEvents?: number;
  /** Attempts of a replay that the batch handed to its own per-member activity. */
  replayMaxAttempts?: number;
  /** How long a batch may go without a heartbeat before Temporal gives it to another worker. */
  batchHeartbeatSeconds?: number;
  /** The longest wait between a batch's attempts (doubling from 1 s); default 30. */
  batchMaxBackoffSeconds?: number;
  /** How long one attempt of a replay may run (a crashed worker's replay waits this long); default 120. */
  replayAttemptTimeoutSeconds?: number;
  /** The longest wait between a replay's attempts (doubling from 1 s; a Retry-After still wins); default 30. */
  replayMaxBackoffSeconds?: number;
  /** How long the webhook endpoint may be down for everyone before the run pauses itself (default 24 h). */
  receiverOutagePauseSeconds?: number;
  /** Where the audit log goes; by default under the worker's BACKFILL_DATA_DIR. */
  auditPath?: string;
  /** Where replays go: the workers' WEBHOOK_URL (default) or the channel's registered webhooks. */
  target?: ReplayTargetSpec;
  /** Only the members an earlier run recorded with these outcomes, e.g. retry the failed ones. */
  only?: OnlySpec;
  /** Only the members a dry run planned to replay (its audit log); each is re-checked first. */
  fromPlan?: { auditPath: string };
  expectChannelId?: string;
  maxDeleteShare?: number;
  deleteGuardMinDecisions?: number;
  onlyChangedSince?: string; // issue 9
  /** Check an earlier run's delivered replays against a fresh export in `source` (a dry run: never replays). */
  verifyAfter?: VerifySpec;
  /**
   * Written by the workflow itself when it continues as new. A run a client starts with it fails at once
   * (`InvalidInput`, workflows/carried-origin.ts): it would skip every check of the preparation.
   */
  carried?: CarriedState;
}

/** BackfillInput with every default applied. */
export interface BackfillOptions {
  source: SourceSpec;
  dryRun: boolean;
  batchSize: number;
  runLabel: string;
  parallelBatches: number;
  rateLimit: number | null;
  maxHistoryEvents: number;
  replayMaxAttempts: number;
  batchHeartbeatSeconds: number;
  /** Absent unless given: the workflow's defaults (workflows/backfill.ts) apply. */
  batchMaxBackoffSeconds?: number;
  replayAttemptTimeoutSeconds?: number;
  replayMaxBackoffSeconds?: number;
  /** Absent in runs prepared before it: the default (RECEIVER_OUTAGE_PAUSE_SECONDS) applies. */
  receiverOutagePauseSeconds?: number;
  target: ReplayTargetSpec;
  only: OnlySpec | null;
  fromPlan: { auditPath: string } | null;
  maxDeleteShare?: number;
  deleteGuardMinDecisions?: number;
  onlyChangedSince?: string | null; // issue 9 (safety parses them)
  /** A verify run (issue 15): absent on every other run. */
  verifyAfter?: VerifySpec;
}

/** `verifyAfter`: the audit log of the run whose replays are checked; clockSkewMs: see src/domain/verdict.ts. */
export interface VerifySpec {
  auditPath: string;
  clockSkewMs?: number;
}

/** Files of one backfill on the workers' storage. Paths only: contents never enter history. */
export interface BackfillPaths {
  dir: string;
  workFile: string;
  auditPath: string;
  pendingDir: string;
}

export type { Counters, FieldCounts };

export interface PreparedBackfill {
  options: BackfillOptions;
  paths: BackfillPaths;
  rows: number;
  batches: number;
  /** Whether the cluster has the Backfill* search attributes registered (else they are not set). */
  searchAttributes?: boolean;
  /** The channel the workers' credentials open (GET /open/v5/channel), checked before any lookup. */
  channel?: { id: string; name: string | null };
  /** How the Web UI names the source (its kind's describe; absent in runs prepared before). */
  sourceLabel?: string;
  /**
   * The source is longer than the first batches and its rest is still being normalised (normaliseSource, patch
   * 'prepare-overlap-v1'): until it completes, `rows` and `batches` count only what the preparation read (a lower
   * bound), batches are launched without an end and each waits for its rows. Absent: the work set is whole.
   */
  normalising?: true;
}

/** What normaliseSource returns once the whole source is in the work set: the run's real totals. */
export interface NormalisedSource {
  rows: number;
  batches: number;
}

/** A member whose replay waits in its own activity (its payload is on the workers' disk). */
export interface DeferredReplay {
  line: number;
  memberId: string;
  /** The batch that reported it (set by the workflow; absent in states carried by older runs). */
  batch?: number;
  /** A delete the delete guard holds back: not sent, its replay waits until the guard releases it. */
  held?: boolean;
}

export interface BatchResult {
  batch: number;
  /** false: the batch stopped early (pause or bad credentials) and must run again; nothing is counted. */
  complete: boolean;
  /** Launched while the source was still being normalised, the batch lies beyond its end: it had no rows. */
  beyondEnd?: true;
  stopReason?: 'cancelled' | 'bad-credentials' | 'receiver-unavailable';
  /** With stopReason 'receiver-unavailable': since when the endpoint has been down for everyone (ISO time). */
  receiverUnavailableSince?: string;
  /**
   * Counts of the batch's recorded outcomes, excluding deferred members (they count themselves). A verify batch's
   * are its verdicts under their outcomes (src/domain/verdicts.ts runCountersOf): what release 1.0's verify batches
   * returned and its workflow code reads; this release reads `verify`.
   */
  counts: Counters;
  /** A verify batch's own counters (verifyBatch; absent from repairs, and from verify batches of release 1.0). */
  verify?: VerifyCounters;
  deferred: DeferredReplay[];
  /** Delete guard (complete batches only): decisions and deletes over all the batch's lines, held ones included. */
  decided?: GuardCounts;
  /** The channel's rate limit as the batch's worker saw it at the batch's end (absent: older workers). */
  channelPace?: ChannelPace;
}

/**
 * The Channel Talk rate limit as a worker last saw it (src/channel/channel-pacer.ts), and what one batch met of it:
 * `rateLimited`, `warnings` and `waitedMs` count during that batch (the run's progress sums them).
 */
export interface ChannelPace {
  /** The worker's requests per second at that moment. */
  ratePerSecond: number;
  /** x-ratelimit-limit and x-ratelimit-remaining as last seen; null when the API sent none. */
  limit: number | null;
  remaining: number | null;
  /** The pacer was holding back to leave the reserve to the channel's other traffic. */
  givingWay: boolean;
  rateLimited: number;
  /** Answers with x-ratelimit-will-be-throttled: true (the grace period). */
  warnings: number;
  /** Time lookups spent waiting for the pacer, summed over lookups. */
  waitedMs: number;
  /**
   * In a batch's result: the worker's pacer whose totals these are (cumulative since it started); the run's view
   * sums the latest totals of each pacer and has none.
   */
  pacer?: string;
}

/**
 * What a running batch heartbeats (activities/heartbeat-pace.ts says when): members done so far, since when a store
 * write waits, and its worker's pace now (the Web UI shows it with the pending activity; `status` reads it live,
 * src/cli/live-pace.ts).
 */
export interface BatchHeartbeat {
  done: number;
  storeUnavailableSince?: string;
  pace?: LivePace;
}

/** A worker's pace now (its pacer's id: two batches on one worker report the same pacer). */
export type LivePace = Pick<ChannelPace, 'ratePerSecond' | 'limit' | 'remaining' | 'givingWay'> & { pacer: string };

export interface DeferredResult {
  line: number;
  /** unchanged, skipped: the member was looked up again before the replay and no longer needed it (issue 23). */
  outcome: 'upsert' | 'delete' | 'failed' | 'unchanged' | 'skipped';
  fields?: (keyof FieldCounts)[];
  /** Channel Talk changed the member during the repair (seen when it was looked up again before the replay). */
  changedDuringRepair?: boolean;
}

export interface CarriedState {
  prepared: PreparedBackfill;
  nextBatch: number;
  redo: number[];
  batchesDone: number;
  /** A repair's (or dry run's) counters; zero in a verify run, which counts in `verify`. */
  counters: Counters;
  /**
   * A verify run's counters (absent on every other run, and in the state a 1.0 verify run carried over, which held
   * them in `counters`: BackfillState reads them from there).
   */
  verify?: VerifyCounters;
  deferred: DeferredReplay[];
  paused: boolean;
  pauseReason: string | null;
  runs: number;
  /**
   * Deferred lines whose replay result is already counted while the batch that reported them has not completed:
   * a later attempt of that batch may report them as deferred again (it read the pending list before the replay
   * settled), and they must not be counted twice. Bounded: entries leave when their batch completes.
   */
  countedReplays?: { line: number; batch: number }[];
  /** The delete guard's counts over completed batches, and when deletes were confirmed (absent: older runs). */
  guard?: GuardCounts & { confirmedAt?: string };
  /**
   * The webhook endpoint is down for every member, since then (ISO time): no batch starts, one waiting replay
   * probes it, and the run pauses itself after receiverOutagePauseSeconds. Absent while it answers.
   */
  receiverDown?: {
    since: string;
    /** Already in the audit log as a wait (the run paused itself for it): a resume does not record it again. */
    recorded?: boolean;
  };
  /** The rate limit as last reported by a batch, its 429s, warnings and waits summed over pacers (issue 24). */
  channelPace?: ChannelPace;
  /** Each worker pacer's latest totals (a batch reports its worker's, cumulative): what channelPace sums. */
  paceTotals?: Record<string, PaceTotals>;
}

export type PaceTotals = Pick<ChannelPace, 'rateLimited' | 'warnings' | 'waitedMs'>;

export interface Progress extends Counters {
  total: number;
  /** The source is still being read beside the batches: `total` and `batchesTotal` count only the rows read so far. */
  readingSource?: true;
  batchesDone: number;
  batchesTotal: number;
  pendingReplays: number;
  paused: boolean;
  pauseReason: string | null;
  dryRun: boolean;
  /** Runs in the continue-as-new chain so far, this one included. */
  runs: number;
  auditPath: string | null;
  /** The channel the workers' credentials open; null before the preparation (and for runs prepared before the check). */
  channel?: { id: string; name: string | null } | null;
  done: boolean;
  /** A verify run's verdict counts (absent on every other run); the counters beside them hold them as outcomes. */
  verify?: VerdictCounts;
  /** The delete guard (absent in dry runs and older runs): counts so far, deletes held back, its status. */
  deleteGuard?: GuardCounts & { held: number; status: GuardStatus; confirmedAt: string | null };
  /** Only while the webhook endpoint is down for everyone: since when, and the replays that wait for it. */
  receiverUnavailable?: { since: string; waitingReplays: number };
  /** The channel's rate limit as last seen by a batch, with the run's 429s, grace warnings and waits so far. */
  channelPace?: ChannelPace;
}

export interface BackfillResult extends Counters {
  total: number;
  dryRun: boolean;
  /** The channel's rate limit as last seen, with the run's 429s, grace warnings and waits (absent: none seen). */
  channelPace?: ChannelPace;
  runs: number;
  auditPath: string;
  /** A verify run's verdict counts (absent on every other run); the counters beside them hold them as outcomes. */
  verify?: VerdictCounts;
}
