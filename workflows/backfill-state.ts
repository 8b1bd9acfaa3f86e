// The backfill's state and every decision over it, without Temporal: what to launch next, what a batch or replay
// result changes, pause/resume, when the run is done. The workflow (workflows/backfill.ts) is a thin loop that
// runs activities for what this says and feeds their results back (the shape of samples-typescript's
// message-passing/safe-message-handlers). Pure and deterministic: it imports no runtime module, so the unit tests
// (test/unit/backfill-state.test.ts) run it without a server.
import type {
  BatchResult,
  CarriedState,
  Counters,
  DeferredResult,
  FieldCounts,
  PreparedBackfill,
  Progress,
} from './definitions';

/** Deferred replays allowed to wait at once before new batches stop starting (backpressure). */
export const MAX_DEFERRED_BACKLOG = 500;
/**
 * Deferred replays running at once; the rest wait in `deferred` (in order) for a free slot. Each is an activity
 * and a POST to the receiver that is already struggling (that is why they were deferred): unbounded, a receiver
 * outage turned into up to MAX_DEFERRED_BACKLOG + parallelBatches * batchSize activities at once.
 */
export const MAX_REPLAYS_IN_FLIGHT = 100;

export const BAD_CREDENTIALS_PAUSE =
  'Channel Talk rejected the API credentials (HTTP 401/403): fix CHANNEL_ACCESS_KEY/SECRET on the workers, then send the resume signal';
export const BAD_CREDENTIALS_ERROR = 'Channel Talk answered 401/403 (bad credentials)';

export const zeroFields = (): FieldCounts => ({ mobileNumber: 0, email: 0, unsubscribeEmail: 0, unsubscribeTexting: 0 });
export const zeroCounters = (): Counters => ({
  processed: 0,
  upserts: 0,
  deletes: 0,
  unchanged: 0,
  failed: 0,
  skipped: 0,
  fields: zeroFields(),
});

export function addCounts(into: Counters, from: Counters): void {
  into.processed += from.processed;
  into.upserts += from.upserts;
  into.deletes += from.deletes;
  into.unchanged += from.unchanged;
  into.failed += from.failed;
  into.skipped += from.skipped;
  if (from.fields) {
    const fields = (into.fields ??= zeroFields());
    for (const key of Object.keys(fields) as (keyof FieldCounts)[]) fields[key] += from.fields[key] ?? 0;
  }
}

export function countOutcome(into: Counters, result: DeferredResult): void {
  into.processed += 1;
  if (result.outcome === 'upsert') into.upserts += 1;
  else if (result.outcome === 'delete') into.deletes += 1;
  else into.failed += 1;
  if (result.outcome === 'upsert' && result.fields) {
    const fields = (into.fields ??= zeroFields());
    for (const key of result.fields) fields[key] += 1;
  }
}

export function freshState(prepared: PreparedBackfill): CarriedState {
  return {
    prepared,
    nextBatch: 0,
    redo: [],
    batchesDone: 0,
    counters: zeroCounters(),
    deferred: [],
    paused: false,
    pauseReason: null,
    runs: 1,
  };
}

export function isDone(s: CarriedState): boolean {
  return (
    s.nextBatch >= s.prepared.batches && s.redo.length === 0 && s.deferred.length === 0 && s.batchesDone >= s.prepared.batches
  );
}

/** What the workflow has running right now (it owns the cancellation scopes; the state only needs the keys). */
export interface Running {
  /** Batch numbers in flight. */
  batches: ReadonlySet<number> | ReadonlyMap<number, unknown>;
  /** Source lines whose deferred replay is in flight. */
  replays: ReadonlySet<number> | ReadonlyMap<number, unknown>;
}

/** What the loop does with a batch result beyond the state change. */
export interface BatchEffect {
  /** Pause the run (and cancel what is in flight) with this reason. */
  pause?: string;
  /** Shown in the Web UI as the last error. */
  lastError?: string;
}

export class BackfillState {
  /** A pause asked for before preparation finished; applied as soon as there is state. */
  private pendingPause: { reason: string | null } | null = null;

  constructor(private current: CarriedState | undefined) {}

  get prepared(): boolean {
    return this.current !== undefined;
  }

  /** The state; only after preparation (or when carried in). */
  get s(): CarriedState {
    if (!this.current) throw new Error('backfill state read before preparation');
    return this.current;
  }

  /** Sets the freshly prepared state; returns the early pause to apply, if one was asked for. */
  start(prepared: PreparedBackfill): { reason: string | null } | null {
    this.current = freshState(prepared);
    return this.pendingPause;
  }

  /** Records a pause; false when there is no state yet (the pause waits for preparation). */
  pause(reason: string | null): boolean {
    if (!this.current) {
      this.pendingPause = { reason };
      return false;
    }
    this.current.paused = true;
    this.current.pauseReason = reason;
    return true;
  }

  resume(): void {
    this.pendingPause = null;
    if (this.current) {
      this.current.paused = false;
      this.current.pauseReason = null;
    }
  }

  /**
   * Deferred lines whose replay should start now (order: as deferred), at most `cap` running at once. Nothing
   * while paused or rolling over. `capped()` says whether the cap applies (the workflow's patched() guard: runs
   * recorded before it launched every waiting replay); it is asked only when the cap would hold one back.
   */
  replaysToLaunch(running: Running, rollOver: boolean, capped: () => boolean = () => true, cap = MAX_REPLAYS_IN_FLIGHT): number[] {
    const s = this.s;
    if (s.paused || rollOver) return [];
    const waiting = s.deferred.filter((d) => !running.replays.has(d.line)).map((d) => d.line);
    const free = Math.max(0, cap - running.replays.size);
    return waiting.length > free && capped() ? waiting.slice(0, free) : waiting;
  }

  /**
   * The next batch to start, taken off the redo queue first, then a new one; undefined when none may start
   * (paused, rolling over, all slots busy, backlog of deferred replays full, nothing left).
   */
  takeNextBatch(inFlight: number, rollOver: boolean): number | undefined {
    const s = this.s;
    if (s.paused || rollOver) return undefined;
    if (inFlight >= s.prepared.options.parallelBatches || s.deferred.length >= MAX_DEFERRED_BACKLOG) return undefined;
    if (s.redo.length > 0) return s.redo.shift();
    if (s.nextBatch < s.prepared.batches) return s.nextBatch++;
    return undefined;
  }

  /**
   * `countOnce(line)`: whether a re-reported line whose replay is already counted is dropped (the workflow passes
   * its patched() guard, so histories recorded before the fix replay the old way). Called only for such lines.
   */
  onBatchResult(result: BatchResult, countOnce: () => boolean = () => true): BatchEffect {
    const s = this.s;
    for (const d of result.deferred) {
      if (s.deferred.some((known) => known.line === d.line)) continue;
      if (s.countedReplays?.some((c) => c.line === d.line) && countOnce()) continue;
      s.deferred.push({ line: d.line, memberId: d.memberId, batch: result.batch });
    }
    if (result.complete) {
      addCounts(s.counters, result.counts);
      s.batchesDone += 1;
      // That batch never runs again: nothing it reported can come back.
      if (s.countedReplays) s.countedReplays = s.countedReplays.filter((c) => c.batch !== result.batch);
      return {};
    }
    s.redo.push(result.batch);
    if (result.stopReason !== 'bad-credentials') return {};
    return s.paused ? { lastError: BAD_CREDENTIALS_ERROR } : { lastError: BAD_CREDENTIALS_ERROR, pause: BAD_CREDENTIALS_PAUSE };
  }

  /** A batch cancelled (pause, roll-over) before it returned: it runs again. */
  onBatchCancelled(batch: number): void {
    this.s.redo.push(batch);
  }

  onReplayResult(line: number, result: DeferredResult, running: Running): void {
    const s = this.s;
    countOutcome(s.counters, result);
    const entry = s.deferred.find((d) => d.line === line);
    // Remembered only while the reporting batch may still run again (in flight or waiting in the redo queue).
    if (entry?.batch !== undefined && (running.batches.has(entry.batch) || s.redo.includes(entry.batch))) {
      (s.countedReplays ??= []).push({ line, batch: entry.batch });
    }
    s.deferred = s.deferred.filter((d) => d.line !== line);
  }

  /** Done when every batch completed and no replay waits; the loop also waits for what is in flight. */
  finished(running: Running): boolean {
    return isDone(this.s) && running.batches.size === 0 && running.replays.size === 0;
  }

  /** Input of the next run in the continue-as-new chain. */
  carriedForNext(): CarriedState {
    const s = this.s;
    return { ...s, runs: s.runs + 1 };
  }

  progress(dryRunInput: boolean | undefined): Progress {
    const s = this.current;
    const counters = s?.counters ?? zeroCounters();
    return {
      ...counters,
      total: s?.prepared.rows ?? 0,
      batchesDone: s?.batchesDone ?? 0,
      batchesTotal: s?.prepared.batches ?? 0,
      pendingReplays: s?.deferred.length ?? 0,
      paused: s ? s.paused : this.pendingPause !== null,
      pauseReason: s ? s.pauseReason : (this.pendingPause?.reason ?? null),
      dryRun: s?.prepared.options.dryRun ?? dryRunInput ?? false,
      runs: s?.runs ?? 1,
      auditPath: s?.prepared.paths.auditPath ?? null,
      done: s !== undefined && isDone(s),
    };
  }
}
