// `webhook-backfill <command>`: start, pause, resume, follow and report on backfill runs, or run a
// worker. Errors are one line on stderr; exit codes are documented in `webhook-backfill --help`.
/* eslint-disable @typescript-eslint/no-require-imports -- lazy `require` of command modules, see load() below */
import { parseCommandLine } from './args';
import { CliError, EXIT, oneLine } from './errors';
import { processIo, write, type CliIo } from './io';

type Start = typeof import('./commands/start');
type Signal = typeof import('./commands/signal');
type Status = typeof import('./commands/status');
type Report = typeof import('./commands/report');
type Worker = typeof import('./commands/worker');
type Purge = typeof import('./commands/purge');

/**
 * A command's module is loaded when it runs, so `--help` and usage errors answer without loading the
 * Temporal SDK (a second or more). `require` serves node and tsx's CommonJS hook; a loader that cannot
 * require TypeScript (vitest) takes the `import()` path.
 */
async function load<T>(viaRequire: () => T, viaImport: () => Promise<T>): Promise<T> {
  try {
    return viaRequire();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    return viaImport();
  }
}

export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    const cmd = parseCommandLine(argv, { cwd: io.cwd, now: io.now() });
    switch (cmd.name) {
      case 'print':
        await write(io.stdout, cmd.text);
        return EXIT.OK;
      case 'start':
        return await (
          await load(
            () => require('./commands/start') as Start,
            () => import('./commands/start'),
          )
        ).runStart(cmd, io);
      case 'pause':
      case 'resume':
        return await (
          await load(
            () => require('./commands/signal') as Signal,
            () => import('./commands/signal'),
          )
        ).runSignal(cmd, io);
      case 'status':
        return await (
          await load(
            () => require('./commands/status') as Status,
            () => import('./commands/status'),
          )
        ).runStatus(cmd, io);
      case 'report':
        return await (
          await load(
            () => require('./commands/report') as Report,
            () => import('./commands/report'),
          )
        ).runReport(cmd, io);
      case 'worker':
        return await (
          await load(
            () => require('./commands/worker') as Worker,
            () => import('./commands/worker'),
          )
        ).runWorkerCommand(io);
      case 'purge':
        return await (
          await load(
            () => require('./commands/purge') as Purge,
            () => import('./commands/purge'),
          )
        ).runPurge(cmd, io);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return EXIT.OK; // the reader went away (`| head`)
    const message =
      err instanceof CliError ? err.message : `unexpected error: ${err instanceof Error ? err.message : String(err)}`;
    await write(io.stderr, `webhook-backfill: ${oneLine(message)}\n`).catch(() => undefined);
    return err instanceof CliError ? err.exitCode : EXIT.FAILED;
  }
}

/** Runs with the process's arguments and exits with the command's code once output is flushed. */
export function run(): void {
  // A closed pipe (`webhook-backfill report --format csv | head`) is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.OK);
  });
  void main(process.argv.slice(2)).then((code) => {
    process.stdout.write('', () => process.exit(code));
  });
}

if (require.main === module) run();
