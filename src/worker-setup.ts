import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createFileAuditStore } from './audit/audit-store';
import { createFilePendingStore } from './audit/pending-store';
import { createChannelClient } from './channel/client';
import type { Config } from './config';
import { createWebhookSender } from './webhook/sender';

export interface BackfillWorker {
  worker: Worker;
  /** Resolves when the worker has stopped (after `worker.shutdown()` or a fatal error). */
  run(): Promise<void>;
  close(): Promise<void>;
}

/** Wires the real dependencies from a validated configuration into a worker for the task queue. */
export async function createBackfillWorker(
  config: Config,
  extra: Partial<Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath' | 'maxConcurrentActivityTaskExecutions'>> = {},
): Promise<BackfillWorker> {
  const channel = createChannelClient({
    baseUrl: config.CHANNEL_API_URL,
    accessKey: config.CHANNEL_ACCESS_KEY,
    accessSecret: config.CHANNEL_ACCESS_SECRET,
    maxAttempts: config.CHANNEL_MAX_ATTEMPTS,
    timeoutMs: config.CHANNEL_TIMEOUT_MS,
    notFoundStatuses: config.CHANNEL_NOT_FOUND_STATUSES,
  });
  const target = config.WEBHOOK_URL
    ? createWebhookSender({ url: config.WEBHOOK_URL, token: config.WEBHOOK_TOKEN, timeoutMs: config.WEBHOOK_TIMEOUT_MS })
    : undefined;
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.BACKFILL_TASK_QUEUE,
    ...(extra.workflowBundle ? { workflowBundle: extra.workflowBundle } : { workflowsPath: extra.workflowsPath ?? require.resolve('../workflows') }),
    activities: createActivities({ config, channel, target, audit: createFileAuditStore(), pending: createFilePendingStore() }),
    // Heartbeats carry pause (cancellation) to running batches: keep them frequent so a pause bites fast.
    maxHeartbeatThrottleInterval: '1 second',
    defaultHeartbeatThrottleInterval: '1 second',
    maxConcurrentActivityTaskExecutions: extra.maxConcurrentActivityTaskExecutions ?? 200,
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
      await Promise.all([channel.close(), target?.close(), connection.close()]);
    },
  };
}
