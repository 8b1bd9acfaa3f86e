// `npm run worker`: serves the backfill task queue with the configuration in the environment.
import { ConfigError, describeConfig, loadConfig } from './config';
import { Runtime } from '@temporalio/worker';
import { installRuntime } from './observability';
import { createBackfillWorker, workerIdentity } from './worker-setup';

async function main(): Promise<void> {
  // Started by a parent over IPC (`webhook-backfill worker`)? Decided now, before anything can disconnect it.
  const viaIpc = typeof process.send === 'function';
  const config = loadConfig();
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
  Runtime.instance().logger.info('webhook-backfill worker starting', { ...describeConfig(config), identity });
  const backfill = await createBackfillWorker(config);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    backfill.worker.shutdown();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (viaIpc) {
    // Shut down when the parent goes away, however it ended.
    process.channel?.unref();
    process.once('disconnect', stop);
  }
  // A parent that went away while the worker was being created: nothing to run for (shutdown() needs a running worker).
  if (!viaIpc || process.connected) await backfill.run();
  await backfill.close();
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  console.error(`worker failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
