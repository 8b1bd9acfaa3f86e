import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Config } from '../src/config';
import { noMetrics, type JobMetrics } from '../src/observability';
import type { AuditStore } from '../src/audit/audit-store';
import type { RunWait } from '../src/audit/run-wait';
import type { PendingStore } from '../src/audit/pending-store';
import type { WorkStore } from '../src/store/work-store';
import { cleanupBackfill, type CleanupInput } from './cleanup';
import type { ChannelPacer } from '../src/channel/channel-pacer';
import type { ChannelClient } from '../src/channel/client';
import { healthPerSender } from '../src/webhook/receiver-health';
import type { WebhookSender } from '../src/webhook/sender';
import { runPathsProblem } from '../src/store/data-dir';
import type { BackfillPaths, ReplayTargetSpec } from '../workflows/definitions';
import { normaliseSource, type NormaliseInput } from './normalise';
import { prepareBackfill, type PrepareInput } from './prepare';
import { processBatch, type BatchInput } from './process-batch';
import { verifyBatch } from './verify-batch';
import type { BatchFrame } from './batch-run';
import { replayDeferred, type ReplayDeferredInput } from './replay-deferred';
import { recordRefusal } from './replay-attempts';
import { createRunLimiters } from './run-limiters';
import type { DecideOptions } from '../src/domain/decide';
import type { RecheckDeps } from './recheck-replay';
import type { PauseNotices } from './pause-notices';

export interface ActivityDeps {
  config: Config;
  /** The Channel Talk API (real, or the simulator in tests and the demo). */
  channel: ChannelClient;
  /** The worker's pacer that `channel` paces by: each batch joins it with its share of the run. */
  pacer?: ChannelPacer;
  /** The customer's webhook endpoint (WEBHOOK_URL); undefined on a worker without one. */
  target: WebhookSender | undefined;
  /** Replays to every webhook registered on the channel (target type "channel-webhooks"). */
  channelWebhooks?: WebhookSender;
  audit: AuditStore;
  pending: PendingStore;
  /** The work set and its batch boundaries (BACKFILL_STORE). */
  work: WorkStore;
  /** The job's own counters (Prometheus when configured). */
  metrics?: JobMetrics;
  /** Whether the cluster knows the Backfill* search attributes (the workflow sets them only then). */
  searchAttributesRegistered?: () => Promise<boolean>;
  /** This worker's Temporal identity (`<pid>@<host>`), named when it refuses work it cannot do. */
  workerIdentity?: string;
  /** The workflows' pause notices to this worker (its `batchControl` sink): running batches heartbeat at once. */
  pauseNotices?: PauseNotices;
  /** Per-member debug lines in batches (the worker's logger is at DEBUG/TRACE). Default false. */
  debugLogs?: boolean;
  now?: () => Date;
}

export interface RecordWaitInput {
  paths: BackfillPaths;
  wait: RunWait;
}

/** Activities get their dependencies here, so tests pass real or local ones without module mocking. */
export function createActivities({
  config,
  channel,
  pacer,
  target,
  channelWebhooks,
  audit,
  pending,
  work,
  metrics = noMetrics,
  searchAttributesRegistered,
  debugLogs = false,
  pauseNotices,
  workerIdentity = 'this worker',
  now = () => new Date(),
}: ActivityDeps) {
  const targetFor = (spec: ReplayTargetSpec | undefined) =>
    spec?.type === 'channel-webhooks' ? channelWebhooks : target;
  // One view per endpoint for the whole worker: batches and replays alike tell it what they see.
  const healthOf = healthPerSender<WebhookSender>();
  const healthFor = (spec: ReplayTargetSpec | undefined) => {
    const sender = targetFor(spec);
    return sender ? { health: healthOf(sender) } : {};
  };
  const decideOptions: DecideOptions = {
    defaultRegion: config.PHONE_DEFAULT_REGION,
    unifiedType: config.UNIFIED_USER_TYPE,
  };
  // Lookups made again before replays spend the run's budget: a running batch's permits (activities/run-limiters.ts).
  const runLimiters = createRunLimiters(config.CHANNEL_RATE_LIMIT);
  // The channel this worker's credentials open, asked once (again after an answer that could not tell).
  let workerChannel: Promise<string | undefined> | undefined;
  const channelOfWorker = (): Promise<string | undefined> =>
    (workerChannel ??= channel.getChannel().then(
      (r) => {
        if (r.kind === 'found') return r.channel.id;
        workerChannel = undefined;
        return undefined;
      },
      () => {
        workerChannel = undefined;
        return undefined;
      },
    ));
  const recheck: RecheckDeps = {
    channel,
    // The run's channel is the one its preparation checked (the audit log's header; absent in logs from before).
    async channelCheck(auditPath) {
      const header = await audit.header(auditPath);
      if (!header) return undefined;
      const mine = await channelOfWorker();
      if (mine === header.channel.id) return undefined;
      return mine === undefined
        ? `worker ${workerIdentity} cannot tell which channel its credentials open, so it does not look members up again`
        : `worker ${workerIdentity}'s credentials open channel ${mine}, not the run's channel ${header.channel.id}: it does not look members up again`;
    },
    limiter: (backfill, fallbackRate) => runLimiters.forRecheck(backfill, fallbackRate),
    decideOptions,
    entityType: config.WEBHOOK_ENTITY_TYPE,
    recheckAfterMs: config.REPLAY_RECHECK_AFTER_MS,
    now,
  };
  /**
   * A worker without WEBHOOK_URL (it may serve dry runs and channel-webhooks runs) refuses a real run's batch or
   * replay before any lookup: a retryable failure whose message names it and the variable, shown as the pending
   * activity's last failure (Web UI, `webhook-backfill status`). Temporal retries the activity, on any worker of the
   * task queue: a worker with WEBHOOK_URL takes it; with none, the run waits, visibly, instead of failing.
   */
  const refuseWithoutTarget = (
    what: string,
    dryRun: boolean,
    spec: ReplayTargetSpec | undefined,
    o: { countRefusal?: boolean } = {},
  ) => {
    if (dryRun || targetFor(spec)) return;
    const { taskQueue, attempt } = Context.current().info;
    // A replay's refused attempts do not count toward replayMaxAttempts (activities/replay-attempts.ts).
    if (o.countRefusal) recordRefusal();
    const message =
      `worker ${workerIdentity} has no WEBHOOK_URL and cannot replay ${what}: set WEBHOOK_URL on it (or stop it); ` +
      `the activity is retried on another worker of task queue ${taskQueue}`;
    Context.current().log.warn('refused: no WEBHOOK_URL on this worker', { what, attempt, worker: workerIdentity });
    throw ApplicationFailure.retryable(message, 'WorkerLacksWebhookUrl');
  };
  /**
   * Defence in depth: the paths a batch, replay or cleanup is given came from the preparation through the workflow's
   * state; whatever the workflow passed, nothing outside this workflow's own storage is opened, written or removed.
   */
  const confine = (paths: BackfillPaths) => {
    const problem = runPathsProblem(
      config.BACKFILL_DATA_DIR,
      // Absent only for an activity run outside a workflow, whose paths then belong to no one.
      Context.current().info.workflowExecution?.workflowId ?? '',
      paths,
    );
    if (problem) throw ApplicationFailure.nonRetryable(`refused: ${problem}`, 'InvalidInput');
  };
  const batchDeps = {
    audit,
    pending,
    work,
    metrics,
    memberConcurrency: config.BACKFILL_MEMBER_CONCURRENCY,
    workerRateLimit: config.CHANNEL_RATE_LIMIT,
    ...(pacer ? { pacer } : {}),
    ...(pauseNotices ? { pauseNotices } : {}),
  };
  /** A verify run's batch: looked up and judged, never replayed, so no target is needed. */
  const verifyBatchOf = async (input: BatchFrame) => {
    confine(input.paths);
    return verifyBatch({ ...batchDeps, channel, decideOptions, now }, input);
  };
  return {
    prepareBackfill: (input: PrepareInput) =>
      prepareBackfill(
        {
          config,
          hasTarget: (spec) => targetFor(spec) !== undefined,
          audit,
          channel,
          work,
          ...(searchAttributesRegistered ? { searchAttributesRegistered } : {}),
          workerIdentity,
        },
        input,
      ),
    normaliseSource: (input: NormaliseInput) => normaliseSource({ config, audit, work }, input),
    processBatch: async (input: BatchInput) => {
      // A verify run's batches scheduled before verifyBatch existed (the workflow's patch 'verify-batch-v1').
      if (input.options.verifyAfter) return verifyBatchOf(input);
      refuseWithoutTarget(`batch ${input.batch + 1} of ${input.backfill}`, input.options.dryRun, input.options.target);
      confine(input.paths);
      return processBatch(
        {
          ...batchDeps,
          debugLogs,
          runLimiters,
          recheck,
          repair: {
            channel,
            target: targetFor(input.options.target),
            ...healthFor(input.options.target),
            decideOptions,
            entityType: config.WEBHOOK_ENTITY_TYPE,
            recheckAfterMs: config.REPLAY_RECHECK_AFTER_MS,
            now,
          },
        },
        input,
      );
    },
    verifyBatch: verifyBatchOf,
    replayDeferred: async (input: ReplayDeferredInput) => {
      refuseWithoutTarget(`the deferred replay of line ${input.line} of ${input.backfill}`, false, input.target, {
        countRefusal: true,
      });
      confine(input.paths);
      return replayDeferred(
        { audit, pending, metrics, target: targetFor(input.target), ...healthFor(input.target), now, recheck },
        input,
      );
    },
    // A time the run waited for its receiver, recorded by the workflow when it ends (src/audit/run-wait.ts).
    recordWait: async (input: RecordWaitInput) => {
      confine(input.paths);
      await audit.recordWait(input.paths.auditPath, input.wait);
    },
    cleanupBackfill: (input: CleanupInput) => {
      confine(input.paths);
      return cleanupBackfill({ work, pending, keep: config.BACKFILL_KEEP_WORK_DATA }, input);
    },
  };
}

export type BackfillActivities = ReturnType<typeof createActivities>;
