import { ConfigError, describeConfig, loadConfig } from '../../config';
import { installRuntime } from '../../observability';
import { createBackfillWorker } from '../../worker-setup';
import { CliError, EXIT } from '../errors';
import type { CliIo } from '../io';

// `worker`: what `npm run worker` (src/worker.ts) does, from the same configuration and wiring.

export async function runWorker(io: CliIo): Promise<number> {
  let config;
  try {
    config = loadConfig(io.env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, EXIT.USAGE);
    throw err;
  }
  // Same logging (LOG_FORMAT) and Prometheus endpoint (BACKFILL_METRICS_ADDRESS) as `npm start`.
  installRuntime(config);
  if (!config.WEBHOOK_URL) console.warn('WEBHOOK_URL is not set: this worker can only serve dry runs');
  console.log('webhook-backfill worker starting', JSON.stringify(describeConfig(config)));
  let backfill;
  try {
    backfill = await createBackfillWorker(config);
  } catch (err) {
    throw new CliError(`worker failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  const worker = backfill;
  const stop = () => worker.worker.shutdown();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await worker.run();
  } catch (err) {
    throw new CliError(`worker failed: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await worker.close();
  }
  return EXIT.OK;
}
