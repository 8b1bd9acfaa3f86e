// The worker command that ships: package.json's `start` script (`npm start`, the Dockerfile's CMD, the benchmark's
// worker and `webhook-backfill worker` all run exactly it), read from one place so its node options cannot drift.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The worker command `npm start` runs: leading NAME=value assignments, node options, the entry. */
export interface ShippedWorkerCommand {
  env: Record<string, string>;
  nodeArgs: string[];
  entry: string;
}

/** The directory holding this package's package.json, found upwards from this file (in src/ or dist/src/). */
export function packageRoot(from = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name === 'webhook-backfill')
      return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json of webhook-backfill above ${from}`);
  }
}

/**
 * Reads package.json's `start` script, which must have the form `[NAME=value ...] node [--option ...] entry`:
 * the benchmark runs the worker exactly so, and the Dockerfile is checked against it.
 */
export function shippedWorkerCommand(packageJsonPath = path.join(packageRoot(), 'package.json')): ShippedWorkerCommand {
  const pkg = JSON.parse(readFileSync(packageJsonPath, 'utf8')) as { scripts?: Record<string, string> };
  const script = pkg.scripts?.start;
  if (!script) throw new Error(`${packageJsonPath}: no "start" script`);
  const words = script.trim().split(/\s+/);
  const env: Record<string, string> = {};
  while (words.length > 0 && /^[A-Z_][A-Z0-9_]*=\S*$/.test(words[0]!)) {
    const [name, ...value] = words.shift()!.split('=');
    env[name!] = value.join('=');
  }
  if (words.shift() !== 'node')
    throw new Error(`${packageJsonPath}: scripts.start must run node, got ${JSON.stringify(script)}`);
  const nodeArgs: string[] = [];
  while (words.length > 1 && words[0]!.startsWith('--')) nodeArgs.push(words.shift()!);
  if (words.length !== 1 || words[0]!.startsWith('-'))
    throw new Error(`${packageJsonPath}: scripts.start must end with the entry file, got ${JSON.stringify(script)}`);
  return { env, nodeArgs, entry: words[0]! };
}

/**
 * The argv (after node itself) and environment that start the shipped worker from `root`: the built entry with
 * npm start's node options and variables (a variable already set wins, as in a shell); given tsx's require hook
 * (`tsxCjs`, for a checkout without a build), the same options on src/worker.ts through it.
 */
export function workerInvocation(
  root: string,
  shipped: ShippedWorkerCommand,
  env: NodeJS.ProcessEnv,
  tsxCjs?: string,
): { args: string[]; env: NodeJS.ProcessEnv } {
  const entry =
    tsxCjs === undefined
      ? [path.join(root, shipped.entry)]
      : ['--require', tsxCjs, path.join(root, 'src', 'worker.ts')];
  return { args: [...shipped.nodeArgs, ...entry], env: { ...shipped.env, ...env } };
}
