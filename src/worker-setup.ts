import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { PauseNotices, pauseNoticeSinks } from '../activities/pause-notices';
import { logWorkerChannel } from './channel/channel-info';
import { createStoreTables } from './store/postgres-schema';
import { openStores, type Stores } from './store/stores';
import { createChannelPacer, type ChannelPacer } from './channel/channel-pacer';
import { createChannelClient } from './channel/client';
import { createChannelWebhooksClient } from './channel/webhooks';
import { codecFromEnvValues } from './codec/aes-gcm-codec';
import type { Config } from './config';
import { createJobMetrics, debugEnabled } from './observability';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';
import { createChannelWebhooksTarget } from './webhook/channel-webhooks-target';
import { createWebhookSender } from './webhook/sender';

export interface BackfillWorker {
  worker: Worker;
  /** Resolves when the worker has stopped (after `worker.shutdown()` or a fatal error). */
  run(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Written by `npm run build` beside the compiled code (dist/workflow-bundle.js). A worker running from
 * dist uses it; one running from source (tsx) finds none there and bundles the workflow code itself.
 */
export const PREBUILT_WORKFLOW_BUNDLE = path.resolve(__dirname, '..', 'workflow-bundle.js');

function workflowCode(
  extra: Partial<Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'>>,
): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  if (extra.workflowBundle) return { workflowBundle: extra.workflowBundle };
  if (extra.workflowsPath) return { workflowsPath: extra.workflowsPath };
  if (existsSync(PREBUILT_WORKFLOW_BUNDLE)) return { workflowBundle: { codePath: PREBUILT_WORKFLOW_BUNDLE } };
  return { workflowsPath: require.resolve('../workflows') };
}

/** The worker's Temporal identity, as the SDK would make it; named in its logs and in the work it refuses. */
export const workerIdentity = (): string => `${process.pid}@${hostname()}`;

/** Wires the real dependencies from a validated configuration into a worker for the task queue. */
export async function createBackfillWorker(
  config: Config,
  extra: Partial<Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath' | 'maxConcurrentActivityTaskExecutions'>> = {},
): Promise<BackfillWorker> {
  const metrics = createJobMetrics(Runtime.instance().metricMeter);
  // One per worker: every batch, re-lookup and check of this worker paces by the channel's headers together.
  const pacer = createChannelPacer({
    reserveFraction: config.CHANNEL_RATE_RESERVE,
    ...(config.CHANNEL_RATE_LIMIT !== undefined ? { budget: config.CHANNEL_RATE_LIMIT } : {}),
  });
  const channel = createChannelClient({
    baseUrl: config.CHANNEL_API_URL,
    accessKey: config.CHANNEL_ACCESS_KEY,
    accessSecret: config.CHANNEL_ACCESS_SECRET,
    maxAttempts: config.CHANNEL_MAX_ATTEMPTS,
    backoff: { initialMs: config.CHANNEL_RETRY_BACKOFF_MS },
    timeoutMs: config.CHANNEL_TIMEOUT_MS,
    notFoundStatuses: config.CHANNEL_NOT_FOUND_STATUSES,
    onRateLimited: () => metrics.apiRateLimited(),
    onThrottleWarning: () => metrics.apiThrottleWarning(),
    pacer,
  });
  // Which channel these credentials open, logged at start-up without holding the worker up (issue 9).
  const channelLogged = logWorkerChannel(channel, Runtime.instance().logger);
  const { target, webhookList, channelWebhooks } = createReplayTargets(config, pacer);
  const stores = await createStores(config);
  const { audit, pending, work } = stores;
  // With BACKFILL_CODEC_KEY set, every payload this worker sends to Temporal is AES-256-GCM encrypted.
  const codec = codecFromEnvValues(config);
  // Address, TLS/mTLS, API key and gRPC headers as resolved (and checked) by loadConfig.
  const connection = await NativeConnection.connect(config.temporal.options);
  const identity = workerIdentity();
  const pauseNotices = new PauseNotices();
  const worker = await Worker.create({
    connection,
    identity,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.BACKFILL_TASK_QUEUE,
    ...(codec ? { dataConverter: { payloadCodecs: [codec] } } : {}),
    ...workflowCode(extra),
    activities: createActivities({
      config,
      channel,
      pacer,
      target,
      channelWebhooks,
      audit,
      pending,
      work,
      metrics,
      debugLogs: debugEnabled(Runtime.instance().logger),
      pauseNotices,
      workerIdentity: identity,
      searchAttributesRegistered: async () => {
        const { customAttributes } = await connection.operatorService.listSearchAttributes({
          namespace: config.TEMPORAL_NAMESPACE,
        });
        return Object.keys(SEARCH_ATTRIBUTES).every((name) => name in (customAttributes ?? {}));
      },
    }),
    sinks: pauseNoticeSinks(pauseNotices),
    // A batch heartbeats when it asks for one (activities/heartbeat-pace.ts); the SDK sends it within a second.
    maxHeartbeatThrottleInterval: '1 second',
    defaultHeartbeatThrottleInterval: '1 second',
    maxConcurrentActivityTaskExecutions: extra.maxConcurrentActivityTaskExecutions ?? 200,
    // A killed worker's workflow task waits this long on its sticky queue before another worker gets it.
    stickyQueueScheduleToStartTimeout: '5 seconds',
  });
  let running: Promise<void> | undefined;
  return {
    worker,
    run() {
      running ??= worker.run();
      return running;
    },
    async close() {
      if (running && worker.getState() === 'RUNNING') worker.shutdown();
      await running?.catch(() => undefined);
      await channelLogged;
      await Promise.all([
        channel.close(),
        target?.close(),
        channelWebhooks.close(),
        webhookList.close(),
        connection.close(),
      ]);
      await stores.close();
    },
  };
}

/** Where replays go: WEBHOOK_URL (undefined without it), and every webhook registered on the channel. */
function createReplayTargets(config: Config, pacer: ChannelPacer) {
  const eventNames = { upsert: config.WEBHOOK_EVENT_UPSERT, delete: config.WEBHOOK_EVENT_DELETE };
  const target = config.WEBHOOK_URL
    ? createWebhookSender({
        url: config.WEBHOOK_URL,
        token: config.WEBHOOK_TOKEN,
        timeoutMs: config.WEBHOOK_TIMEOUT_MS,
        signingSecret: config.WEBHOOK_SIGNING_SECRET,
        eventNames,
        eventNaming: config.WEBHOOK_EVENT_NAMES,
        scopes: config.WEBHOOK_URL_SCOPES,
      })
    : undefined;
  // Target type "channel-webhooks": every webhook registered on the channel, listed with the same credentials.
  const webhookList = createChannelWebhooksClient({
    baseUrl: config.CHANNEL_API_URL,
    accessKey: config.CHANNEL_ACCESS_KEY,
    accessSecret: config.CHANNEL_ACCESS_SECRET,
    maxAttempts: config.CHANNEL_MAX_ATTEMPTS,
    backoff: { initialMs: config.CHANNEL_RETRY_BACKOFF_MS },
    timeoutMs: config.CHANNEL_TIMEOUT_MS,
    // The listing draws from the channel's budget with the worker's other calls (issue 24).
    pacer,
  });
  const channelWebhooks = createChannelWebhooksTarget({
    list: (signal) => webhookList.list(signal),
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    signingSecret: config.WEBHOOK_SIGNING_SECRET,
    eventNames,
    eventNaming: config.WEBHOOK_EVENT_NAMES,
    sendNonV5: config.WEBHOOK_SEND_NON_V5,
    logger: Runtime.instance().logger,
  });
  return { target, webhookList, channelWebhooks };
}

/**
 * The stores (src/store/stores.ts); with PostgreSQL, the tables are created and checked before the worker polls.
 */
async function createStores(config: Config): Promise<Stores> {
  const stores = openStores(config, {
    applicationName: 'webhook-backfill-audit',
    maxConnections: 10,
    onConnectionLost: (code) => Runtime.instance().logger.warn('audit database connection lost', { code }),
  });
  const { pool, postgresAudit } = stores;
  if (!pool || !postgresAudit) return stores;
  const shared = stores.kind.shared === 'postgres';
  try {
    await postgresAudit.ready();
    if (shared) await createStoreTables(pool);
  } catch (err) {
    await stores.close();
    // Not the pg message: nothing from the connection string may reach a log.
    const code = (err as { code?: unknown }).code;
    const what = shared
      ? 'BACKFILL_STORE=postgres: cannot create or reach the backfill tables'
      : `BACKFILL_AUDIT_STORE=postgres: cannot create or reach the audit table ${postgresAudit.table}`;
    throw new Error(`${what}${typeof code === 'string' ? ` (${code})` : ''}`);
  }
  return stores;
}
