import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main';
import type { CliIo } from '../../src/cli/io';

/** `webhook-backfill <args>` run in this process (src/cli/main.ts), with only the environment given: exit code and output. */
export async function cliInProcess(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const io: CliIo = {
    stdout,
    stderr,
    env,
    cwd: process.cwd(),
    now: () => new Date(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
  const code = await main(args, io);
  return { code, out, err };
}
