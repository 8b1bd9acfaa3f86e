// `Retry-After` (RFC 9110 §10.2.3), read one way for every answer that carries it: the receiver's (a replay's 429 or
// 503) and Channel Talk's 429s.

/** `Retry-After` as delay-seconds or an HTTP-date; undefined when absent or unreadable. Never negative. */
export function parseRetryAfterMs(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Every HTTP-date form starts with a day name; this keeps Date.parse from reading "-5" as a year.
  if (!/^[A-Za-z]{3}/.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
