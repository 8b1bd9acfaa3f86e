import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../config';
import { packageRoot, shippedWorkerCommand, workerInvocation } from '../../worker-command';
import { CliError, EXIT } from '../errors';
import type { CliIo } from '../io';

// `worker`: runs the shipped worker (`npm start`'s command: its heap caps, GC flags and MALLOC_ARENA_MAX, which
// only take effect when a process starts, so it is a child process and not this one). The configuration is checked
// here first, so a bad variable stops with one line and exit 2 before anything starts.

const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

export async function runWorker(io: CliIo): Promise<number> {
  try {
    loadConfig(io.env);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, EXIT.USAGE);
    throw err;
  }
  const root = packageRoot();
  const shipped = shippedWorkerCommand(path.join(root, 'package.json'));
  // tsx is a devDependency: an image (built, pruned) does not have it and does not need it.
  const built = existsSync(path.join(root, shipped.entry));
  const { args, env } = workerInvocation(root, shipped, io.env, built ? undefined : require.resolve('tsx/cjs'));
  // Its own process group (detached), so a terminal's Ctrl-C reaches it once, forwarded from here, and not twice (a
  // second SIGINT would kill it before its graceful shutdown ends). It writes to this process's stdout and stderr
  // directly (a terminal stays a terminal for its log format). The IPC channel is how it notices this process is
  // gone (it shuts down on 'disconnect'), even when this one is killed with SIGKILL and cannot forward anything.
  const child = spawn(process.execPath, args, {
    cwd: io.cwd,
    env,
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', (err) => reject(new CliError(`worker failed to start: ${err.message}`)));
      child.once('close', (code, signal) =>
        resolve(code ?? (signal ? (SIGNAL_EXIT[signal] ?? EXIT.FAILED) : EXIT.FAILED)),
      );
    });
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  }
}
