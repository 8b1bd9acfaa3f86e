// What every batch activity does around its members (processBatch repairs them, verifyBatch checks an earlier
// repair): load the batch and what an earlier attempt already did with it, write the outcomes behind, heartbeat
// (as often as a pause and liveness need: activities/heartbeat-pace.ts),
// stop on cancel or bad credentials, take the run's share of the rate budget and the worker's pacer, and count
// what the audit log holds once the members are done.
import { setMaxListeners } from 'node:events';
import { Context } from '@temporalio/activity';
import type { AuditEntry, AuditRecord } from '../src/audit/audit-entry';
import type { AuditStore } from '../src/audit/audit-store';
import type { PendingLines, PendingStore } from '../src/audit/pending-store';
import { BadCredentialsError } from '../src/channel/errors';
import type { ChannelPacer, PacerSnapshot } from '../src/channel/channel-pacer';
import { createRateLimiter, type RateLimiter } from '../src/channel/rate-limiter';
import type { WorkEntry } from '../src/domain/types';
import { zeroCounters } from '../src/domain/counters';
import type { JobMetrics } from '../src/observability';
import type { WorkStore } from '../src/store/work-store';
import type {
  BackfillOptions,
  BackfillPaths,
  BatchHeartbeat,
  BatchResult,
  ChannelPace,
  LivePace,
} from '../workflows/definitions';
import { HeartbeatPace, TICK_MS } from './heartbeat-pace';
import type { PauseNotices } from './pause-notices';
import { createStoreGate, recordStoreWaits, type StoreGate } from './store-outage';

/** What a batch activity is given: which batch of which run, and its share of the run's rate budget. */
export interface BatchFrame {
  batch: number;
  backfill: string;
  options: BackfillOptions;
  paths: BackfillPaths;
  /** Batches the workflow runs at once: this batch gets 1/share of the API rate budget. */
  share: number;
  /** The work set is still being written (PreparedBackfill.normalising): wait for this batch's rows first. */
  awaitRows?: true;
}

export interface BatchFrameDeps {
  audit: AuditStore;
  pending: PendingStore;
  work: WorkStore;
  metrics: JobMetrics;
  memberConcurrency: number;
  workerRateLimit: number | undefined;
  /** The worker's pacer (src/channel/channel-pacer.ts): the batch joins it with its share of the run. */
  pacer?: ChannelPacer;
  /** Pauses of workflows that this worker ran (activities/pause-notices.ts): the batch then heartbeats at once. */
  pauseNotices?: PauseNotices;
}

/** The batch's rows and what earlier attempts left of them: recorded outcomes, replays handed over or settled. */
export interface LoadedBatch<E extends WorkEntry> {
  entries: E[];
  lines: number[];
  recorded: Awaited<ReturnType<AuditStore['lookup']>>;
  pendingLines: PendingLines['pending'];
  settledLines: PendingLines['settled'];
}

/** How often a batch launched while the source is still being normalised looks whether its rows are written. */
const ROWS_POLL_MS = 50;
/** How often it heartbeats meanwhile (well within the batch's heartbeat timeout, so a pause reaches it). */
const ROWS_WAIT_HEARTBEAT_MS = 5_000;

/**
 * A batch launched while the source is still being normalised (`awaitRows`) waits until its rows are in the work
 * set, heartbeating; true when the source ended before this batch (its result is then `beyondEnd`, nothing done).
 * A pause cancels the wait like any batch. Without `awaitRows` (the work set was whole) it returns at once.
 */
export async function beyondTheEnd(work: WorkStore, input: BatchFrame): Promise<boolean> {
  if (!input.awaitRows || !work.batchAvailability) return false;
  const context = Context.current();
  let lastBeat = Date.now();
  for (;;) {
    const state = await work.batchAvailability(input.paths.workFile, input.options.batchSize, input.batch);
    if (state !== 'waiting') return state === 'beyond';
    if (Date.now() - lastBeat >= ROWS_WAIT_HEARTBEAT_MS) {
      context.heartbeat({ done: 0 } satisfies BatchHeartbeat);
      lastBeat = Date.now();
    }
    await context.sleep(ROWS_POLL_MS); // rejects once a cancellation (a pause) reached this attempt
  }
}

/** The result of a batch that lay beyond the end of the source: counted by nobody. */
export function beyondEndResult(batch: number): BatchResult {
  return { batch, complete: true, beyondEnd: true, counts: zeroCounters(), deferred: [] };
}

/**
 * Reads the batch, waiting through `store` for a store that is away rather than failing the attempt. Its entries
 * are narrowed to the kind the activity works on (`isKind`: a repair's source entries, a verify run's verify
 * entries); another kind in the work set is a bug, not data, and stops the attempt naming the line only.
 */
export async function loadBatch<E extends WorkEntry>(
  deps: BatchFrameDeps,
  input: BatchFrame,
  store: StoreGate,
  isKind: (entry: WorkEntry) => entry is E,
): Promise<LoadedBatch<E>> {
  const { options, paths, batch } = input;
  const work = await store.persist(() => deps.work.readBatch(paths.workFile, options.batchSize, batch));
  const entries = work.filter(isKind);
  if (entries.length !== work.length) {
    const other = work.find((entry) => !isKind(entry))!;
    throw new Error(`batch ${batch}: line ${other.line} of the work set is not an entry this activity works on`);
  }
  const lines = entries.map((e) => e.line);
  const recorded = await store.persist(() => deps.audit.lookup(paths.auditPath, lines));
  const { pending, settled } = await store.persist(() => deps.pending.lines(paths.pendingDir, lines));
  return { entries, lines, recorded, pendingLines: pending, settledLines: settled };
}

/**
 * The batch's gate on its stores (activities/store-outage.ts): a read or write the audit, pending or work store
 * cannot take (it is away, full, read-only) is retried until it can, and meanwhile no member is looked up or sent:
 * what the batch knows is kept, not redone. It logs when they go away and come back, and heartbeats while it waits
 * (a wait at the batch's first reads, before its own heartbeat starts, included).
 */
export function batchStoreGate(batch: number): StoreGate {
  const context = Context.current();
  return createStoreGate({
    signal: context.cancellationSignal,
    onUnavailable: (err) =>
      context.log.warn('audit or pending store unavailable: the batch sends nothing until it is back', {
        batch,
        code: (err as { code?: unknown }).code ?? null,
      }),
    onBack: (waitedMs) => context.log.info('audit and pending store back: the batch goes on', { batch, waitedMs }),
    whileWaiting: (since) => context.heartbeat({ storeUnavailableSince: new Date(since).toISOString() }),
  });
}

export type StopReason = NonNullable<BatchResult['stopReason']>;

/** A batch under way: its stop signal, its store gate and the outcomes it has yet to write. */
export interface BatchRun {
  /** Aborted on cancel and on bad credentials: every member in flight stops. */
  readonly signal: AbortSignal;
  readonly store: StoreGate;
  stopReason(): StopReason | undefined;
  /** Stops starting members, without aborting those in flight (the receiver is down for everyone). */
  stopStarting(reason: StopReason): void;
  /** Runs one member once the store takes writes; an interruption leaves it unrecorded, to be done again. */
  member(handle: () => Promise<void>): Promise<void>;
  /** One outcome to write behind; the member is done. */
  record(entry: AuditRecord): void;
  /** The outcome of a member already counted done (a delete it held back, sent before the batch ends). */
  recordLater(entry: AuditEntry): void;
  /** A member done without an outcome of its own here (handed over to its replay activity). */
  done(): void;
  /** Members done so far, those of earlier attempts included. */
  membersDone(): number;
  /** Stops the heartbeat and writes what is left: whatever happened, what was decided is recorded. */
  finish(): Promise<void>;
}

/**
 * Starts the batch's frame: the cancellation hooked to its stop signal, the store gate, the write-behind and the
 * heartbeat (which carries how many members are done, and since when a write waits for the store).
 */
export function startBatchRun(
  deps: Pick<BatchFrameDeps, 'audit' | 'pauseNotices' | 'pacer'>,
  input: BatchFrame,
  alreadyDone: number,
  store: StoreGate,
): BatchRun {
  const context = Context.current();
  const { batch } = input;
  const stop = new AbortController();
  // Every member in flight listens on this one signal; that is by design, not a leak.
  setMaxListeners(0, stop.signal);
  let stopReason: StopReason | undefined;
  const onCancel = () => {
    stopReason ??= 'cancelled';
    stop.abort();
  };
  context.cancellationSignal.addEventListener('abort', onCancel);
  let done = alreadyDone;
  const writer = writeBehind(store, deps.audit, input.paths.auditPath);
  const pace = new HeartbeatPace(Date.now(), done, context.info.heartbeatTimeoutMs);
  const stopListening = deps.pauseNotices?.listen(input.backfill, () => pace.hurry(Date.now()));
  const heartbeat = setInterval(() => {
    const since = store.unavailableSince();
    const storeUnavailableSince = since === undefined ? undefined : new Date(since).toISOString();
    if (pace.due(Date.now(), done, storeUnavailableSince))
      context.heartbeat(heartbeatOf(done, storeUnavailableSince, deps.pacer));
    // While a write waits for the store, the next one queues behind it. A failed write (cancelled, or an error
    // that is not the store being away) resurfaces at the final flush.
    void writer.flush().catch(() => undefined);
  }, TICK_MS);

  /** A member interrupted by bad credentials or a stop stays unrecorded (done again later); anything else throws. */
  const interrupted = (err: unknown): void => {
    if (err instanceof BadCredentialsError) {
      stopReason = 'bad-credentials';
      stop.abort();
      return;
    }
    if (stop.signal.aborted) return; // interrupted mid-request: unrecorded, so done again later
    throw err;
  };

  return {
    signal: stop.signal,
    store,
    stopReason: () => stopReason,
    stopStarting(reason) {
      stopReason ??= reason;
    },
    async member(handle) {
      if (stop.signal.aborted) return;
      try {
        // No lookup while outcomes cannot be recorded.
        await store.open();
        await handle();
      } catch (err) {
        interrupted(err);
      }
    },
    record(entry) {
      writer.add(entry);
      done++;
    },
    recordLater(entry) {
      writer.add(entry);
    },
    done() {
      done++;
    },
    membersDone: () => done,
    async finish() {
      clearInterval(heartbeat);
      stopListening?.();
      await writer.flushAfterAll();
      context.cancellationSignal.removeEventListener('abort', onCancel);
      // The times it waited for the store, in the audit log for the report (src/audit/run-wait.ts).
      await recordStoreWaits(deps.audit, input.paths.auditPath, store, { batch }, (m, meta) =>
        context.log.warn(m, meta),
      );
    },
  };
}

/**
 * Outcomes are written behind, about once a second and at the end, in one write and one sync each: waiting for the
 * disk after every member would make the disk, not the API, the limit. A crash loses at most the last second of
 * outcomes; those members are simply done again (same webhook-ids).
 */
function writeBehind(store: StoreGate, audit: AuditStore, auditPath: string) {
  const unwritten: AuditRecord[] = [];
  let writing: Promise<void> = Promise.resolve();
  const flush = () => {
    writing = writing.then(async () => {
      const chunk = unwritten.splice(0);
      if (chunk.length > 0) await store.persist(() => audit.append(auditPath, chunk));
    });
    return writing;
  };
  return {
    add: (entry: AuditRecord) => unwritten.push(entry),
    flush,
    /** The last flush, after any that failed: what is still unwritten is written now, or its error thrown. */
    flushAfterAll: () => {
      writing = writing.catch(() => undefined);
      return flush();
    },
  };
}

/** The batch's limiter: its share of the smaller of the worker's and the run's rate limits (none: unlimited). */
export function batchLimiter(deps: Pick<BatchFrameDeps, 'workerRateLimit'>, input: BatchFrame): RateLimiter {
  const rate = runRate(deps, input.options);
  return createRateLimiter(rate === undefined ? undefined : rate / Math.max(1, input.share));
}

/** The smaller of the worker's and the run's rate limits; undefined when neither sets one. */
export function runRate(deps: Pick<BatchFrameDeps, 'workerRateLimit'>, options: BackfillOptions): number | undefined {
  const run = options.rateLimit ?? undefined;
  if (deps.workerRateLimit === undefined) return run;
  if (run === undefined) return deps.workerRateLimit;
  return Math.min(deps.workerRateLimit, run);
}

/**
 * What a batch heartbeats: members done, since when a store write waits, and its worker's pace now (the lookup rate
 * live, read by `status`: src/cli/live-pace.ts).
 */
function heartbeatOf(
  done: number,
  storeUnavailableSince: string | undefined,
  pacer: ChannelPacer | undefined,
): BatchHeartbeat {
  const now = pacer?.snapshot();
  const pace: LivePace | undefined = now && {
    pacer: now.pacerId,
    ratePerSecond: Math.round(now.ratePerSecond * 10) / 10,
    limit: now.limit,
    remaining: now.remaining,
    givingWay: now.givingWay,
  };
  return { done, ...(storeUnavailableSince === undefined ? {} : { storeUnavailableSince }), ...(pace ? { pace } : {}) };
}

/** The pacer joined with the batch's share of the run; call the result when the batch ends. */
export function joinPacer(deps: Pick<BatchFrameDeps, 'pacer'>, input: BatchFrame) {
  // The pacer corrects the whole worker by this batch's part of the run (see channel-pacing.ts, weight).
  const leave = deps.pacer?.join(input.share);
  const start = deps.pacer?.snapshot();
  return { leave: () => leave?.(), pace: () => channelPace(deps, start) };
}

/**
 * The rate limit as the worker's pacer sees it now, with its 429s, warnings and waits since the pacer started: totals
 * of the worker, not of this batch (its batches and re-lookups share one pacer), which the workflow keeps per pacer
 * and sums (workflows/backfill-state.ts addChannelPace), so batches running side by side are not counted twice.
 */
function channelPace(
  deps: Pick<BatchFrameDeps, 'pacer'>,
  start: PacerSnapshot | undefined,
): { channelPace?: ChannelPace } {
  if (!deps.pacer || !start) return {};
  const now = deps.pacer.snapshot();
  return {
    channelPace: {
      ratePerSecond: now.ratePerSecond,
      limit: now.limit,
      remaining: now.remaining,
      givingWay: now.givingWay,
      rateLimited: now.rateLimited,
      warnings: now.warnings,
      waitedMs: Math.round(now.waitedMs),
      pacer: now.pacerId,
    },
  };
}

/** Counts what a member's recorded entry says happened (deliveries only when a replay was tried). */
export function recordMetrics(metrics: JobMetrics, entry: AuditEntry): void {
  metrics.outcome(
    entry.outcome,
    entry.outcome === 'failed' ? entry.stage : entry.outcome === 'delete' ? entry.reason : undefined,
  );
  if (entry.delivered) metrics.delivery('delivered');
  else if (entry.stage === 'replay') metrics.delivery('rejected');
}

/** The entry of a source row that could not be read as a member. */
export function skippedEntry(
  frame: { backfill: string; runLabel: string; dryRun: boolean; now: () => Date },
  line: number,
  memberId: string | undefined,
  reason: string,
): AuditEntry {
  return {
    ts: frame.now().toISOString(),
    backfill: frame.backfill,
    runLabel: frame.runLabel,
    line,
    ...(memberId ? { memberId } : {}),
    outcome: 'skipped',
    reason,
    dryRun: frame.dryRun,
  };
}
