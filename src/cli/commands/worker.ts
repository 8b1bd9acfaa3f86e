import { ConfigError, loadConfig } from '../../config';
import { runWorker } from '../../worker';
import { applyV8OnlyWorkerOptions } from '../../worker-v8-options';
import { CliError, EXIT } from '../errors';
import type { CliIo } from '../io';

// `worker`: the worker of `npm start`, in this process. Node options come from NODE_OPTIONS (`npm start` passes
// them on its command line; docs/cli.md gives the equivalent), and the shipped command's V8 options that
// NODE_OPTIONS refuses are set here (src/worker-v8-options.ts). The configuration is checked first, so a bad variable
// stops with one line and exit 2 before anything starts; SIGINT or SIGTERM shuts the worker down gracefully.

export async function runWorkerCommand(io: CliIo): Promise<number> {
  try {
    const config = loadConfig(io.env);
    applyV8OnlyWorkerOptions();
    await runWorker(config);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, EXIT.USAGE);
    throw new CliError(`worker failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return EXIT.OK;
}
