// Exit codes of `webhook-backfill`, as documented in `webhook-backfill --help`.
export const EXIT = {
  OK: 0,
  /** The operation failed: the run failed, no such workflow, Temporal unreachable, no worker answered. */
  FAILED: 1,
  /** Usage or configuration error. */
  USAGE: 2,
  /** `status`: the run is paused. */
  PAUSED: 3,
} as const;

/** An error the CLI reports as one line on stderr, exiting with `exitCode`. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT.FAILED,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  override name = 'UsageError';
  constructor(message: string) {
    super(message, EXIT.USAGE);
  }
}

/** One line, whatever the error: the first line of its message, whitespace collapsed. */
export function oneLine(message: string): string {
  const first = message.split(/\r?\n/).find((l) => l.trim() !== '') ?? message;
  return first.replace(/\s+/g, ' ').trim();
}
