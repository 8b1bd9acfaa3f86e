// The one retry loop of every Channel Talk call (a member's lookup, the channel check, a page of the webhooks
// listing): a 429 is waited through (its Retry-After or x-ratelimit-reset, else the backoff) up to max429Waits, a
// retryable failure (5xx, 408, network error, timeout, a body cut short) is retried after an exponential backoff
// with jitter up to maxAttempts; anything else ends the call with what the attempt answered.
import { setTimeout as sleep } from 'node:timers/promises';

/** What one attempt came to, as the loop needs it. */
export type AttemptResult<T> =
  | { kind: 'done'; value: T }
  | { kind: 'rate-limited'; waitMs: number | undefined }
  | { kind: 'retryable'; reason: string };

export interface RetryPolicy {
  /** Attempts for retryable failures (429s not counted), the first one included. */
  maxAttempts: number;
  /** 429s waited through before the call fails. */
  max429Waits: number;
  /** Backoff between retries: initialMs doubling up to maxMs, with jitter. */
  backoff: { initialMs: number; maxMs: number };
}

export interface RetryHooks<T = unknown> {
  signal?: AbortSignal;
  /** 429s seen so far; a listing shares one count across its pages. Default: this call's own. */
  rateLimited?: { n: number };
  /** Before each attempt (a lookup waits for its limiter). */
  beforeAttempt?: () => Promise<void>;
  /** What the first attempt came to, when the caller made it already (beforeAttempt was not called for it). */
  first?: AttemptResult<T>;
  /** Told of every 429, for metrics. */
  onRateLimited?: () => void;
  /** Told of the wait a 429 asks for before it is waited (the limiter and the pacer hold other calls too). */
  holdFor?: (waitMs: number) => void;
}

export type RetryResult<T> =
  { kind: 'done'; value: T; attempts: number } | { kind: 'gave-up'; reason: string; attempts: number };

// Even when Channel Talk asks for a longer pause, re-ask after this long: a far-off reset is more likely clock
// skew than intent, and every 429 counts against max429Waits anyway.
export const MAX_RATE_LIMIT_WAIT_MS = 60_000;

/** The wait before retry `n` (1-based): half fixed, half random, so workers that failed together spread out. */
export function backoffMs(n: number, backoff: RetryPolicy['backoff']): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * 2 ** (n - 1));
  return base / 2 + Math.random() * (base / 2);
}

export async function withRetries<T>(
  attempt: () => Promise<AttemptResult<T>>,
  policy: RetryPolicy,
  hooks: RetryHooks<T> = {},
): Promise<RetryResult<T>> {
  const rateLimited = hooks.rateLimited ?? { n: 0 };
  let attempts = 0;
  let failures = 0;
  let first = hooks.first;
  for (;;) {
    let outcome: AttemptResult<T>;
    if (first) {
      outcome = first;
      first = undefined;
    } else {
      // Awaited only when there is one: `await undefined` costs a promise and a turn too.
      if (hooks.beforeAttempt) await hooks.beforeAttempt();
      outcome = await attempt();
    }
    attempts += 1;
    if (outcome.kind === 'done') return { kind: 'done', value: outcome.value, attempts };
    if (outcome.kind === 'rate-limited') {
      rateLimited.n += 1;
      hooks.onRateLimited?.();
      if (rateLimited.n > policy.max429Waits)
        return { kind: 'gave-up', reason: `rate limited (HTTP 429) ${rateLimited.n} times`, attempts };
      const waitMs = Math.min(outcome.waitMs ?? backoffMs(rateLimited.n, policy.backoff), MAX_RATE_LIMIT_WAIT_MS);
      hooks.holdFor?.(waitMs);
      await pause(waitMs, hooks.signal);
      continue;
    }
    failures += 1;
    if (failures >= policy.maxAttempts)
      return { kind: 'gave-up', reason: `${outcome.reason} after ${attempts} attempts`, attempts };
    await pause(backoffMs(failures, policy.backoff), hooks.signal);
  }
}

/** Waits, rejecting with the signal's own reason (as the limiter does) so callers see one kind of abort. */
export async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
}
