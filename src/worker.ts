// The worker: serves the backfill task queue with the configuration in the environment. Started one way,
// `npm start` (the image's CMD is the same command), or in the CLI's own process by `webhook-backfill worker`.
import { ConfigError, describeConfig, loadConfig, type Config } from './config';
import { getHeapStatistics } from 'node:v8';
import { Runtime } from '@temporalio/worker';
import { installRuntime } from './observability';
import { createBackfillWorker, workerIdentity } from './worker-setup';

/** Polls the task queue until SIGINT or SIGTERM, then shuts down gracefully (the run's activities finish first). */
export async function runWorker(config: Config): Promise<void> {
  installRuntime(config);
  const identity = workerIdentity();
  if (!config.WEBHOOK_URL) {
    // It cannot know at start-up which target the runs it will see have: it polls, and refuses (retryably, by
    // name) a batch or replay of a run to WEBHOOK_URL, which Temporal then retries on another worker.
    Runtime.instance().logger.warn(
      'WEBHOOK_URL is not set: this worker serves dry runs and channel-webhooks runs only; it refuses batches of other runs',
      { identity },
    );
  }
  // The heap cap in effect (npm start's --max-old-space-size, or NODE_OPTIONS for `webhook-backfill worker`).
  const heapLimitMb = Math.round(getHeapStatistics().heap_size_limit / 2 ** 20);
  Runtime.instance().logger.info('webhook-backfill worker starting', {
    ...describeConfig(config),
    identity,
    heapLimitMb,
  });
  const backfill = await createBackfillWorker(config);
  const stop = () => backfill.worker.shutdown();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await backfill.run();
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await backfill.close();
  }
}

if (require.main === module) {
  (async () => runWorker(loadConfig()))().catch((err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    console.error(err instanceof ConfigError ? message : `worker failed: ${message}`);
    process.exit(err instanceof ConfigError ? 2 : 1); // a bad variable or certificate: 2, as for the CLI
  });
}
