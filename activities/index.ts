import type { Config } from '../src/config';
import { noMetrics, type JobMetrics } from '../src/observability';
import type { AuditStore } from '../src/audit/audit-store';
import type { PendingStore } from '../src/audit/pending-store';
import type { WorkStore } from '../src/store/work-store';
import { cleanupBackfill, type CleanupInput } from './cleanup';
import type { ChannelClient } from '../src/channel/client';
import type { WebhookSender } from '../src/webhook/sender';
import type { ReplayTargetSpec } from '../workflows/definitions';
import { prepareBackfill, type PrepareInput } from './prepare';
import { processBatch, type BatchInput } from './process-batch';
import { replayDeferred, type ReplayDeferredInput } from './replay-deferred';

export interface ActivityDeps {
  config: Config;
  /** The Channel Talk API (real, or the simulator in tests and the demo). */
  channel: ChannelClient;
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
  /** Per-member debug lines in batches (the worker's logger is at DEBUG/TRACE). Default false. */
  debugLogs?: boolean;
  now?: () => Date;
}

/** Activities get their dependencies here, so tests pass real or local ones without module mocking. */
export function createActivities({
  config,
  channel,
  target,
  channelWebhooks,
  audit,
  pending,
  work,
  metrics = noMetrics,
  searchAttributesRegistered,
  debugLogs = false,
  now = () => new Date(),
}: ActivityDeps) {
  const targetFor = (spec: ReplayTargetSpec | undefined) => (spec?.type === 'channel-webhooks' ? channelWebhooks : target);
  return {
    prepareBackfill: (input: PrepareInput) =>
      prepareBackfill({ config, hasTarget: (spec) => targetFor(spec) !== undefined, audit, channel, work, ...(searchAttributesRegistered ? { searchAttributesRegistered } : {}) }, input),
    processBatch: (input: BatchInput) =>
      processBatch(
        {
          audit,
          pending,
          work,
          metrics,
          memberConcurrency: config.BACKFILL_MEMBER_CONCURRENCY,
          workerRateLimit: config.CHANNEL_RATE_LIMIT,
          debugLogs,
          repair: {
            channel,
            target: targetFor(input.options.target),
            decideOptions: { defaultRegion: config.PHONE_DEFAULT_REGION, unifiedType: config.UNIFIED_USER_TYPE },
            entityType: config.WEBHOOK_ENTITY_TYPE,
            now,
          },
        },
        input,
      ),
    replayDeferred: (input: ReplayDeferredInput) => replayDeferred({ audit, pending, metrics, target: targetFor(input.target), now }, input),
    cleanupBackfill: (input: CleanupInput) => cleanupBackfill({ work, pending, keep: config.BACKFILL_KEEP_WORK_DATA }, input),
  };
}

export type BackfillActivities = ReturnType<typeof createActivities>;
