// The worker command that ships: package.json's `start` script, read for the tooling that must run or check exactly
// it: the benchmark starts its worker so, and test/unit/docker-compose.test.ts holds the Dockerfile's CMD equal to it.
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The worker command `npm start` runs: leading NAME=value assignments, node options, the entry. */
export interface ShippedWorkerCommand {
  env: Record<string, string>;
  nodeArgs: string[];
  entry: string;
}

/**
 * Reads package.json's `start` script, which must have the form `[NAME=value ...] node [--option ...] entry`:
 * the benchmark runs the worker exactly so, and the Dockerfile is checked against it.
 */
export function shippedWorkerCommand(
  packageJsonPath = path.join(__dirname, '..', 'package.json'),
): ShippedWorkerCommand {
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
