// `npm run worker`: serves the backfill task queue with the configuration in the environment.
import { ConfigError, describeConfig, loadConfig } from './config';
import { createBackfillWorker } from './worker-setup';

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.WEBHOOK_URL) console.warn('WEBHOOK_URL is not set: this worker serves dry runs and channel-webhooks runs only');
  console.log('webhook-backfill worker starting', JSON.stringify(describeConfig(config)));
  const backfill = await createBackfillWorker(config);
  const stop = () => backfill.worker.shutdown();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await backfill.run();
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
