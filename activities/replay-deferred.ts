import { ApplicationFailure, Context } from '@temporalio/activity';
import type { AuditEntry } from '../src/audit/audit-entry';
import type { AuditStore, RecordedOutcome } from '../src/audit/audit-store';
import type { PendingReplay, PendingStore } from '../src/audit/pending-store';
import { BadCredentialsError } from '../src/channel/errors';
import { isOutageSign, type ReceiverHealth } from '../src/webhook/receiver-health';
import type { WebhookSender } from '../src/webhook/sender';
import type { JobMetrics } from '../src/observability';
import type { SendResult } from '../src/domain/types';
import { recordMetrics } from './batch-run';
import { recheckReplay, type RecheckDeps } from './recheck-replay';
import { deliveryAttempt, keepReplayAlive, keepSent, recordRefusal, sentBefore } from './replay-attempts';
import { createStoreGate, recordStoreWaits, type StoreGate } from './store-outage';
import {
  RECEIVER_UNAVAILABLE,
  type BackfillPaths,
  type DeferredResult,
  type ReplayTargetSpec,
} from '../workflows/definitions';

export interface ReplayDeferredInput {
  backfill: string;
  line: number;
  /** The member of `line`, for the audit entry of a replay that is lost (absent in runs recorded before). */
  memberId?: string;
  runLabel: string;
  paths: BackfillPaths;
  /** On this attempt the activity stops retrying and records the member as failed. */
  maxAttempts: number;
  target?: ReplayTargetSpec;
  /** The deletes were confirmed past the delete guard (resume {"confirmDeletes": true}) at this time: a delete says so. */
  deletesConfirmedAt?: string;
  /**
   * The workflow keeps a "receiver unavailable" state: an endpoint down for everyone ends this replay with a
   * non-retryable RECEIVER_UNAVAILABLE failure (the line waits in the workflow). Absent (older runs, and the one
   * replay that probes the endpoint): the attempt is retried, uncounted, until the endpoint answers.
   */
  reportOutage?: boolean;
}

export interface ReplayDeps {
  audit: AuditStore;
  metrics: JobMetrics;
  pending: PendingStore;
  target: WebhookSender | undefined;
  /** This worker's view of the target's endpoint (src/webhook/receiver-health.ts); absent: every failure counts. */
  health?: ReceiverHealth;
  now: () => Date;
  /** Looks a member up again before a replay that waited (issue 23); absent: replays are sent as stored. */
  recheck?: RecheckDeps;
}

/**
 * One member's replay, retried by Temporal on its own schedule (honouring the receiver's
 * Retry-After). It re-reads the payload it sends from the workers' disk and records the outcome
 * itself, so the count it returns is the audit log's, whichever attempt or run did the work.
 */
export async function replayDeferred(deps: ReplayDeps, input: ReplayDeferredInput): Promise<DeferredResult> {
  const stopHeartbeat = keepReplayAlive();
  try {
    return await replayOnce(deps, input);
  } finally {
    stopHeartbeat();
  }
}

/** One attempt of the replay, heartbeating as keepReplayAlive paces it. */
async function replayOnce(deps: ReplayDeps, input: ReplayDeferredInput): Promise<DeferredResult> {
  const { paths, line } = input;
  const { already, stored, reachable } = await readOpening(deps, input);
  if (already) return resultOf(line, already.outcome, already.fields, already.changedDuringRepair === true);
  if (!stored && !reachable) {
    // Refused, not tried: it does not count toward maxAttempts.
    recordRefusal();
    throw ApplicationFailure.retryable(
      `the pending directory ${paths.pendingDir} is not on this worker's disk: every worker of a file-store run needs the same BACKFILL_DATA_DIR`,
      'PendingStoreUnreachable',
    );
  }
  if (!stored) return recordLost(deps, input);
  if (!deps.target) throw ApplicationFailure.retryable('this worker has no WEBHOOK_URL and cannot replay', 'NoTarget');

  // Attempts refused by workers that could not send (no WEBHOOK_URL, no pending store) are not counted.
  const { attempt: temporalAttempt, heartbeatDetails } = Context.current().info;
  // An earlier attempt sent it and could not record what came of it (keepSent): recorded now, not sent again.
  const sent = sentBefore(heartbeatDetails, line);
  if (sent)
    return resultOf(line, (await recordEntry(deps, input, sent)).outcome, sent.fields, !!sent.changedDuringRepair);
  const attempt = deliveryAttempt(temporalAttempt, heartbeatDetails);
  const checked = await recheck(deps, input, stored, attempt);
  if (checked.kind === 'recorded') return checked.result;
  const replay = checked.replay;
  // Not aborted on cancellation (a pause): a POST the receiver may already have accepted is let finish
  // and recorded, rather than sent again later.
  // An upsert's fields route it on a channel-webhooks target (contact vs subscription scope), as in the batch.
  const fields = replay.event === 'upsert' ? replay.base.fields : undefined;
  const result = await deps.target.send({
    webhookId: replay.webhookId,
    payload: replay.payload,
    ...(fields ? { fields } : {}),
  });
  deps.health?.observe(input.memberId ?? `line ${line}`, result, deps.now().getTime());
  waitIfReceiverDown(deps, input, result);
  const outcome = await recordSent(deps, input, replay, result, attempt);
  return resultOf(line, outcome, replay.base.fields, replay.base.changedDuringRepair === true);
}

/**
 * What a replay reads before it does anything: whether the member is already recorded (then settled), else its
 * pending replay and whether the pending store is reachable at all. A store that is away (activities/store-outage.ts)
 * is waited for, as the writes are, instead of failing the attempt: an attempt that fails on a read would use up one
 * of replayMaxAttempts without sending anything. A wait counts this attempt as refused (replay-attempts.ts) until it
 * sends, in case it outlasts the attempt's timeout; the wait goes in the audit log once the store is back.
 */
async function readOpening(
  deps: ReplayDeps,
  input: ReplayDeferredInput,
): Promise<{ already?: RecordedOutcome; stored?: PendingReplay; reachable: boolean }> {
  const { paths, line } = input;
  const store = createStoreGate({ signal: Context.current().cancellationSignal, onUnavailable: () => recordRefusal() });
  const already = (await store.persist(() => deps.audit.lookup(paths.auditPath, [line]))).get(line);
  if (already) await store.persist(() => deps.pending.settle(paths.pendingDir, line));
  const stored = already ? undefined : await store.persist(() => deps.pending.get(paths.pendingDir, line));
  const reachable = already || stored ? true : await store.persist(() => deps.pending.reachable(paths.pendingDir));
  await recordReplayWaits(deps, input, store);
  return { already, stored, reachable };
}

/**
 * Lost (a deleted file, a row gone): nothing can be sent, and no retry brings it back. This member ends failed,
 * recorded and counted like any other, and the run goes on; `only` with this line repairs it later.
 */
async function recordLost(deps: ReplayDeps, input: ReplayDeferredInput): Promise<DeferredResult> {
  const { paths, line } = input;
  const who = input.memberId ? ` (member ${input.memberId})` : '';
  const entry: AuditEntry = {
    ts: deps.now().toISOString(),
    backfill: input.backfill,
    runLabel: input.runLabel,
    line,
    ...(input.memberId ? { memberId: input.memberId } : {}),
    outcome: 'failed',
    stage: 'replay',
    delivered: false,
    deferred: true,
    reason: `the pending replay of line ${line}${who} is missing from the pending store: not replayed`,
    dryRun: false,
  };
  await deps.audit.append(paths.auditPath, [entry]);
  recordMetrics(deps.metrics, entry);
  await deps.pending.settle(paths.pendingDir, line);
  Context.current().log.warn('pending replay lost: member recorded as failed', { line, memberId: input.memberId });
  return { line, outcome: 'failed' };
}

/**
 * The endpoint answers nobody: this attempt says nothing about the member, so it does not use up maxAttempts
 * (counted like a refusal, activities/replay-attempts.ts) and the replay waits for the endpoint, on Temporal's
 * backoff, however long it is away. Returns when the endpoint is not down for everyone.
 */
function waitIfReceiverDown(deps: ReplayDeps, input: ReplayDeferredInput, result: SendResult): void {
  const unavailableSince = isOutageSign(result) ? deps.health?.unavailableSince() : undefined;
  if (unavailableSince === undefined) return;
  recordRefusal();
  const since = new Date(unavailableSince).toISOString();
  throw ApplicationFailure.create({
    nonRetryable: input.reportOutage === true,
    message: `replay of line ${input.line} waits: the receiver has been unavailable since ${since} (${result.kind === 'retryable' ? result.reason : ''}); not counted toward replayMaxAttempts`,
    type: RECEIVER_UNAVAILABLE,
    details: [{ since }],
    // A 503's Retry-After still paces the probe.
    nextRetryDelay: result.kind === 'retryable' ? result.retryAfterMs : undefined,
  });
}

/**
 * Records what became of a sent replay (delivered, rejected, or given up on its last attempt) and settles it, or
 * throws for Temporal to retry it. Recorded even if the store is away for a while (activities/store-outage.ts),
 * rather than failing the attempt and sending it again on the next.
 */
async function recordSent(
  deps: ReplayDeps,
  input: ReplayDeferredInput,
  replay: PendingReplay,
  result: SendResult,
  attempt: number,
): Promise<DeferredResult['outcome']> {
  const { line } = input;
  const confirmed =
    input.deletesConfirmedAt && replay.event === 'delete' ? { deletesConfirmedAt: input.deletesConfirmedAt } : {};
  // The webhooks this attempt went to (a held delete has none yet; a retried one names the latest attempt's).
  const routed = {
    ...(result.webhooks ? { webhooks: result.webhooks } : {}),
    ...(result.deliveries ? { deliveries: result.deliveries } : {}),
  };
  const base = { ...replay.base, ts: deps.now().toISOString(), deferred: true, ...confirmed, ...routed, dryRun: false };
  let entry: AuditEntry;
  if (result.kind === 'delivered') {
    entry = { ...base, outcome: replay.event, delivered: true, status: result.status };
  } else if (result.kind === 'rejected' || attempt >= input.maxAttempts) {
    const reason =
      result.kind === 'rejected'
        ? `replay rejected: ${result.reason}`
        : `replay gave up after ${attempt} attempts: ${result.reason}`;
    entry = { ...base, outcome: 'failed', stage: 'replay', delivered: false, status: result.status, reason };
  } else {
    throw ApplicationFailure.create({
      message: `replay of line ${line} not delivered yet: ${result.reason}`,
      type: 'ReplayNotDelivered',
      nextRetryDelay: result.retryAfterMs,
    });
  }
  // Kept for the next attempt before it waits for the store: if this one cannot record it, that one does, unsent.
  keepSent(entry);
  return (await recordEntry(deps, input, entry)).outcome;
}

/**
 * Records a sent replay's entry and settles it, waiting for a store that is away (activities/store-outage.ts); should
 * that outlast this attempt, the next one finds the entry in the heartbeat details (keepSent) and records it without
 * sending again. The waits go in the audit log too.
 */
async function recordEntry(deps: ReplayDeps, input: ReplayDeferredInput, entry: AuditEntry): Promise<AuditEntry> {
  const { paths, line } = input;
  const store = createStoreGate({ signal: Context.current().cancellationSignal });
  await store.persist(() => deps.audit.append(paths.auditPath, [entry]));
  recordMetrics(deps.metrics, entry);
  await store.persist(() => deps.pending.settle(paths.pendingDir, line));
  await recordReplayWaits(deps, input, store);
  return entry;
}

/** The replay's waits for the store, in the audit log (activities/store-outage.ts). */
function recordReplayWaits(deps: ReplayDeps, input: ReplayDeferredInput, store: StoreGate): Promise<void> {
  const warn = (message: string, meta: Record<string, unknown>) => Context.current().log.warn(message, meta);
  return recordStoreWaits(deps.audit, input.paths.auditPath, store, { line: input.line }, warn);
}

/** The result the workflow counts: the recorded outcome (one per member), its fields, whether Channel Talk changed it. */
function resultOf(
  line: number,
  recorded: AuditEntry['outcome'],
  fields: AuditEntry['fields'],
  changed: boolean,
): DeferredResult {
  return {
    line,
    outcome: recorded,
    ...(recorded === 'upsert' && fields ? { fields } : {}),
    ...(changed ? { changedDuringRepair: true } : {}),
  };
}

/**
 * The replay to send, after looking the member up again when its lookup is too old (activities/recheck-replay.ts),
 * or the member recorded without a send: the fresh decision sends nothing, or the lookup made again failed on this
 * replay's last attempt. A failed lookup before that, or refused credentials, is retried later (nothing was sent).
 */
async function recheck(
  deps: ReplayDeps,
  input: ReplayDeferredInput,
  stored: PendingReplay,
  attempt: number,
): Promise<{ kind: 'send'; replay: PendingReplay } | { kind: 'recorded'; result: DeferredResult }> {
  if (!deps.recheck) return { kind: 'send', replay: stored };
  const { paths, line } = input;
  // Writes wait for a store that is away, as the delivery's do (activities/store-outage.ts).
  const store = createStoreGate({ signal: Context.current().cancellationSignal });
  let checked;
  try {
    checked = await recheckReplay(deps.recheck, stored, paths.auditPath);
  } catch (err) {
    if (!(err instanceof BadCredentialsError)) throw err;
    // Nothing was sent: the attempt does not count toward replayMaxAttempts (the batches pause the run).
    recordRefusal();
    throw ApplicationFailure.retryable(
      `replay of line ${line} waits: Channel Talk rejected the credentials when it was looked up again`,
      'BadCredentials',
    );
  }
  if (checked.kind === 'refused') {
    // Nothing was looked up or sent: not counted toward replayMaxAttempts; another worker may take it.
    recordRefusal();
    throw ApplicationFailure.retryable(`replay of line ${line} waits: ${checked.reason}`, 'WrongChannel');
  }
  if (checked.kind === 'send') {
    // Kept: a retry within REPLAY_RECHECK_AFTER_MS sends this fresh decision, not the one it replaced.
    if (checked.rechecked) await store.persist(() => deps.pending.put(paths.pendingDir, checked.replay));
    return { kind: 'send', replay: checked.replay };
  }
  if (checked.kind === 'lookup-failed' && attempt < input.maxAttempts) {
    throw ApplicationFailure.create({
      message: `replay of line ${line} waits: its member could not be looked up again (${checked.reason})`,
      type: 'RecheckFailed',
    });
  }
  const entry: AuditEntry = {
    ...checked.entry,
    ts: deps.now().toISOString(),
    deferred: true,
    dryRun: false,
    ...(checked.kind === 'lookup-failed'
      ? { reason: `looked up again before the replay, after ${attempt} attempts: ${checked.reason}` }
      : {}),
  };
  await store.persist(() => deps.audit.append(paths.auditPath, [entry]));
  recordMetrics(deps.metrics, entry);
  await store.persist(() => deps.pending.settle(paths.pendingDir, line));
  await recordReplayWaits(deps, input, store);
  return { kind: 'recorded', result: resultOf(line, entry.outcome, entry.fields, entry.changedDuringRepair === true) };
}
