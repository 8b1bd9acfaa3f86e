import type { ZodSafeParseResult } from 'zod';
/**
 * A problem with the member source that must stop the run before any lookup or replay: the file is
 * missing, unreadable, not a regular file, empty, truncated inside a quoted field, or its CSV header
 * lacks a compared column (comparing against a missing column would replay every member).
 *
 * The message is one line naming the file and the problem, and never quotes file content (which may
 * hold personal data). `name` is set explicitly so a Temporal retry policy can list it under
 * nonRetryableErrorTypes: retrying cannot fix a bad file.
 */
export class SourceConfigError extends Error {
  override name = 'SourceConfigError';

  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    // JSON-quoting the path keeps the message on one line whatever characters the path holds.
    super(`member source ${JSON.stringify(file)}: ${problem}`);
  }
}

/**
 * The source's last record cannot be read, and with it the rest of the source (a quoted field never closed swallows
 * every line after it). Before the first lookup it stops the run like any SourceConfigError; found once the batches
 * run (the rest of a long source normalised beside them) it is one bad row, `skip` at `line`, and the run goes on.
 */
export class UnreadableRestError extends SourceConfigError {
  override name = 'UnreadableRestError';

  constructor(
    file: string,
    problem: string,
    readonly line: number,
    readonly skip: string,
  ) {
    super(file, problem);
  }
}

/**
 * A database source's spec checked again where it is read (not only with the workflow input): nothing unvalidated
 * may reach SQL text. Every problem is named by its key, never by its value.
 */
export function checkedSpec<T>(
  schema: { safeParse(value: unknown): ZodSafeParseResult<T> },
  spec: unknown,
  label: string,
): T {
  const parsed = schema.safeParse(spec);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'source'}: ${i.message}`);
  throw new SourceConfigError(label, problems.join('; '));
}
