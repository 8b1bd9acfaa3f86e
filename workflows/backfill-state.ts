// The backfill's state and every decision over it, without Temporal: what to launch next, what a batch or replay
// result changes, pause/resume, when the run is done. The workflow (workflows/backfill.ts) is a thin loop that
// runs activities for what this says and feeds their results back (the shape of samples-typescript's
// message-passing/safe-message-handlers). Pure and deterministic: it imports no runtime module, so the unit tests
// (test/unit/backfill-state.test.ts) run it without a server.
import type {
  BatchResult,
  CarriedState,
  ControlAnswer,
  PaceTotals,
  Counters,
  DeferredResult,
  NormalisedSource,
  PreparedBackfill,
  ChannelPace,
  Progress,
} from './definitions';
import { addCounts, countRecorded, zeroCounters } from '../src/domain/counters';
import type { RunWait } from '../src/audit/run-wait';
import {
  addVerifyCounts,
  runCountersOf,
  verifyCountersOf,
  zeroVerifyCounters,
  type VerifyCounters,
} from '../src/domain/verdicts';
import {
  DEFAULT_GUARD,
  guardPauseReason,
  guardStatus,
  releasesDeletes,
  type BatchGuardInput,
  type GuardStatus,
  type GuardThresholds,
} from '../src/domain/delete-guard';

/** Deferred replays allowed to wait at once before new batches stop starting (backpressure). */
export const MAX_DEFERRED_BACKLOG = 500;
/**
 * Deferred replays running at once; the rest wait in `deferred` (in order) for a free slot. Each is an activity
 * and a POST to the receiver that is already struggling (that is why they were deferred): unbounded, a receiver
 * outage turned into up to MAX_DEFERRED_BACKLOG + parallelBatches * batchSize activities at once.
 */
export const MAX_REPLAYS_IN_FLIGHT = 100;

/** How long the webhook endpoint may be down for every member before the run pauses itself: 24 hours. */
export const RECEIVER_OUTAGE_PAUSE_SECONDS = 24 * 60 * 60;

/** The pause reason when the endpoint has been down for longer than receiverOutagePauseSeconds. */
export function receiverOutagePause(since: string, seconds: number): string {
  return `receiver unavailable since ${since} (more than ${seconds} s): no replay was given up; check WEBHOOK_URL's endpoint, then resume`;
}

export const BAD_CREDENTIALS_PAUSE =
  'Channel Talk rejected the API credentials (HTTP 401/403): fix CHANNEL_ACCESS_KEY/SECRET on the workers, then send the resume signal';
export const BAD_CREDENTIALS_ERROR = 'Channel Talk answered 401/403 (bad credentials)';
const GUARD_REASON_PREFIX = 'delete guard:';

/**
 * Counts a deferred replay's one outcome. `rechecked()`: whether the outcomes of a replay looked up again (unchanged,
 * skipped, changedDuringRepair) count as themselves (the workflow's patched() guard); asked only for such results,
 * which no activity returned before issue 23.
 */
export function countOutcome(into: Counters, result: DeferredResult, rechecked: () => boolean = () => true): void {
  const recheckedKind =
    (result.outcome === 'unchanged' || result.outcome === 'skipped' || result.changedDuringRepair === true) &&
    rechecked();
  if (recheckedKind && result.changedDuringRepair) into.changedDuringRepair = (into.changedDuringRepair ?? 0) + 1;
  // Before the re-check (unpatched), a replay ended unchanged or skipped only as a failure.
  const rechecks = result.outcome === 'unchanged' || result.outcome === 'skipped';
  countRecorded(into, rechecks && !recheckedKind ? 'failed' : result.outcome, result.fields);
}

export function freshState(prepared: PreparedBackfill): CarriedState {
  return {
    prepared,
    nextBatch: 0,
    redo: [],
    batchesDone: 0,
    counters: zeroCounters(),
    // A verify run counts verdicts, in counters of their own.
    ...(prepared.options.verifyAfter ? { verify: zeroVerifyCounters() } : {}),
    deferred: [],
    paused: false,
    pauseReason: null,
    runs: 1,
  };
}

/**
 * The state a run was carried over with. A verify run continued as new by release 1.0 counted its verdicts in the
 * run counters (each under its outcome, src/domain/verdicts.ts): they move to its verify counters.
 */
export function carriedIn(s: CarriedState): CarriedState {
  if (s.verify || !s.prepared.options.verifyAfter) return s;
  return { ...s, verify: verifyCountersOf(s.counters), counters: zeroCounters() };
}

/** The run counters progress, the result and the Web UI show: a verify run's verdicts under their outcomes. */
export const runCounters = (s: CarriedState): Counters => (s.verify ? runCountersOf(s.verify) : s.counters);

/** A batch's verify counters: its own, or those a 1.0 verify batch returned as outcome counts (in saved histories). */
const verifyCountsOf = (result: BatchResult): VerifyCounters => result.verify ?? verifyCountersOf(result.counts);

export function isDone(s: CarriedState): boolean {
  return (
    s.prepared.normalising !== true &&
    s.nextBatch >= s.prepared.batches &&
    s.redo.length === 0 &&
    s.deferred.length === 0 &&
    s.batchesDone >= s.prepared.batches
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
  /** The run has just gone into its "receiver unavailable" state, since this time. */
  receiverDown?: string;
}

export interface StateOptions {
  /** The delete guard is on (the workflow's patched('delete-guard-v1'); off when replaying older histories). */
  deleteGuard?: boolean;
}

/** What a resume did: `stillPaused` is the delete guard's reason when it keeps the run paused. */
export interface ResumeEffect {
  /** The run was not paused (nor waiting to pause) when the resume came. */
  wasRunning?: boolean;
  stillPaused?: string;
  /** The deletes were confirmed by this resume (not before). */
  confirmed?: boolean;
}

export class BackfillState {
  /** A pause asked for before preparation finished; applied as soon as there is state. */
  private pendingPause: { reason: string | null } | null = null;
  /** A confirmation of deletes given before preparation finished. */
  private pendingConfirmAt: string | null = null;

  private current: CarriedState | undefined;

  constructor(
    carried: CarriedState | undefined,
    private readonly opts: StateOptions = {},
  ) {
    this.current = carried && carriedIn(carried);
  }

  get prepared(): boolean {
    return this.current !== undefined;
  }

  /** The state; only after preparation (or when carried in). */
  get s(): CarriedState {
    if (!this.current) throw new Error('backfill state read before preparation');
    return this.current;
  }

  /** Members processed so far (a verify run: members checked). */
  processed(): number {
    return runCounters(this.s).processed;
  }

  /** Sets the freshly prepared state; returns the early pause to apply, if one was asked for. */
  start(prepared: PreparedBackfill): { reason: string | null } | null {
    this.current = freshState(prepared);
    if (this.pendingConfirmAt && this.guardOn()) this.guardToWrite().confirmedAt = this.pendingConfirmAt;
    return this.pendingPause;
  }

  /** The delete guard applies: on, and the run delivers (a dry run delivers nothing, so it never trips). */
  private guardOn(): boolean {
    return this.opts.deleteGuard === true && this.current !== undefined && !this.current.prepared.options.dryRun;
  }

  /** The guard's counts, to read (queries read them too: no state is created here). */
  private guard(): Readonly<NonNullable<CarriedState['guard']>> {
    return this.s.guard ?? { decisions: 0, deletes: 0 };
  }

  /** The guard's counts, to change. */
  private guardToWrite(): NonNullable<CarriedState['guard']> {
    return (this.s.guard ??= { decisions: 0, deletes: 0 });
  }

  private thresholds(): GuardThresholds {
    const o = this.s.prepared.options;
    return {
      maxDeleteShare: o.maxDeleteShare ?? DEFAULT_GUARD.maxDeleteShare,
      minDecisions: o.deleteGuardMinDecisions ?? DEFAULT_GUARD.minDecisions,
    };
  }

  /** The delete guard's status; undefined when it does not apply. */
  guardStatus(): GuardStatus | undefined {
    if (!this.guardOn()) return undefined;
    const g = this.guard();
    return guardStatus(g, this.thresholds(), {
      confirmed: g.confirmedAt !== undefined,
      allBatchesDone: this.s.prepared.normalising !== true && this.s.batchesDone >= this.s.prepared.batches,
    });
  }

  /** What a batch launched now is told about the guard (undefined: the guard does not apply, deletes go). */
  batchGuard(): BatchGuardInput | undefined {
    if (!this.guardOn()) return undefined;
    const g = this.guard();
    return {
      decisions: g.decisions,
      deletes: g.deletes,
      confirmed: g.confirmedAt !== undefined,
      ...(g.confirmedAt ? { confirmedAt: g.confirmedAt } : {}),
    };
  }

  /** When the deletes were confirmed, if they were (stamped on the deletes the audit log records after it). */
  get deletesConfirmedAt(): string | undefined {
    return this.guardOn() ? this.guard().confirmedAt : undefined;
  }

  /** The guard's pause reason while it is tripped, else null. */
  private guardTrip(): string | null {
    return this.guardStatus() === 'tripped' ? guardPauseReason(this.guard()) : null;
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

  /**
   * Resumes, unless the delete guard is tripped and the deletes are not confirmed: then the run stays paused with
   * the guard's reason. `confirmDeletesAt` (workflow time) confirms the deletes for the rest of the run.
   */
  resume(confirmDeletesAt?: string): ResumeEffect {
    const wasRunning = this.current ? !this.current.paused : this.pendingPause === null;
    this.pendingPause = null;
    let confirmed = false;
    if (confirmDeletesAt !== undefined) {
      if (!this.current) {
        confirmed = this.pendingConfirmAt === null;
        this.pendingConfirmAt ??= confirmDeletesAt;
      } else if (this.guardOn() && this.guard().confirmedAt === undefined) {
        this.guardToWrite().confirmedAt = confirmDeletesAt;
        confirmed = true;
      }
    }
    const effect: ResumeEffect = { ...(confirmed ? { confirmed } : {}), ...(wasRunning ? { wasRunning } : {}) };
    // A resumed run tries the endpoint afresh (else the outage pause would come back at once).
    if (this.current && !wasRunning) delete this.current.receiverDown;
    if (this.current) {
      const trip = this.guardTrip();
      this.current.paused = trip !== null;
      this.current.pauseReason = trip;
      if (trip) effect.stillPaused = trip;
    }
    return effect;
  }

  /** The answer to a pause or resume update: what the call did, and the state it left (workflows/definitions.ts). */
  controlAnswer(call: { paused: boolean; wasPaused?: boolean } | ResumeEffect): ControlAnswer {
    const { paused, pauseReason, deleteGuard } = this.progress(undefined);
    const outcome: ControlAnswer['outcome'] =
      'paused' in call
        ? call.wasPaused
          ? 'already-paused'
          : 'paused'
        : call.stillPaused
          ? 'still-paused'
          : call.wasRunning
            ? 'already-running'
            : 'resumed';
    return {
      outcome,
      paused,
      pauseReason,
      ...('confirmed' in call && call.confirmed ? { deletesConfirmed: true } : {}),
      ...(deleteGuard ? { deleteGuard } : {}),
    };
  }

  /**
   * Deferred lines whose replay should start now (order: as deferred), at most `cap` running at once. Nothing
   * while paused or rolling over. `capped()` says whether the cap applies (the workflow's patched() guard: runs
   * recorded before it launched every waiting replay); it is asked only when the cap would hold one back.
   */
  replaysToLaunch(
    running: Running,
    rollOver: boolean,
    capped: () => boolean = () => true,
    cap = MAX_REPLAYS_IN_FLIGHT,
  ): number[] {
    const s = this.s;
    if (s.paused || rollOver) return [];
    // Deletes the guard holds wait until it releases them (`held` is only ever set with the guard on).
    const release = !s.deferred.some((d) => d.held) || releasesDeletes(this.guardStatus() ?? 'confirmed');
    const waiting = s.deferred.filter((d) => !running.replays.has(d.line) && (release || !d.held)).map((d) => d.line);
    if (s.receiverDown) {
      // One replay at a time probes the endpoint that is down; with none left to probe, batches find out.
      if (running.replays.size > 0) return [];
      if (waiting.length === 0) delete s.receiverDown;
      return waiting.slice(0, 1);
    }
    const free = Math.max(0, cap - running.replays.size);
    return waiting.length > free && capped() ? waiting.slice(0, free) : waiting;
  }

  /**
   * The next batch to start, taken off the redo queue first, then a new one; undefined when none may start
   * (paused, rolling over, all slots busy, backlog of deferred replays full, nothing left).
   */
  takeNextBatch(inFlight: number, rollOver: boolean): number | undefined {
    const s = this.s;
    if (s.paused || rollOver || s.receiverDown) return undefined;
    if (inFlight >= s.prepared.options.parallelBatches || this.backlog() >= MAX_DEFERRED_BACKLOG) return undefined;
    if (s.redo.length > 0) return s.redo.shift();
    // While the source is still being normalised its end is unknown: batches beyond it come back empty (beyondEnd).
    if (s.prepared.normalising || s.nextBatch < s.prepared.batches) return s.nextBatch++;
    return undefined;
  }

  /**
   * The whole source is in the work set (normaliseSource completed): the run's real totals replace the preparation's
   * lower bound. Batches launched beyond the end come back `beyondEnd` and are not counted.
   */
  onNormalised(totals: NormalisedSource): void {
    const s = this.s;
    s.prepared.rows = totals.rows;
    s.prepared.batches = totals.batches;
    delete s.prepared.normalising;
    // Cancelled (a pause) before they found out: batches beyond the end have nothing to run again.
    s.redo = s.redo.filter((batch) => batch < totals.batches);
  }

  /**
   * Replays waiting on the receiver. Held deletes wait on the guard, which needs more batches to decide: counting
   * them would stop the batches that can release them.
   */
  private backlog(): number {
    const s = this.s;
    return s.deferred.some((d) => d.held) ? s.deferred.filter((d) => !d.held).length : s.deferred.length;
  }

  /**
   * `countOnce(line)`: whether a re-reported line whose replay is already counted is dropped (the workflow passes
   * its patched() guard, so histories recorded before the fix replay the old way). Called only for such lines.
   */
  onBatchResult(result: BatchResult, countOnce: () => boolean = () => true): BatchEffect {
    const s = this.s;
    // Shown only (progress, the Web UI): no command depends on it, and results of older workers carry none.
    if (result.channelPace) addChannelPace(s, result.channelPace);
    // Launched beyond the end of a source still being read: it had no rows, and nothing runs it again.
    if (result.beyondEnd) return {};
    for (const d of result.deferred) {
      if (s.deferred.some((known) => known.line === d.line)) continue;
      if (s.countedReplays?.some((c) => c.line === d.line) && countOnce()) continue;
      s.deferred.push({
        line: d.line,
        memberId: d.memberId,
        batch: result.batch,
        ...(d.held && this.guardOn() ? { held: true } : {}),
      });
    }
    if (result.complete) {
      if (s.verify) addVerifyCounts(s.verify, verifyCountsOf(result));
      else addCounts(s.counters, result.counts);
      s.batchesDone += 1;
      // That batch never runs again: nothing it reported can come back.
      if (s.countedReplays) s.countedReplays = s.countedReplays.filter((c) => c.batch !== result.batch);
      return this.checkGuard(result);
    }
    s.redo.push(result.batch);
    if (result.stopReason === 'receiver-unavailable' && result.receiverUnavailableSince)
      return this.receiverUnavailable(result.receiverUnavailableSince);
    if (result.stopReason !== 'bad-credentials') return {};
    return s.paused
      ? { lastError: BAD_CREDENTIALS_ERROR }
      : { lastError: BAD_CREDENTIALS_ERROR, pause: BAD_CREDENTIALS_PAUSE };
  }

  /** Adds a completed batch's decisions to the guard; pauses the run when the guard trips. */
  private checkGuard(result: BatchResult): BatchEffect {
    if (!this.guardOn() || !result.decided) return {};
    const g = this.guardToWrite();
    g.decisions += result.decided.decisions;
    g.deletes += result.decided.deletes;
    const trip = this.guardTrip();
    if (!trip) return {};
    const s = this.s;
    if (!s.paused) return { pause: trip };
    // Already paused by the guard: keep its reason current (batches cancelled by the pause may still complete).
    if (s.pauseReason?.startsWith(GUARD_REASON_PREFIX)) s.pauseReason = trip;
    return {};
  }

  /**
   * The endpoint is down for every member (a batch stopped for it, or a replay found it so): no batch starts and
   * one waiting replay at a time probes it until it answers. The run's outage starts at the first report.
   */
  receiverUnavailable(since: string): BatchEffect {
    const s = this.s;
    if (s.receiverDown) return {};
    s.receiverDown = { since };
    return { receiverDown: since };
  }

  /** The pause reason once the endpoint has been down longer than the run allows (at `nowMs`), else null. */
  receiverOutageExpired(nowMs: number): string | null {
    const down = this.s.receiverDown;
    if (!down || this.s.paused) return null;
    const seconds = this.s.prepared.options.receiverOutagePauseSeconds ?? RECEIVER_OUTAGE_PAUSE_SECONDS;
    return nowMs - Date.parse(down.since) >= seconds * 1000 ? receiverOutagePause(down.since, seconds) : null;
  }

  /** Milliseconds from `nowMs` until the outage pause is due; undefined when no outage runs (or paused). */
  receiverOutageDueInMs(nowMs: number): number | undefined {
    const down = this.s.receiverDown;
    if (!down || this.s.paused) return undefined;
    const seconds = this.s.prepared.options.receiverOutagePauseSeconds ?? RECEIVER_OUTAGE_PAUSE_SECONDS;
    return Math.max(0, Date.parse(down.since) + seconds * 1000 - nowMs);
  }

  /**
   * The receiver outage under way as a wait for the audit log (src/audit/run-wait.ts), as if it ended at `nowMs` the
   * way `ended` says, with what waits for it; undefined when none runs or it is already recorded. The workflow asks
   * before a change that may end the outage and records it if the change did.
   */
  receiverWait(ended: RunWait['ended'], nowMs: number): RunWait | undefined {
    const s = this.current;
    const down = s?.receiverDown;
    if (!s || !down || down.recorded) return undefined;
    return {
      kind: 'receiver-unavailable',
      since: down.since,
      until: new Date(nowMs).toISOString(),
      ended,
      waitingReplays: s.deferred.filter((d) => !d.held).length,
      batchesLeft: s.prepared.batches - s.batchesDone,
    };
  }

  /** The outage under way is in the audit log (the run paused itself for it and it stays shown while paused). */
  receiverWaitRecorded(): void {
    if (this.current?.receiverDown) this.current.receiverDown.recorded = true;
  }

  /** A batch cancelled (pause, roll-over) before it returned: it runs again. */
  onBatchCancelled(batch: number): void {
    const { prepared } = this.s;
    // Beyond the end of a source that has been read to its end since the batch was launched: nothing to run.
    if (!prepared.normalising && batch >= prepared.batches) return;
    this.s.redo.push(batch);
  }

  /** `rechecked`: see countOutcome (the workflow's patched() guard). */
  onReplayResult(line: number, result: DeferredResult, running: Running, rechecked?: () => boolean): void {
    const s = this.s;
    // A replay came back with an outcome: the endpoint answers again.
    delete s.receiverDown;
    countOutcome(s.counters, result, rechecked);
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
    const counters = s ? runCounters(s) : zeroCounters();
    return {
      ...counters,
      total: s?.prepared.rows ?? 0,
      ...(s?.prepared.normalising ? { readingSource: true as const } : {}),
      batchesDone: s?.batchesDone ?? 0,
      batchesTotal: s?.prepared.batches ?? 0,
      pendingReplays: s?.deferred.length ?? 0,
      paused: s ? s.paused : this.pendingPause !== null,
      pauseReason: s ? s.pauseReason : (this.pendingPause?.reason ?? null),
      dryRun: s?.prepared.options.dryRun ?? dryRunInput ?? false,
      runs: s?.runs ?? 1,
      auditPath: s?.prepared.paths.auditPath ?? null,
      // The channel the workers' credentials open (checked by the preparation): `webhook-backfill status` names it.
      channel: s?.prepared.channel ?? null,
      done: s !== undefined && isDone(s),
      ...(s?.verify ? { verify: { ...s.verify.verdicts } } : {}),
      ...(s?.channelPace ? { channelPace: s.channelPace } : {}),
      ...(s?.receiverDown
        ? {
            receiverUnavailable: {
              since: s.receiverDown.since,
              waitingReplays: s.deferred.filter((d) => !d.held).length,
            },
          }
        : {}),
      ...(s && this.guardOn()
        ? {
            deleteGuard: {
              decisions: this.guard().decisions,
              deletes: this.guard().deletes,
              held: s.deferred.filter((d) => d.held).length,
              status: this.guardStatus()!,
              confirmedAt: this.guard().confirmedAt ?? null,
            },
          }
        : {}),
    };
  }
}

/** The latest batch's view of the rate limit, with 429s, warnings and waits summed over the run's batches. */
/**
 * Takes a batch's view of the channel's rate limit: the latest view wins; the 429s, warnings and waits are its
 * worker pacer's totals (cumulative, so the largest seen is the latest) and the run's are their sum over pacers.
 * A result without a pacer (a delta of its own) is added as it is.
 */
export function addChannelPace(s: Pick<CarriedState, 'channelPace' | 'paceTotals'>, latest: ChannelPace): void {
  const { pacer, ...view } = latest;
  const key = pacer ?? `batch-${Object.keys(s.paceTotals ?? {}).length}`;
  const totals = (s.paceTotals ??= {});
  const known = totals[key];
  totals[key] = {
    rateLimited: Math.max(known?.rateLimited ?? 0, view.rateLimited),
    warnings: Math.max(known?.warnings ?? 0, view.warnings),
    waitedMs: Math.max(known?.waitedMs ?? 0, view.waitedMs),
  };
  const sum = (field: keyof PaceTotals) => Object.values(totals).reduce((a, t) => a + t[field], 0);
  s.channelPace = { ...view, rateLimited: sum('rateLimited'), warnings: sum('warnings'), waitedMs: sum('waitedMs') };
}

/** Events at which a run still reading its source stops starting batches: below Temporal's 10,240 warning. */
export const HOLD_AT_MOST = 9_000;

/**
 * Whether a run still reading its source must start no batch or replay until the normaliser ends: it continues as
 * new only once the source is read, so a slow source would grow one history toward Temporal's 51,200-event limit.
 * Past twice the threshold (at most HOLD_AT_MOST) it holds instead (docs/guarantees.md).
 */
export function holdsForNormaliser(historyLength: number, maxHistoryEvents: number, normalising: boolean): boolean {
  return normalising && historyLength >= Math.min(2 * maxHistoryEvents, HOLD_AT_MOST);
}
