// A short, safe label for a network failure, for audit reasons and logs. Error messages are never used: they can
// carry the host, a URL with its token, or part of a response body. Only identifier-like values pass.

const CODE = /^[A-Z0-9_]+$/;
const NAME = /^[A-Za-z0-9_]+$/;

/**
 * The first identifier-like `code` along the error's `cause` chain (e.g. ECONNRESET, UND_ERR_SOCKET), else the
 * error's own class name (e.g. TypeError), else undefined.
 */
export function errorLabel(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const { code, cause } = current as { code?: unknown; cause?: unknown };
    if (typeof code === 'string' && CODE.test(code)) return code;
    current = cause;
  }
  return err instanceof Error && NAME.test(err.name) ? err.name : undefined;
}
