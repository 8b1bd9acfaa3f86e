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
  proxySinks,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { BackfillActivities } from '../activities';
import type { BatchControlSinks } from '../activities/pause-notices';
import {
  pauseSignal,
  pauseUpdate,
  progressQuery,
  resumeSignal,
  resumeUpdate,
  type ControlAnswer,
  type BackfillInput,
  type BackfillOptions,
  type BackfillResult,
  type BatchResult,
  type CarriedState,
  type ResumeOptions,
  RECEIVER_UNAVAILABLE,
} from './definitions';
import { BAD_CREDENTIALS_PAUSE, BackfillState, holdsForNormaliser, runCounters } from './backfill-state';
import { refuseCarried } from './carried-origin';
import { validatePauseArgument, validateResumeArgument } from './control-arguments';
import { rateShare } from '../src/domain/rate-share';
import { ReceiverWaits } from './receiver-waits';
import { describeStatic, publish, type LiveView } from './visibility';

const { prepareBackfill } = proxyActivities<BackfillActivities>({
  summary: 'read and check the member source',
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['InvalidInput', 'InvalidConfig', 'InvalidSource'] },
});

// The rest of a long source, normalised into the work set while the batches already run (patch 'prepare-overlap-v1').
// Retried like the preparation; once Temporal gives up, the run pauses itself with the reason and a resume retries.
// It heartbeats every 5 s and after each batch: a crashed worker's normaliser is taken over within 20 s, as a batch
// is, since the batches wait for it.
const { normaliseSource } = proxyActivities<BackfillActivities>({
  summary: 'normalise the rest of the member source',
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '20 seconds',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['InvalidInput', 'InvalidConfig', 'InvalidSource'] },
});

// Once the run is over its work set and pending replays (emails, phone numbers) are of no use: removed. The audit
// log stays (no personal data; later runs' `only`/`fromPlan` and the report read it). BACKFILL_KEEP_WORK_DATA keeps
// them (the activity checks it).
const { cleanupBackfill } = proxyActivities<BackfillActivities>({
  summary: 'delete the work set and pending replays (personal data)',
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 10, maximumInterval: '1 minute' },
});

// A batch is retried until it completes: per-member failures are outcomes, not activity failures, so
// an activity failure here means the worker died or the disk failed, and retrying is the right answer.
// The heartbeat timeout bounds how long a crashed worker's batch waits before another worker takes it; the backoff
// between attempts grows to batchMaxBackoffSeconds (absent: the default).
const BATCH_HEARTBEAT_SECONDS = 20;
const BATCH_MAX_BACKOFF_SECONDS = 30;
const batchActivities = (options: BackfillOptions, summary: string) =>
  proxyActivities<BackfillActivities>({
    summary,
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: `${options.batchHeartbeatSeconds ?? BATCH_HEARTBEAT_SECONDS} seconds`,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '1 second',
      maximumInterval: `${options.batchMaxBackoffSeconds ?? BATCH_MAX_BACKOFF_SECONDS} seconds`,
      nonRetryableErrorTypes: ['InvalidInput'],
    },
  });

// One member's replay that the batch could not deliver quickly. It retries on its own schedule (the
// activity honours Retry-After and records "failed" itself on its last attempt), so it never holds
// back other members. An attempt lasts at most replayAttemptTimeoutSeconds, the backoff between attempts grows to
// replayMaxBackoffSeconds (absent: these defaults). It heartbeats while it waits (activities/replay-attempts.ts,
// keepReplayAlive), so a crashed worker's replay is tried again after the heartbeat timeout, as a batch is, not after
// the attempt's. No patch: the replay of a history checks an activity's type and id, not its timeouts, and a replay
// scheduled with either set of options is done by the same activity code (test/integration/replay.test.ts).
const REPLAY_ATTEMPT_TIMEOUT_SECONDS = 120;
const REPLAY_HEARTBEAT_SECONDS = 20;
const REPLAY_MAX_BACKOFF_SECONDS = 30;
const replayActivities = (summary: string, options: BackfillOptions) =>
  proxyActivities<BackfillActivities>({
    summary,
    startToCloseTimeout: `${options.replayAttemptTimeoutSeconds ?? REPLAY_ATTEMPT_TIMEOUT_SECONDS} seconds`,
    heartbeatTimeout: `${REPLAY_HEARTBEAT_SECONDS} seconds`,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: `${options.replayMaxBackoffSeconds ?? REPLAY_MAX_BACKOFF_SECONDS} seconds`,
    },
  });

const { batchControl } = proxySinks<BatchControlSinks>();

// Runs recorded before the dynamic rate share gave every batch `share: parallelBatches`; they must replay the
// same activity inputs.
const RATE_SHARE_PATCH = 'dynamic-rate-share-v1';
// Runs recorded before a re-reported deferred line was dropped (it was replayed and counted twice).
const COUNT_ONCE_PATCH = 'deferred-count-once-v1';
// Runs recorded before at most MAX_REPLAYS_IN_FLIGHT deferred replays ran at once.
const REPLAY_CAP_PATCH = 'replay-cap-v1';
// Runs recorded before a replay's input named its member (for the audit entry of a lost pending replay).
const REPLAY_MEMBER_PATCH = 'replay-member-id-v1';
// Runs recorded before the delete guard (workflows/delete-guard.ts) held deletes back and paused mass deletes.
const DELETE_GUARD_PATCH = 'delete-guard-v1';
// Runs recorded before a completed run removed its work data.
const CLEANUP_PATCH = 'cleanup-work-data-v1';
// Runs recorded before a replay that waited was looked up again and could end unchanged or skipped (issue 23).
const RECHECK_PATCH = 'recheck-before-replay-v1';
// Runs recorded before the "receiver unavailable" state: batches stop and replays report an endpoint down for
// everyone, no batch starts while it lasts, one replay probes it, and the run pauses itself after a horizon.
const RECEIVER_OUTAGE_PATCH = 'receiver-outage-v1';
// Verify runs recorded before a verify run's batches were their own activity (verifyBatch), not processBatch's.
const VERIFY_BATCH_PATCH = 'verify-batch-v1';
// Runs recorded before the preparation overlapped the work: their preparation normalised the whole source first.
const PREPARE_OVERLAP_PATCH = 'prepare-overlap-v1';
// Runs recorded before a run still reading its source held past twice its history threshold (holdsForNormaliser).
const HISTORY_HOLD_PATCH = 'history-hold-while-normalising-v1';

/** Whether the run continues as new now, and whether it starts nothing new (holdsForNormaliser). */
function whatStops(rollOverDue: boolean, maxHistoryEvents: number, prepared: { normalising?: boolean }) {
  // Continuing as new waits for the normaliser: the next run starts with the real totals.
  const rollOver = rollOverDue && prepared.normalising !== true;
  const hold =
    rollOverDue &&
    holdsForNormaliser(workflowInfo().historyLength, maxHistoryEvents, prepared.normalising === true) &&
    patched(HISTORY_HOLD_PATCH);
  return { rollOver, noNewWork: rollOver || hold };
}

/** The pause reason when the rest of the source could not be normalised (Temporal gave up retrying it). */
export function normaliseFailedPause(err: unknown): string {
  const cause = err instanceof ActivityFailure && err.cause ? err.cause.message : String(err);
  return `the member source could not be read to its end: ${cause}; the batches done stay done, resume reads it again`;
}

/** Since when the endpoint is down, when `err` is a replay's report that it is (RECEIVER_UNAVAILABLE), else undefined. */
function receiverDownSince(err: unknown): string | undefined {
  if (!(err instanceof ActivityFailure) || !(err.cause instanceof ApplicationFailure)) return undefined;
  if (err.cause.type !== RECEIVER_UNAVAILABLE) return undefined;
  const since = (err.cause.details?.[0] as { since?: unknown } | undefined)?.since;
  return typeof since === 'string' ? since : new Date(Date.now()).toISOString();
}

// The loop: run what the state (workflows/backfill-state.ts) says to run, feed results back, sleep until
// something changes. Decisions live in BackfillState; this function owns only Temporal things (activities,
// cancellation scopes, continue-as-new, handlers).
export async function backfillWebhooks(input: BackfillInput): Promise<BackfillResult> {
  const info = workflowInfo();
  const { carried, ...userInput } = input;
  // Before anything else (handlers, activities): a client-made `carried` would skip every check of the preparation.
  const refusal = refuseCarried(carried !== undefined, info);
  if (refusal) throw ApplicationFailure.nonRetryable(refusal, 'InvalidInput');

  // Signals and queries are live before the (possibly long) preparation, so a pause sent right
  // after start is honoured before the first fetch.
  const run = new BackfillState(carried, { deleteGuard: patched(DELETE_GUARD_PATCH) });
  const outageAware = patched(RECEIVER_OUTAGE_PATCH);
  const inflight = new Map<number, CancellationScope>();
  const replaying = new Map<number, CancellationScope>();
  let fatal: unknown;
  let changes = 0;
  const changed = () => {
    changes += 1;
  };

  const pause = (reason: string | null) => {
    if (!run.pause(reason)) return;
    for (const scope of inflight.values()) scope.cancel();
    for (const scope of replaying.values()) scope.cancel();
    // Not a command and not in the history (nor called on replay): this worker's batches heartbeat now, to learn of
    // the cancellation sooner than their next paced heartbeat (activities/pause-notices.ts).
    if (inflight.size > 0) batchControl.paused();
    changed();
  };

  // Receiver outages go in the audit log when they end; recordings are waited for before continuing as new and at the end.
  const waits = new ReceiverWaits(run);
  setControlHandlers(run, waits, pause, changed, userInput.dryRun);

  if (!run.prepared) await prepare(run, userInput, pause);
  const s: CarriedState = run.s;
  const { options, paths } = s.prepared;
  const view: LiveView = { startedAtMs: Date.now(), startProcessed: run.processed(), lastPublishedProcessed: -1 };
  let lastError: string | null = null;
  describeStatic(s);

  const onReceiverDown = (since: string) =>
    log.warn('receiver unavailable: no batch starts and one replay probes it until it answers', { since });

  const onBatchResult = (result: BatchResult) => {
    const effect = run.onBatchResult(result, () => patched(COUNT_ONCE_PATCH));
    if (effect.lastError) lastError = effect.lastError;
    if (effect.receiverDown) onReceiverDown(effect.receiverDown);
    if (effect.pause) {
      pause(effect.pause);
      log.warn(
        effect.pause === BAD_CREDENTIALS_PAUSE
          ? 'paused: Channel Talk rejected the credentials'
          : 'paused by the delete guard',
        { reason: effect.pause },
      );
    }
  };

  const launchBatch = (batch: number) => {
    // The batch's part of the rate budget: 1/share of it, where share counts the batches that may still run
    // alongside this one (workflows/rate-share.ts). `batch` has already left the redo queue / nextBatch.
    const share = patched(RATE_SHARE_PATCH)
      ? rateShare({
          parallelBatches: options.parallelBatches,
          inFlight: inflight.size,
          redo: s.redo.length,
          // While the source is still being read, more batches are to come: as many as may run.
          notStarted: s.prepared.normalising ? options.parallelBatches : s.prepared.batches - s.nextBatch,
        })
      : options.parallelBatches;
    const guard = run.batchGuard();
    const scope = new CancellationScope();
    inflight.set(batch, scope);
    const reading = s.prepared.normalising === true;
    const activities = batchActivities(
      options,
      reading ? `batch ${batch + 1} (the source is still being read)` : `batch ${batch + 1} of ${s.prepared.batches}`,
    );
    const frame = {
      batch,
      backfill: info.workflowId,
      options,
      paths,
      share,
      ...(reading ? { awaitRows: true as const } : {}),
    };
    // A verify run's batch checks an earlier repair: its own activity, which never replays.
    const verifying = options.verifyAfter !== undefined && patched(VERIFY_BATCH_PATCH);
    scope
      .run(() =>
        verifying
          ? activities.verifyBatch(frame)
          : activities.processBatch({
              ...frame,
              ...(guard ? { guard } : {}),
              ...(outageAware ? { stopWhenReceiverDown: true } : {}),
            }),
      )
      .then(onBatchResult, (err: unknown) => {
        // A batch that fails after its cancellation was asked for (pause, roll-over) is redone like a cancelled
        // one: the server does not retry an attempt that ends after a cancel request, failed or not.
        if (isCancellation(err) || scope.consideredCancelled) run.onBatchCancelled(batch);
        else fatal = err;
      })
      .finally(() => {
        inflight.delete(batch);
        changed();
      });
  };

  const launchReplay = (line: number) => {
    const memberId = s.deferred.find((d) => d.line === line)?.memberId;
    const deletesConfirmedAt = run.deletesConfirmedAt;
    // While the endpoint is down the one replay launched is the probe: it waits for the endpoint (uncounted
    // attempts) instead of reporting the outage again.
    const reportOutage = outageAware && !s.receiverDown;
    const scope = new CancellationScope();
    replaying.set(line, scope);
    scope
      .run(() =>
        replayActivities(`replay of source line ${line}`, options).replayDeferred({
          backfill: info.workflowId,
          line,
          ...(memberId && patched(REPLAY_MEMBER_PATCH) ? { memberId } : {}),
          paths,
          runLabel: options.runLabel,
          maxAttempts: options.replayMaxAttempts,
          target: options.target,
          ...(deletesConfirmedAt ? { deletesConfirmedAt } : {}),
          ...(reportOutage ? { reportOutage } : {}),
        }),
      )
      .then(
        (result) =>
          waits.ending('answered', () => run.onReplayResult(line, result, running, () => patched(RECHECK_PATCH))),
        (err: unknown) => {
          // Cancelled (pause, roll-over), even when the attempt then failed (a probe refused by the endpoint while
          // its cancellation was on the way): the line stays among the waiting replays.
          if (isCancellation(err) || scope.consideredCancelled) return;
          const since = reportOutage ? receiverDownSince(err) : undefined;
          // The line stays among the waiting replays.
          if (since === undefined) fatal = err;
          else if (run.receiverUnavailable(since).receiverDown) onReceiverDown(since);
        },
      )
      .finally(() => {
        replaying.delete(line);
        changed();
      });
  };

  // The normaliser (only when the preparation left the rest of the source to it); a failure pauses the run and keeps
  // it from starting again until a resume.
  const normaliser = { running: false, failed: false };
  const onNormaliseFailed = (reason: string) => {
    lastError = reason;
    pause(reason);
  };

  const running = { batches: inflight, replays: replaying };
  const shouldRollOver = () => {
    const now = workflowInfo();
    return now.historyLength >= options.maxHistoryEvents || now.continueAsNewSuggested;
  };

  for (;;) {
    if (fatal) throw fatal;
    const outageOver = outageAware ? waits.pauseIfExpired(Date.now()) : null;
    if (outageOver) {
      pause(outageOver);
      log.warn('paused: the receiver has been unavailable for longer than receiverOutagePauseSeconds', {
        reason: outageOver,
      });
    }
    normaliseIfDue(run, normaliser, userInput, onNormaliseFailed, changed);
    publish(s, view, s.paused ? 'paused' : 'running', Date.now(), s.prepared.searchAttributes === true, lastError);
    const { rollOver, noNewWork } = whatStops(shouldRollOver(), options.maxHistoryEvents, s.prepared);
    const replays = waits.ending('nothing-waiting', () =>
      run.replaysToLaunch(running, noNewWork, () => patched(REPLAY_CAP_PATCH)),
    );
    for (const line of replays) launchReplay(line);
    for (
      let next = run.takeNextBatch(inflight.size, noNewWork);
      next !== undefined;
      next = run.takeNextBatch(inflight.size, noNewWork)
    ) {
      launchBatch(next);
    }
    if (run.finished(running)) break;
    if (rollOver && inflight.size === 0) {
      // Waiting replays are carried into the next run rather than holding this one open.
      for (const scope of replaying.values()) scope.cancel();
    }
    if (rollOver && inflight.size === 0 && replaying.size === 0) {
      await condition(allHandlersFinished);
      await waits.settled();
      log.info('continuing as new', { historyLength: workflowInfo().historyLength, processed: run.processed() });
      await continueAsNew<typeof backfillWebhooks>({ ...userInput, carried: run.carriedForNext() });
    }
    const seen = changes;
    // While the endpoint is down, wake up when the outage pause is due.
    const outageDueInMs = outageAware ? run.receiverOutageDueInMs(Date.now()) : undefined;
    if (outageDueInMs === undefined) await condition(() => changes !== seen);
    else await condition(() => changes !== seen, Math.max(1, outageDueInMs));
  }

  await waits.settled();
  return finish(s, view, lastError);
}

/** Pause and resume (signals, and updates that answer what happened) and the progress query. */
function setControlHandlers(
  run: BackfillState,
  waits: ReceiverWaits,
  pause: (reason: string | null) => void,
  changed: () => void,
  dryRun: boolean | undefined,
): void {
  const doPause = (reason: string | null | undefined): ControlAnswer => {
    const wasPaused = run.progress(dryRun).paused;
    pause(reason ?? 'paused by signal');
    return run.controlAnswer({ paused: true, wasPaused });
  };
  const doResume = (options: ResumeOptions | null | undefined): ControlAnswer => {
    // The argument is user input (temporal CLI --input): only a literal `true` confirms.
    const confirm = typeof options === 'object' && options !== null && options.confirmDeletes === true;
    const effect = waits.ending('resumed', () => run.resume(confirm ? new Date(Date.now()).toISOString() : undefined));
    if (effect.confirmed)
      log.warn('deletes confirmed by resume: the delete guard lets them go for the rest of the run');
    if (effect.stillPaused)
      log.warn(
        'still paused: the delete guard holds the deletes back; resume with {"confirmDeletes": true} to let them go',
        { reason: effect.stillPaused },
      );
    changed();
    return run.controlAnswer(effect);
  };
  setHandler(pauseSignal, (reason?: string) => void doPause(reason));
  setHandler(resumeSignal, (options?: ResumeOptions) => void doResume(options));
  // The same, acknowledged: the caller learns what happened (resumed, still paused by the delete guard, ...).
  setHandler(pauseUpdate, doPause, { validator: validatePauseArgument });
  setHandler(resumeUpdate, doResume, { validator: validateResumeArgument });
  setHandler(progressQuery, () => run.progress(dryRun));
}

/** The preparation (once per run, not again after continue-as-new): its bad input fails the run with its message. */
async function prepare(
  run: BackfillState,
  userInput: Omit<BackfillInput, 'carried'>,
  pause: (reason: string | null) => void,
): Promise<void> {
  const info = workflowInfo();
  const overlap = patched(PREPARE_OVERLAP_PATCH);
  const prepared = await prepareBackfill({
    input: userInput,
    workflowId: info.workflowId,
    firstRunId: info.firstExecutionRunId,
    ...(overlap ? { overlap } : {}),
  }).catch((err: unknown) => {
    // Surface "bad input/configuration" as the run's own failure message, readable in the Web UI.
    if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.nonRetryable) {
      throw ApplicationFailure.nonRetryable(err.cause.message, err.cause.type ?? undefined);
    }
    throw err;
  });
  const early = run.start(prepared);
  if (early) pause(early.reason);
  log.info('backfill prepared', { rows: prepared.rows, batches: prepared.batches, dryRun: prepared.options.dryRun });
}

/** Starts the normaliser while the source is still being read, unless it runs, or failed and the run stays paused. */
function normaliseIfDue(
  run: BackfillState,
  normaliser: { running: boolean; failed: boolean },
  userInput: Omit<BackfillInput, 'carried'>,
  failed: (reason: string) => void,
  changed: () => void,
): void {
  if (!run.s.prepared.normalising || normaliser.running || (normaliser.failed && run.s.paused)) return;
  normaliser.running = true;
  normaliser.failed = false;
  void normaliseRest(run, userInput, (reason) => {
    normaliser.failed = true;
    failed(reason);
  }).finally(() => {
    normaliser.running = false;
    changed();
  });
}

/**
 * The rest of the source into the work set, beside the batches (patch 'prepare-overlap-v1'): its totals replace the
 * preparation's lower bound; once Temporal gives up retrying it, `failed` pauses the run with the reason.
 */
async function normaliseRest(
  run: BackfillState,
  userInput: Omit<BackfillInput, 'carried'>,
  failed: (reason: string) => void,
): Promise<void> {
  const info = workflowInfo();
  try {
    const totals = await normaliseSource({
      input: userInput,
      workflowId: info.workflowId,
      firstRunId: info.firstExecutionRunId,
      batchSize: run.s.prepared.options.batchSize,
    });
    run.onNormalised(totals);
    describeStatic(run.s);
    log.info('source normalised', { rows: totals.rows, batches: totals.batches });
  } catch (err) {
    const reason = normaliseFailedPause(err);
    log.warn('paused: the member source could not be read to its end', { reason });
    failed(reason);
  }
}

/** The run is done: shown as done, its work data removed, and its result. */
async function finish(s: CarriedState, view: LiveView, lastError: string | null): Promise<BackfillResult> {
  const { options, paths } = s.prepared;
  publish(s, view, 'done', Date.now(), s.prepared.searchAttributes === true, lastError);
  await condition(allHandlersFinished);
  if (patched(CLEANUP_PATCH)) {
    try {
      await cleanupBackfill({ paths });
    } catch (err) {
      log.warn('cleanup of work data failed; run `webhook-backfill purge`', { error: String(err) });
    }
  }
  const counters = runCounters(s);
  log.info('backfill finished', { ...counters });
  return {
    ...counters,
    total: s.prepared.rows,
    dryRun: options.dryRun,
    runs: s.runs,
    auditPath: paths.auditPath,
    // Only a verify run's result has it: every other run's result is what it was.
    ...(s.verify ? { verify: { ...s.verify.verdicts } } : {}),
    // The run's 429s, grace warnings and waits on Channel Talk's rate limit (`report` sums them up).
    ...(s.channelPace ? { channelPace: s.channelPace } : {}),
  };
}
