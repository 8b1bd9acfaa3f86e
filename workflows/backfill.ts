import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { BackfillActivities } from '../activities';
import {
  pauseSignal,
  progressQuery,
  resumeSignal,
  type BackfillInput,
  type BackfillResult,
  type BatchResult,
  type CarriedState,
  type Counters,
  type DeferredResult,
  type FieldCounts,
  type Progress,
} from './definitions';
import { rateShare } from './rate-share';
import { describeStatic, publish, type LiveView } from './visibility';

const { prepareBackfill } = proxyActivities<BackfillActivities>({
  summary: 'read and check the member source',
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['InvalidInput', 'InvalidConfig', 'InvalidSource'] },
});

// A batch is retried until it completes: per-member failures are outcomes, not activity failures, so
// an activity failure here means the worker died or the disk failed, and retrying is the right answer.
// The heartbeat timeout bounds how long a crashed worker's batch waits before another worker takes it.
const batchActivities = (heartbeatSeconds: number, summary: string) =>
  proxyActivities<BackfillActivities>({
    summary,
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: `${heartbeatSeconds} seconds`,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes: ['InvalidInput'] },
  });

// One member's replay that the batch could not deliver quickly. It retries on its own schedule (the
// activity honours Retry-After and records "failed" itself on its last attempt), so it never holds
// back other members.
const replayActivities = (summary: string) =>
  proxyActivities<BackfillActivities>({
  summary,
  startToCloseTimeout: '2 minutes',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
  });

// Runs recorded before the dynamic rate share gave every batch `share: parallelBatches`; they must replay the
// same activity inputs.
const RATE_SHARE_PATCH = 'dynamic-rate-share-v1';

/** Deferred replays allowed to wait at once before new batches stop starting (backpressure). */
const MAX_DEFERRED_BACKLOG = 500;

const zeroFields = (): FieldCounts => ({ mobileNumber: 0, email: 0, unsubscribeEmail: 0, unsubscribeTexting: 0 });
const zeroCounters = (): Counters => ({ processed: 0, upserts: 0, deletes: 0, unchanged: 0, failed: 0, skipped: 0, fields: zeroFields() });

function addCounts(into: Counters, from: Counters): void {
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

function countOutcome(into: Counters, result: DeferredResult): void {
  into.processed += 1;
  if (result.outcome === 'upsert') into.upserts += 1;
  else if (result.outcome === 'delete') into.deletes += 1;
  else into.failed += 1;
  if (result.outcome === 'upsert' && result.fields) {
    const fields = (into.fields ??= zeroFields());
    for (const key of result.fields) fields[key] += 1;
  }
}

export async function backfillWebhooks(input: BackfillInput): Promise<BackfillResult> {
  const info = workflowInfo();
  const { carried, ...userInput } = input;

  // Signals and queries are live before the (possibly long) preparation, so a pause sent right
  // after start is honoured before the first fetch.
  let pendingPause: { reason: string | null } | null = null;
  let state: CarriedState | undefined = carried;
  const inflight = new Map<number, CancellationScope>();
  const replaying = new Map<number, CancellationScope>();
  let fatal: unknown;
  let changes = 0;
  const changed = () => {
    changes += 1;
  };

  const pause = (reason: string | null) => {
    if (!state) {
      pendingPause = { reason };
      return;
    }
    state.paused = true;
    state.pauseReason = reason;
    for (const scope of inflight.values()) scope.cancel();
    for (const scope of replaying.values()) scope.cancel();
    changed();
  };

  setHandler(pauseSignal, (reason?: string) => pause(reason ?? 'paused by signal'));
  setHandler(resumeSignal, () => {
    pendingPause = null;
    if (state) {
      state.paused = false;
      state.pauseReason = null;
    }
    changed();
  });
  setHandler(progressQuery, (): Progress => {
    const counters = state?.counters ?? zeroCounters();
    return {
      ...counters,
      total: state?.prepared.rows ?? 0,
      batchesDone: state?.batchesDone ?? 0,
      batchesTotal: state?.prepared.batches ?? 0,
      pendingReplays: state?.deferred.length ?? 0,
      paused: state ? state.paused : pendingPause !== null,
      pauseReason: state ? state.pauseReason : (pendingPause?.reason ?? null),
      dryRun: state?.prepared.options.dryRun ?? userInput.dryRun ?? false,
      runs: state?.runs ?? 1,
      auditPath: state?.prepared.paths.auditPath ?? null,
      done: state !== undefined && isDone(state),
    };
  });

  if (!state) {
    const prepared = await prepareBackfill({
      input: userInput,
      workflowId: info.workflowId,
      firstRunId: info.firstExecutionRunId,
    }).catch((err: unknown) => {
      // Surface "bad input/configuration" as the run's own failure message, readable in the Web UI.
      if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.nonRetryable) {
        throw ApplicationFailure.nonRetryable(err.cause.message, err.cause.type ?? undefined);
      }
      throw err;
    });
    state = {
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
    const early = pendingPause as { reason: string | null } | null;
    if (early) pause(early.reason);
    log.info('backfill prepared', { rows: prepared.rows, batches: prepared.batches, dryRun: prepared.options.dryRun });
  }
  const s: CarriedState = state;
  const { options, paths } = s.prepared;
  const view: LiveView = { startedAtMs: Date.now(), startProcessed: s.counters.processed, lastPublishedProcessed: -1 };
  let lastError: string | null = null;
  describeStatic(s);

  const onBatchResult = (result: BatchResult) => {
    for (const d of result.deferred) {
      if (!s.deferred.some((known) => known.line === d.line)) s.deferred.push(d);
    }
    if (result.complete) {
      addCounts(s.counters, result.counts);
      s.batchesDone += 1;
      return;
    }
    s.redo.push(result.batch);
    if (result.stopReason === 'bad-credentials') lastError = 'Channel Talk answered 401/403 (bad credentials)';
    if (result.stopReason === 'bad-credentials' && !s.paused) {
      pause('Channel Talk rejected the API credentials (HTTP 401/403): fix CHANNEL_ACCESS_KEY/SECRET on the workers, then send the resume signal');
      log.warn('paused: Channel Talk rejected the credentials');
    }
  };

  const launchBatch = (batch: number) => {
    // The batch's part of the rate budget: 1/share of it, where share counts the batches that may still run
    // alongside this one (workflows/rate-share.ts). `batch` has already left the redo queue / nextBatch.
    const share = patched(RATE_SHARE_PATCH)
      ? rateShare({ parallelBatches: options.parallelBatches, inFlight: inflight.size, redo: s.redo.length, notStarted: s.prepared.batches - s.nextBatch })
      : options.parallelBatches;
    const scope = new CancellationScope();
    inflight.set(batch, scope);
    scope
      .run(() =>
        batchActivities(options.batchHeartbeatSeconds ?? 20, `batch ${batch + 1} of ${s.prepared.batches}`).processBatch({
          batch,
          backfill: info.workflowId,
          options,
          paths,
          share,
        }),
      )
      .then(onBatchResult, (err: unknown) => {
        if (isCancellation(err)) s.redo.push(batch);
        else fatal = err;
      })
      .finally(() => {
        inflight.delete(batch);
        changed();
      });
  };

  const launchReplay = (line: number) => {
    const scope = new CancellationScope();
    replaying.set(line, scope);
    scope
      .run(() =>
        replayActivities(`replay of source line ${line}`).replayDeferred({
          backfill: info.workflowId,
          line,
          paths,
          runLabel: options.runLabel,
          maxAttempts: options.replayMaxAttempts,
          target: options.target,
        }),
      )
      .then(
        (result) => {
          countOutcome(s.counters, result);
          s.deferred = s.deferred.filter((d) => d.line !== line);
        },
        (err: unknown) => {
          if (!isCancellation(err)) fatal = err;
        },
      )
      .finally(() => {
        replaying.delete(line);
        changed();
      });
  };

  const shouldRollOver = () => {
    const now = workflowInfo();
    return now.historyLength >= options.maxHistoryEvents || now.continueAsNewSuggested;
  };

  for (;;) {
    if (fatal) throw fatal;
    publish(s, view, s.paused ? 'paused' : 'running', Date.now(), s.prepared.searchAttributes === true, lastError);
    const rollOver = shouldRollOver();
    if (!s.paused && !rollOver) {
      for (const d of s.deferred) if (!replaying.has(d.line)) launchReplay(d.line);
      while (inflight.size < options.parallelBatches && s.deferred.length < MAX_DEFERRED_BACKLOG) {
        const next = s.redo.length > 0 ? s.redo.shift() : s.nextBatch < s.prepared.batches ? s.nextBatch++ : undefined;
        if (next === undefined) break;
        launchBatch(next);
      }
    }
    if (isDone(s) && inflight.size === 0 && replaying.size === 0) break;
    if (rollOver && inflight.size === 0) {
      // Waiting replays are carried into the next run rather than holding this one open.
      for (const scope of replaying.values()) scope.cancel();
    }
    if (rollOver && inflight.size === 0 && replaying.size === 0) {
      await condition(allHandlersFinished);
      log.info('continuing as new', { historyLength: workflowInfo().historyLength, processed: s.counters.processed });
      await continueAsNew<typeof backfillWebhooks>({ ...userInput, carried: { ...s, runs: s.runs + 1 } });
    }
    const seen = changes;
    await condition(() => changes !== seen);
  }

  publish(s, view, 'done', Date.now(), s.prepared.searchAttributes === true, lastError);
  await condition(allHandlersFinished);
  log.info('backfill finished', { ...s.counters });
  return { ...s.counters, total: s.prepared.rows, dryRun: options.dryRun, runs: s.runs, auditPath: paths.auditPath };
}

function isDone(s: CarriedState): boolean {
  return s.nextBatch >= s.prepared.batches && s.redo.length === 0 && s.deferred.length === 0 && s.batchesDone >= s.prepared.batches;
}
