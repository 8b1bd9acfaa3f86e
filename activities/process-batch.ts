import { setMaxListeners } from 'node:events';
import { Context } from '@temporalio/activity';
import type { AuditEntry } from '../src/audit/audit-entry';
import type { AuditStore } from '../src/audit/audit-store';
import type { PendingStore } from '../src/audit/pending-store';
import { BadCredentialsError } from '../src/channel/errors';
import type { ChannelPacer, PacerSnapshot } from '../src/channel/channel-pacer';
import { createRateLimiter } from '../src/channel/rate-limiter';
import { runPool } from '../src/run-pool';
import type { WorkStore } from '../src/store/work-store';
import type {
  BackfillOptions,
  BackfillPaths,
  BatchResult,
  ChannelPace,
  DeferredReplay,
} from '../workflows/definitions';
import { countRecorded, zeroCounters } from '../src/domain/counters';
import {
  BatchGuardView,
  DEFAULT_GUARD,
  isDecision,
  type BatchGuardInput,
  type GuardCounts,
} from '../src/domain/delete-guard';
import { repairMember, type RepairContext } from './repair-member';
import type { RunLimiters } from './run-limiters';
import { createStoreGate, type StoreGate } from './store-outage';
import { verifyMember, type VerifyContext } from './verify-member';
import type { JobMetrics } from '../src/observability';
import type { WebhookSender } from '../src/webhook/sender';

export interface BatchInput {
  batch: number;
  backfill: string;
  options: BackfillOptions;
  paths: BackfillPaths;
  /** Batches the workflow runs at once: this batch gets 1/share of the API rate budget. */
  share: number;
  /** The delete guard (absent: a dry run, or a run recorded before it): the run's counts so far. */
  guard?: BatchGuardInput;
  /**
   * Stop (stopReason 'receiver-unavailable') once the webhook endpoint is down for everyone: the workflow starts
   * no batch while it is. Absent in runs recorded before it: the batch goes on deferring.
   */
  stopWhenReceiverDown?: boolean;
}

export interface BatchDeps {
  audit: AuditStore;
  pending: PendingStore;
  work: WorkStore;
  metrics: JobMetrics;
  memberConcurrency: number;
  workerRateLimit: number | undefined;
  /** The worker's pacer (src/channel/channel-pacer.ts): the batch joins it with its share of the run. */
  pacer?: ChannelPacer;
  /** Write a debug line per member: the worker's logger is at DEBUG or TRACE (see debugEnabled). */
  debugLogs?: boolean;
  /** This worker's running batches' limiters, which replays' lookups made again borrow (activities/run-limiters.ts). */
  runLimiters?: RunLimiters;
  repair: Omit<RepairContext, 'backfill' | 'runLabel' | 'dryRun' | 'limiter' | 'signal'>;
}

/**
 * Repairs one batch of members. What is already recorded in the audit log (by an earlier attempt
 * that crashed or was paused) is not done again, and the returned counts are read back from the
 * audit log, so a batch counts every member exactly once however many attempts it took.
 */
export async function processBatch(deps: BatchDeps, input: BatchInput): Promise<BatchResult> {
  const context = Context.current();
  const { batch, options, paths } = input;
  const entries = await deps.work.readBatch(paths.workFile, options.batchSize, batch);
  const lines = entries.map((e) => e.line);
  const recorded = await deps.audit.lookup(paths.auditPath, lines);
  const { pending: pendingLines, settled: settledLines } = await deps.pending.lines(paths.pendingDir, lines);

  const guard = input.guard && !options.dryRun ? startGuard(input.guard, options) : undefined;
  // Delete guard: which deferred lines are deletes (a delete is a decision the guard counts).
  const deferredDeletes = new Set<number>();
  const deferred: DeferredReplay[] = [];
  for (const entry of entries) {
    if (pendingLines.has(entry.line) && !recorded.has(entry.line)) {
      const d: DeferredReplay = {
        line: entry.line,
        memberId: 'member' in entry ? entry.member.memberId : (entry.memberId ?? ''),
      };
      if (guard) {
        // Handed over by an earlier attempt: still a decision of this batch. A delete is held if the guard's view
        // says so now (the workflow keeps what it already knows of the line).
        const isDelete = (await deps.pending.get(paths.pendingDir, entry.line))?.event === 'delete';
        if (isDelete) deferredDeletes.add(entry.line);
        if (guard.decided(isDelete)) d.held = true;
      }
      deferred.push(d);
    }
  }
  if (guard) {
    // Decisions an earlier attempt recorded are this batch's too (the run's counts have only completed batches).
    for (const [, r] of recorded) if (isDecision(r.outcome, r.fields)) guard.decided(r.outcome === 'delete');
  }
  const todo = entries.filter((e) => !recorded.has(e.line) && !pendingLines.has(e.line));

  const stop = new AbortController();
  // Every member in flight listens on this one signal; that is by design, not a leak.
  setMaxListeners(0, stop.signal);
  let stopReason: BatchResult['stopReason'];
  const onCancel = () => {
    stopReason ??= 'cancelled';
    stop.abort();
  };
  context.cancellationSignal.addEventListener('abort', onCancel);
  // The per-member debug line costs its metadata even when the logger drops it: decided once, by the worker.
  const logMembers = deps.debugLogs === true;
  let done = entries.length - todo.length;
  // A write the audit or pending store cannot take (it is away, full, read-only) is retried until it can, and
  // meanwhile no member is looked up or sent (activities/store-outage.ts): what the batch knows is kept, not
  // redone.
  const store = createStoreGate({
    signal: context.cancellationSignal,
    onUnavailable: (err) =>
      context.log.warn('audit or pending store unavailable: the batch sends nothing until it is back', {
        batch,
        code: (err as { code?: unknown }).code ?? null,
      }),
    onBack: (waitedMs) => context.log.info('audit and pending store back: the batch goes on', { batch, waitedMs }),
  });
  // Outcomes are written behind, about once a second and at the end, in one write and one sync each:
  // waiting for the disk after every member would make the disk, not the API, the limit. A crash loses
  // at most the last second of outcomes; those members are simply done again (same webhook-ids).
  const unwritten: AuditEntry[] = [];
  let writing: Promise<void> = Promise.resolve();
  const writeBehind = () => {
    writing = writing.then(async () => {
      const chunk = unwritten.splice(0);
      if (chunk.length > 0) await store.persist(() => deps.audit.append(paths.auditPath, chunk));
    });
    return writing;
  };
  const heartbeat = setInterval(() => {
    const since = store.unavailableSince();
    context.heartbeat(since === undefined ? { done } : { done, storeUnavailableSince: new Date(since).toISOString() });
    // While a write waits for the store, the next one queues behind it. A failed write (cancelled, or an error
    // that is not the store being away) resurfaces at the final flush below.
    void writeBehind().catch(() => undefined);
  }, 1_000);

  const rate = minDefined(deps.workerRateLimit, options.rateLimit ?? undefined);
  const ctx: RepairContext = {
    ...deps.repair,
    ...(options.onlyChangedSince
      ? {
          decideOptions: {
            ...deps.repair.decideOptions,
            onlyChangedSince: { time: Date.parse(options.onlyChangedSince), text: options.onlyChangedSince },
          },
        }
      : {}),
    ...(deps.repair.target ? { target: sendWhenStored(deps.repair.target, store) } : {}),
    backfill: input.backfill,
    runLabel: options.runLabel,
    dryRun: options.dryRun,
    limiter: createRateLimiter(rate === undefined ? undefined : rate / Math.max(1, input.share)),
    // A batch of its own would get rate / parallelBatches at least: what a lookup made again uses when none runs.
    ...(rate !== undefined ? { recheckRate: rate / Math.max(1, options.parallelBatches) } : {}),
    signal: stop.signal,
    ...(guard ? { guard: { decided: (isDelete: boolean) => guard.decided(isDelete) } } : {}),
    ...(input.guard?.confirmedAt ? { deletesConfirmedAt: input.guard.confirmedAt } : {}),
  };

  // A verify run (options.verifyAfter) looks each member up again and records its verdict; it never replays.
  const verify: VerifyContext | undefined = options.verifyAfter
    ? {
        // Named one by one: no target in reach.
        backfill: ctx.backfill,
        runLabel: ctx.runLabel,
        channel: ctx.channel,
        limiter: ctx.limiter,
        signal: ctx.signal,
        now: ctx.now,
        verifyOptions: { ...deps.repair.decideOptions, clockSkewMs: options.verifyAfter.clockSkewMs ?? 0 },
      }
    : undefined;
  // The endpoint down for everyone: no more lookups for replays that could only wait. Members in flight finish
  // (not aborted: a lookup made is not thrown away) and hand their replays over; the rest are not started.
  let receiverUnavailableSince: string | undefined;
  const stopIfReceiverDown = () => {
    const since = input.stopWhenReceiverDown ? deps.repair.health?.unavailableSince() : undefined;
    if (since === undefined || stopReason) return;
    stopReason = 'receiver-unavailable';
    receiverUnavailableSince = new Date(since).toISOString();
  };
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

  // While it runs, replays of this run that look their member up again on this worker take this batch's permits.
  const unregisterLimiter = deps.runLimiters?.add(input.backfill, ctx.limiter);
  // The pacer corrects the whole worker by this batch's part of the run (see channel-pacing.ts, weight).
  const leavePacer = deps.pacer?.join(input.share);
  const paceAtStart = deps.pacer?.snapshot();
  try {
    await runPool(todo, deps.memberConcurrency, async (entry) => {
      if (stop.signal.aborted || receiverUnavailableSince !== undefined) return;
      // No lookup while outcomes cannot be recorded.
      try {
        await store.open();
      } catch (err) {
        interrupted(err);
        return;
      }
      if (verify && entry.repair) {
        try {
          const recordedEntry = await verifyMember({ ...entry, repair: entry.repair }, verify);
          unwritten.push(recordedEntry);
          recordMetrics(deps.metrics, recordedEntry);
          done++;
        } catch (err) {
          interrupted(err);
        }
        return;
      }
      if ('skip' in entry) {
        unwritten.push(skippedEntry(ctx, entry.line, entry.memberId, entry.skip));
        deps.metrics.outcome('skipped');
        done++;
        return;
      }
      try {
        const result = await repairMember(entry.line, entry.member, ctx, entry.planned);
        if (result.kind === 'recorded') {
          unwritten.push(result.entry);
          recordMetrics(deps.metrics, result.entry);
          if (logMembers)
            context.log.debug('member recorded', {
              batch,
              line: entry.line,
              memberId: entry.member.memberId,
              outcome: result.entry.outcome,
            });
        } else {
          await store.persist(() => deps.pending.put(paths.pendingDir, result.replay));
          if (result.replay.event === 'delete') deferredDeletes.add(entry.line);
          if (result.held) {
            deferred.push({ line: entry.line, memberId: entry.member.memberId, held: true });
            if (logMembers)
              context.log.debug('delete held back by the delete guard', {
                batch,
                line: entry.line,
                memberId: entry.member.memberId,
              });
          } else {
            deps.metrics.delivery('deferred');
            deferred.push({ line: entry.line, memberId: entry.member.memberId });
            context.log.info('replay deferred to its own activity', {
              batch,
              line: entry.line,
              memberId: entry.member.memberId,
            });
            stopIfReceiverDown();
          }
        }
        done++;
      } catch (err) {
        interrupted(err);
      }
    });
  } finally {
    unregisterLimiter?.();
    leavePacer?.();
    clearInterval(heartbeat);
    // Whatever happened, what was decided is recorded before the activity answers.
    writing = writing.catch(() => undefined);
    await writeBehind();
    context.cancellationSignal.removeEventListener('abort', onCancel);
  }

  if (stopReason) {
    context.log.info('batch stopped early', { batch, stopReason, recorded: done });
    return {
      batch,
      complete: false,
      stopReason,
      ...(receiverUnavailableSince ? { receiverUnavailableSince } : {}),
      counts: zeroCounters(),
      deferred,
    };
  }

  const final = await store.persist(() => deps.audit.lookup(paths.auditPath, lines));
  const deferredLines = new Set(deferred.map((d) => d.line));
  const counts = zeroCounters();
  // The guard counts every decision of the batch once, deferred and held ones included.
  const decided: GuardCounts = { decisions: 0, deletes: 0 };
  for (const line of lines) {
    const outcome = final.get(line);
    if (guard) {
      const isDelete = deferredLines.has(line) ? deferredDeletes.has(line) : outcome?.outcome === 'delete';
      if (deferredLines.has(line) || (outcome && isDecision(outcome.outcome, outcome.fields))) {
        decided.decisions += 1;
        if (isDelete) decided.deletes += 1;
      }
    }
    if (!outcome) {
      if (deferredLines.has(line)) continue;
      throw new Error(`batch ${batch}: line ${line} ended without a recorded outcome`);
    }
    // A replay this backfill deferred is counted by the workflow from that replay's result. A deferred entry
    // another backfill left in a shared audit log (same auditPath) is just a recorded line here.
    if (outcome.deferred && (deferredLines.has(line) || pendingLines.has(line) || settledLines.has(line))) continue;
    countRecorded(counts, outcome.outcome, outcome.fields);
  }
  const { fields: _fields, ...tally } = counts;
  const held = deferred.filter((d) => d.held).length;
  context.log.info('batch done', {
    batch,
    ...tally,
    deferred: deferred.length,
    ...(held ? { heldDeletes: held } : {}),
  });
  return { batch, complete: true, counts, deferred, ...(guard ? { decided } : {}), ...channelPace(deps, paceAtStart) };
}

/** The batch's target, whose sends wait while a write waits for the store: nothing is sent that cannot be recorded. */
function sendWhenStored(target: WebhookSender, store: StoreGate): WebhookSender {
  return {
    send: async (input) => {
      await store.open();
      return target.send(input);
    },
    ...(target.route ? { route: (input) => target.route!(input) } : {}),
    ...(target.plan ? { plan: (input) => target.plan!(input) } : {}),
    close: () => target.close(),
  };
}

/**
 * The rate limit as the worker's pacer sees it now, with its 429s, warnings and waits since the pacer started: totals
 * of the worker, not of this batch (its batches and re-lookups share one pacer), which the workflow keeps per pacer
 * and sums (workflows/backfill-state.ts addChannelPace), so batches running side by side are not counted twice.
 */
function channelPace(deps: BatchDeps, start: PacerSnapshot | undefined): { channelPace?: ChannelPace } {
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

/** The batch's view of the delete guard, from the run's thresholds (defaults for options parsed before it). */
function startGuard(input: BatchGuardInput, options: BackfillOptions): BatchGuardView {
  return new BatchGuardView(input, {
    maxDeleteShare: options.maxDeleteShare ?? DEFAULT_GUARD.maxDeleteShare,
    minDecisions: options.deleteGuardMinDecisions ?? DEFAULT_GUARD.minDecisions,
  });
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

function skippedEntry(ctx: RepairContext, line: number, memberId: string | undefined, reason: string): AuditEntry {
  return {
    ts: ctx.now().toISOString(),
    backfill: ctx.backfill,
    runLabel: ctx.runLabel,
    line,
    ...(memberId ? { memberId } : {}),
    outcome: 'skipped',
    reason,
    dryRun: ctx.dryRun,
  };
}

function minDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}
