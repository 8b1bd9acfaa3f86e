/**
 * Channel Talk refused the access key/secret (401/403). Retrying cannot help and every other lookup would fail
 * the same way, so the client throws instead of returning a per-member failure: the run should stop.
 * The message never carries the credentials.
 */
export class BadCredentialsError extends Error {
  readonly status: number;

  constructor(status: number) {
    super(`Channel Talk rejected the API credentials (HTTP ${status})`);
    this.name = 'BadCredentialsError';
    this.status = status;
  }
}
