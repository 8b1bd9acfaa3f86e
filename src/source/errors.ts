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
