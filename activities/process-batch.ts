import { Context } from '@temporalio/activity';
import { runPool } from '../src/run-pool';
import type { BatchResult, BackfillOptions, DeferredReplay } from '../workflows/definitions';
import { countRecorded, zeroCounters, type Counters } from '../src/domain/counters';
import {
  BatchGuardView,
  DEFAULT_GUARD,
  isDecision,
  type BatchGuardInput,
  type GuardCounts,
} from '../src/domain/delete-guard';
import { isVerifyWorkEntry, type SourceEntry, type WorkEntry } from '../src/domain/types';
import type { WebhookSender } from '../src/webhook/sender';
import {
  batchLimiter,
  batchStoreGate,
  joinPacer,
  beyondEndResult,
  beyondTheEnd,
  loadBatch,
  recordMetrics,
  runRate,
  skippedEntry,
  startBatchRun,
  type BatchFrame,
  type BatchFrameDeps,
  type BatchRun,
  type LoadedBatch,
} from './batch-run';
import type { RecheckDeps } from './recheck-replay';
import { deliverHeldDeletes } from './held-deletes';
import { repairMember, type RepairContext } from './repair-member';
import type { RunLimiters } from './run-limiters';
import type { StoreGate } from './store-outage';

export interface BatchInput extends BatchFrame {
  /** The delete guard (absent: a dry run, or a run recorded before it): the run's counts so far. */
  guard?: BatchGuardInput;
  /**
   * Stop (stopReason 'receiver-unavailable') once the webhook endpoint is down for everyone: the workflow starts
   * no batch while it is. Absent in runs recorded before it: the batch goes on deferring.
   */
  stopWhenReceiverDown?: boolean;
}

export interface BatchDeps extends BatchFrameDeps {
  /** Write a debug line per member: the worker's logger is at DEBUG or TRACE (see debugEnabled). */
  debugLogs?: boolean;
  /** This worker's running batches' limiters, which replays' lookups made again borrow (activities/run-limiters.ts). */
  runLimiters?: RunLimiters;
  /** Looks the batch's held deletes up again before it sends them (activities/held-deletes.ts); absent: it does not. */
  recheck?: RecheckDeps;
  repair: Omit<RepairContext, 'backfill' | 'runLabel' | 'dryRun' | 'limiter' | 'signal'>;
}

/** Replays this batch handed over to their own activities (now or in an earlier attempt), and which are deletes. */
interface HandedOver {
  deferred: DeferredReplay[];
  deferredDeletes: Set<number>;
}

/** A repair works on the source's entries; a verify run's are verifyBatch's. */
const isSourceEntry = (entry: WorkEntry): entry is SourceEntry => !isVerifyWorkEntry(entry);

/**
 * Repairs one batch of members. What is already recorded in the audit log (by an earlier attempt
 * that crashed or was paused) is not done again, and the returned counts are read back from the
 * audit log, so a batch counts every member exactly once however many attempts it took.
 */
export async function processBatch(deps: BatchDeps, input: BatchInput): Promise<BatchResult> {
  const context = Context.current();
  const { batch, options, paths } = input;
  if (await beyondTheEnd(deps.work, input)) return beyondEndResult(batch);
  const store = batchStoreGate(batch);
  const loaded = await loadBatch(deps, input, store, isSourceEntry);
  const guard = input.guard && !options.dryRun ? startGuard(input.guard, options) : undefined;
  const handedOver = await handedOverEarlier(deps, paths.pendingDir, loaded, guard);
  if (guard) {
    // Decisions an earlier attempt recorded are this batch's too (the run's counts have only completed batches).
    for (const [, r] of loaded.recorded) if (isDecision(r.outcome, r.fields)) guard.decided(r.outcome === 'delete');
  }
  const todo = loaded.entries.filter((e) => !loaded.recorded.has(e.line) && !loaded.pendingLines.has(e.line));
  const run = startBatchRun(deps, input, loaded.entries.length - todo.length, store);
  const ctx = repairContext(deps, input, run, guard);
  // The endpoint down for everyone: no more lookups for replays that could only wait. Members in flight finish
  // (not aborted: a lookup made is not thrown away) and hand their replays over; the rest are not started.
  let receiverUnavailableSince: string | undefined;
  const stopIfReceiverDown = () => {
    const since = input.stopWhenReceiverDown ? deps.repair.health?.unavailableSince() : undefined;
    if (since === undefined || run.stopReason()) return;
    run.stopStarting('receiver-unavailable');
    receiverUnavailableSince = new Date(since).toISOString();
  };
  const handle = memberHandler(deps, input, { ctx, run, handedOver, stopIfReceiverDown });

  // While it runs, replays of this run that look their member up again on this worker take this batch's permits.
  const unregisterLimiter = deps.runLimiters?.add(input.backfill, ctx.limiter);
  const pacer = joinPacer(deps, input);
  let sentHeld = new Set<number>();
  try {
    await runPool(todo, deps.memberConcurrency, async (entry) => {
      if (receiverUnavailableSince === undefined) await run.member(() => handle(entry));
    });
    // Its view of the guard lets deletes go now: the ones it held go too, from here, not each from a replay
    // activity of its own once the workflow releases them (held-deletes.ts). Only those this attempt held: a line
    // pending when it started was handed over by an earlier attempt, whose result (a pause stops a batch) may have
    // told the workflow, which then has a replay for it that sends and counts it; sent here too, it was counted
    // twice (cli.test's pause and resume: 305 of 300).
    const heldHere = handedOver.deferred.filter((d) => !loaded.pendingLines.has(d.line));
    if (guard?.releases() && !run.stopReason()) sentHeld = await deliverHeld(deps, input, ctx, run, heldHere);
  } finally {
    unregisterLimiter?.();
    pacer.leave();
    await run.finish();
  }
  if (sentHeld.size > 0) await settleDelivered(deps, run, paths.pendingDir, sentHeld, handedOver);

  const { deferred } = handedOver;
  const stopReason = run.stopReason();
  if (stopReason) {
    context.log.info('batch stopped early', { batch, stopReason, recorded: run.membersDone() });
    return {
      batch,
      complete: false,
      stopReason,
      ...(receiverUnavailableSince ? { receiverUnavailableSince } : {}),
      counts: zeroCounters(),
      deferred,
    };
  }
  const final = await run.store.persist(() => deps.audit.lookup(paths.auditPath, loaded.lines));
  const { counts, decided } = tallyBatch(batch, loaded, final, handedOver);
  const { fields: _fields, ...tally } = counts;
  const held = deferred.filter((d) => d.held).length;
  context.log.info('batch done', {
    batch,
    ...tally,
    deferred: deferred.length,
    ...(held ? { heldDeletes: held } : {}),
  });
  return { batch, complete: true, counts, deferred, ...(guard ? { decided } : {}), ...pacer.pace() };
}

/**
 * Lines an earlier attempt handed over to their replay activities (pending, not recorded): still this batch's. With
 * the guard, each is a decision of the batch, and a delete is held if the guard's view says so now (the workflow
 * keeps what it already knows of the line).
 */
async function handedOverEarlier(
  deps: BatchDeps,
  pendingDir: string,
  loaded: LoadedBatch<SourceEntry>,
  guard: BatchGuardView | undefined,
): Promise<HandedOver> {
  const deferredDeletes = new Set<number>();
  const deferred: DeferredReplay[] = [];
  for (const entry of loaded.entries) {
    if (!loaded.pendingLines.has(entry.line) || loaded.recorded.has(entry.line)) continue;
    const d: DeferredReplay = {
      line: entry.line,
      memberId: 'member' in entry ? entry.member.memberId : (entry.memberId ?? ''),
    };
    if (guard) {
      const isDelete = (await deps.pending.get(pendingDir, entry.line))?.event === 'delete';
      if (isDelete) deferredDeletes.add(entry.line);
      if (guard.decided(isDelete)) d.held = true;
    }
    deferred.push(d);
  }
  return { deferred, deferredDeletes };
}

/** What repairMember works with in this batch: the run's options, the batch's limiter, stop signal and guard. */
function repairContext(
  deps: BatchDeps,
  input: BatchInput,
  run: BatchRun,
  guard: BatchGuardView | undefined,
): RepairContext {
  const { options } = input;
  const rate = runRate(deps, options);
  return {
    ...deps.repair,
    ...(options.onlyChangedSince
      ? {
          decideOptions: {
            ...deps.repair.decideOptions,
            onlyChangedSince: { time: Date.parse(options.onlyChangedSince), text: options.onlyChangedSince },
          },
        }
      : {}),
    ...(deps.repair.target ? { target: sendWhenStored(deps.repair.target, run.store) } : {}),
    backfill: input.backfill,
    runLabel: options.runLabel,
    dryRun: options.dryRun,
    limiter: batchLimiter(deps, input),
    // A batch of its own would get rate / parallelBatches at least: what a lookup made again uses when none runs.
    ...(rate !== undefined ? { recheckRate: rate / Math.max(1, options.parallelBatches) } : {}),
    signal: run.signal,
    ...(guard ? { guard: { decided: (isDelete: boolean) => guard.decided(isDelete) } } : {}),
    ...(input.guard?.confirmedAt ? { deletesConfirmedAt: input.guard.confirmedAt } : {}),
  };
}

/** One member of the batch: a skipped row recorded, or repaired and recorded, or its replay handed over. */
function memberHandler(
  deps: BatchDeps,
  input: BatchInput,
  o: { ctx: RepairContext; run: BatchRun; handedOver: HandedOver; stopIfReceiverDown: () => void },
): (entry: SourceEntry) => Promise<void> {
  const context = Context.current();
  const { batch, paths } = input;
  const { ctx, run, handedOver } = o;
  // The per-member debug line costs its metadata even when the logger drops it: decided once, by the worker.
  const logMembers = deps.debugLogs === true;
  return async (entry) => {
    if ('skip' in entry) {
      run.record(skippedEntry(ctx, entry.line, entry.memberId, entry.skip));
      deps.metrics.outcome('skipped');
      return;
    }
    const { line } = entry;
    const { memberId } = entry.member;
    const result = await repairMember(line, entry.member, ctx, entry.planned);
    if (result.kind === 'recorded') {
      run.record(result.entry);
      recordMetrics(deps.metrics, result.entry);
      if (logMembers) context.log.debug('member recorded', { batch, line, memberId, outcome: result.entry.outcome });
      return;
    }
    await run.store.persist(() => deps.pending.put(paths.pendingDir, result.replay));
    if (result.replay.event === 'delete') handedOver.deferredDeletes.add(line);
    if (result.held) {
      handedOver.deferred.push({ line, memberId, held: true });
      if (logMembers) context.log.debug('delete held back by the delete guard', { batch, line, memberId });
    } else {
      deps.metrics.delivery('deferred');
      handedOver.deferred.push({ line, memberId });
      context.log.info('replay deferred to its own activity', { batch, line, memberId });
      o.stopIfReceiverDown();
    }
    run.done();
  };
}

/**
 * The batch's counts read back from the audit log (so a member is counted once however many attempts it took), and
 * the guard's: every decision of the batch once, deferred and held ones included.
 */
function tallyBatch(
  batch: number,
  loaded: LoadedBatch<SourceEntry>,
  final: LoadedBatch<SourceEntry>['recorded'],
  { deferred, deferredDeletes }: HandedOver,
): { counts: Counters; decided: GuardCounts } {
  const deferredLines = new Set(deferred.map((d) => d.line));
  const counts = zeroCounters();
  const decided: GuardCounts = { decisions: 0, deletes: 0 };
  for (const line of loaded.lines) {
    const outcome = final.get(line);
    const isDelete = deferredLines.has(line) ? deferredDeletes.has(line) : outcome?.outcome === 'delete';
    if (deferredLines.has(line) || (outcome && isDecision(outcome.outcome, outcome.fields))) {
      decided.decisions += 1;
      if (isDelete) decided.deletes += 1;
    }
    if (!outcome) {
      if (deferredLines.has(line)) continue;
      throw new Error(`batch ${batch}: line ${line} ended without a recorded outcome`);
    }
    // A replay this backfill deferred is counted by the workflow from that replay's result. A deferred entry
    // another backfill left in a shared audit log (same auditPath) is just a recorded line here.
    const countedByReplay = loaded.pendingLines.has(line) || loaded.settledLines.has(line);
    if (outcome.deferred && (deferredLines.has(line) || countedByReplay)) continue;
    countRecorded(counts, outcome.outcome, outcome.fields);
  }
  return { counts, decided };
}

/** Sends the batch's held deletes itself (held-deletes.ts); returns the lines recorded. */
async function deliverHeld(
  deps: BatchDeps,
  input: BatchInput,
  ctx: RepairContext,
  run: BatchRun,
  deferred: readonly DeferredReplay[],
): Promise<Set<number>> {
  if (!deps.recheck) return new Set();
  const sent = await deliverHeldDeletes(
    {
      pending: deps.pending,
      recheck: deps.recheck,
      limiter: ctx.limiter,
      concurrency: deps.memberConcurrency,
      repair: ctx,
      persist: (write) => run.store.persist(write),
      record: (entry) => {
        run.recordLater(entry);
        recordMetrics(deps.metrics, entry);
      },
    },
    deferred,
    input.paths,
  );
  if (sent.size > 0)
    Context.current().log.info('held deletes sent by their batch', { batch: input.batch, sent: sent.size });
  return sent;
}

/**
 * Once their outcomes are written: the held deletes the batch recorded leave its handed-over replays (the workflow
 * never hears of them) and their pending replays are settled.
 */
async function settleDelivered(
  deps: BatchDeps,
  run: BatchRun,
  pendingDir: string,
  lines: ReadonlySet<number>,
  handedOver: HandedOver,
): Promise<void> {
  handedOver.deferred = handedOver.deferred.filter((d) => !lines.has(d.line));
  for (const line of lines) await run.store.persist(() => deps.pending.settle(pendingDir, line));
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

/** The batch's view of the delete guard, from the run's thresholds (defaults for options parsed before it). */
function startGuard(input: BatchGuardInput, options: BackfillOptions): BatchGuardView {
  return new BatchGuardView(input, {
    maxDeleteShare: options.maxDeleteShare ?? DEFAULT_GUARD.maxDeleteShare,
    minDecisions: options.deleteGuardMinDecisions ?? DEFAULT_GUARD.minDecisions,
  });
}
