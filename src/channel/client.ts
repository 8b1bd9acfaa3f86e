// Looks one member up in Channel Talk (`GET /open/v5/users/@{memberId}`) and turns every way that can go wrong
// into a FetchResult, retrying what is worth retrying. Reasons it returns are safe to log: they never carry the
// response body (personal data), the memberId or the credentials.
import { Agent, type Dispatcher } from 'undici';
import { requestDeadline } from '../http/request-deadline';
import { errorLabel } from '../http/error-label';
import { parseRetryAfterMs } from '../http/retry-after';
import type { ChannelUser, FetchResult } from '../domain/types';
import { BadCredentialsError } from './errors';
import type { ChannelPacer, RateHeaders } from './channel-pacer';
import type { RateLimiter } from './rate-limiter';
import { checkUserAnswer } from './user-schema';
import { invalidAt, issueAt } from './zod-issue';
import { channelResponseSchema, type ChannelInfo } from './channel-info';
import { MAX_RATE_LIMIT_WAIT_MS, withRetries, type AttemptResult, type RetryPolicy, type RetryResult } from './retry';

export interface ChannelClientOptions {
  /** e.g. https://api.channel.io (a trailing slash is fine). */
  baseUrl: string;
  accessKey: string;
  accessSecret: string;
  /** Total attempts for 5xx, network errors/resets, timeouts and malformed bodies. Default 5. */
  maxAttempts?: number;
  /** Per request, headers and body together. Default 10_000. */
  timeoutMs?: number;
  /** Exponential backoff between retries: initialMs doubling up to maxMs, with jitter. Default 200 / 10_000. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Statuses meaning "no such user". Default [404]; Channel Talk does not document it (422 has been seen). */
  notFoundStatuses?: number[];
  /** How many 429s one lookup waits through before it is failed. Default 20. */
  max429Waits?: number;
  /** Called on every 429, for metrics. */
  onRateLimited?: () => void;
  /** Called on every answer that carries x-ratelimit-will-be-throttled: true (the answer is used), for metrics. */
  onThrottleWarning?: () => void;
  /**
   * The worker's pacer (channel-pacer.ts): every request waits for it and every answer's rate-limit headers feed
   * it, so all batches of the worker pace by the channel's headers together. Default: none.
   */
  pacer?: ChannelPacer;
  /** Default: an undici Agent with keep-alive owned by this client (closed by `close()`). */
  dispatcher?: Dispatcher;
}

/** What `GET /open/v5/channel` came to, after the client's own retries. */
export type ChannelInfoResult =
  | { kind: 'found'; channel: ChannelInfo }
  | { kind: 'bad-credentials'; status: number }
  | { kind: 'not-found'; status: number }
  | { kind: 'failed'; reason: string; retryable: boolean };

export interface ChannelClient {
  /** The channel the credentials open (`GET /open/v5/channel`): the preflight before any lookup. */
  getChannel(opts?: { signal?: AbortSignal }): Promise<ChannelInfoResult>;
  getUserByMemberId(memberId: string, opts?: { limiter?: RateLimiter; signal?: AbortSignal }): Promise<FetchResult>;
  /** Closes the client's own connection pool; a dispatcher passed in options is left to its owner. */
  close(): Promise<void>;
}

/** An answer's headers, as undici gives them. */
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** What one HTTP exchange came to, before the retry policy decides what to do with it. */
type AttemptOutcome =
  | { kind: 'found'; user: ChannelUser }
  | { kind: 'channel'; channel: ChannelInfo }
  | { kind: 'not-found'; status: number }
  | { kind: 'bad-credentials'; status: number }
  | { kind: 'rate-limited'; waitMs: number | undefined }
  | { kind: 'retryable'; reason: string }
  | { kind: 'final'; reason: string };

export function createChannelClient(o: ChannelClientOptions): ChannelClient {
  const base = normaliseBaseUrl(o.baseUrl);
  const target = lookupTarget(base);
  const channelUrl = new URL(`${base}/open/v5/channel`);
  const channelPath = `${channelUrl.pathname}${channelUrl.search}`;
  // On this call a 404 means the base URL is wrong, whatever the lookups treat as "no such user".
  const channelNotFound = new Set([404]);
  const policy: RetryPolicy = {
    maxAttempts: positiveInt(o.maxAttempts ?? 5, 'maxAttempts'),
    max429Waits: o.max429Waits ?? 20,
    backoff: { initialMs: o.backoff?.initialMs ?? 200, maxMs: o.backoff?.maxMs ?? 10_000 },
  };
  const timeoutMs = positiveInt(o.timeoutMs ?? 10_000, 'timeoutMs');
  const notFoundStatuses = new Set(o.notFoundStatuses ?? [404]);
  const ownDispatcher = o.dispatcher ? undefined : new Agent({ keepAliveTimeout: 10_000, keepAliveMaxTimeout: 60_000 });
  const dispatcher: Dispatcher = o.dispatcher ?? ownDispatcher!;
  const headers = {
    'x-access-key': o.accessKey,
    'x-access-secret': o.accessSecret,
    accept: 'application/json',
  };

  async function attempt(
    path: string,
    signal: AbortSignal | undefined,
    parse = parseUserBody,
    notFound = notFoundStatuses,
    limiter?: RateLimiter,
  ): Promise<AttemptOutcome> {
    if (signal?.aborted) throw signal.reason;
    const pacer = o.pacer;
    // The worker's pacer first, then the caller's budget limiter: while the pacer holds the worker (after a 429, a
    // grace warning, or until the first answer shows the channel's limit) the budget limiters grant nothing, so
    // what waited goes out at the budget's spacing, not in one burst that an empty bucket answers with 429s.
    if (pacer && !pacer.acquireNow(signal)) await pacer.acquire(signal);
    let seen: RateHeaders | undefined;
    let deadline: ReturnType<typeof requestDeadline> | undefined;
    try {
      // Inside: the pacer's permit ends in observe() even when this wait is aborted; the timeout starts after it.
      if (limiter && limiter.acquireNow?.(signal) !== true) await limiter.acquire(signal);
      deadline = requestDeadline(timeoutMs, signal);
      const res = await dispatcher.request({
        origin: target.origin,
        path,
        method: 'GET',
        headers,
        signal: deadline.signal,
      });
      seen = heedRateHeaders(res.statusCode, res.headers, {
        pacer,
        fallbackMs: policy.backoff.initialMs,
        onWarning: o.onThrottleWarning,
      });
      if (res.statusCode >= 200 && res.statusCode < 300) return parse(await res.body.text());
      // Read and dropped so the keep-alive connection is reused (a longer body closes it instead); the status is the
      // verdict whatever happens to the rest of the body.
      await res.body.dump({ limit: DUMP_LIMIT_BYTES }).catch(() => undefined);
      return statusOutcome(res.statusCode, res.headers, notFound);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (deadline?.timedOut) return { kind: 'retryable', reason: 'timeout' };
      return { kind: 'retryable', reason: `network error (${errorLabel(err) ?? 'unknown'})` };
    } finally {
      deadline?.clear();
      pacer?.observe(seen ?? { warned: false, rateLimited: false });
    }
  }

  /** An attempt as the retry loop sees it: the answers it retries, or done with what the call returns. */
  const retried = (outcome: AttemptOutcome): AttemptResult<AttemptOutcome> =>
    outcome.kind === 'rate-limited' || outcome.kind === 'retryable' ? outcome : { kind: 'done', value: outcome };

  return {
    async getChannel(opts = {}) {
      const { signal } = opts;
      const result = await withRetries(
        async () => retried(await attempt(channelPath, signal, parseChannelBody, channelNotFound)),
        policy,
        { signal, onRateLimited: o.onRateLimited },
      );
      if (result.kind === 'gave-up') return { kind: 'failed', reason: result.reason, retryable: true };
      const outcome = result.value;
      switch (outcome.kind) {
        case 'channel':
          return { kind: 'found', channel: outcome.channel };
        case 'not-found':
          return { kind: 'not-found', status: outcome.status };
        case 'bad-credentials':
          return { kind: 'bad-credentials', status: outcome.status };
        case 'final':
          return { kind: 'failed', reason: outcome.reason, retryable: false };
        default: // a user: not produced by parseChannelBody
          return { kind: 'failed', reason: 'unexpected answer', retryable: false };
      }
    },

    async getUserByMemberId(memberId, opts = {}) {
      const { limiter, signal } = opts;
      const path = target.path(memberId);
      const once = () => attempt(path, signal, parseUserBody, notFoundStatuses, limiter);
      const lookup = () => once().then(retried);
      // The first attempt outside the retry loop: most lookups need no other, and each async layer costs promises.
      const first = retried(await once());
      const result: RetryResult<AttemptOutcome> =
        first.kind === 'done'
          ? { kind: 'done', value: first.value, attempts: 1 }
          : await withRetries(lookup, policy, {
              first,
              signal,
              onRateLimited: o.onRateLimited,
              // Other lookups sharing the limiter (and the worker's pacer) would hit the same wall; hold them too.
              holdFor: (waitMs) => {
                limiter?.holdUntil?.(Date.now() + waitMs);
                o.pacer?.holdUntil(Date.now() + waitMs);
              },
            });
      const { attempts } = result;
      if (result.kind === 'gave-up') return { kind: 'failed', reason: result.reason, attempts };
      const outcome = result.value;
      switch (outcome.kind) {
        case 'found':
          return { kind: 'found', user: outcome.user, attempts };
        case 'not-found':
          return { kind: 'not-found', status: outcome.status, attempts };
        case 'bad-credentials':
          throw new BadCredentialsError(outcome.status);
        case 'final':
          return { kind: 'failed', reason: outcome.reason, attempts };
        default: // the channel: not produced by parseUserBody
          return { kind: 'failed', reason: 'unexpected answer', attempts };
      }
    },

    async close() {
      await ownDispatcher?.close();
    },
  };
}

// Non-2xx bodies up to this size are read and dropped so the keep-alive socket can be reused.
const DUMP_LIMIT_BYTES = 128 * 1024;

/** What a non-2xx answer means for a lookup (its body is not read). */
function statusOutcome(status: number, headers: ResponseHeaders, notFound: ReadonlySet<number>): AttemptOutcome {
  if (notFound.has(status)) return { kind: 'not-found', status };
  if (status === 401 || status === 403) return { kind: 'bad-credentials', status };
  if (status === 429) return { kind: 'rate-limited', waitMs: rateLimitWaitMs(headers, Date.now()) };
  if (status >= 500 || status === 408) return { kind: 'retryable', reason: `HTTP ${status}` };
  return { kind: 'final', reason: `HTTP ${status}` };
}

/**
 * Where lookups go: the origin, and the path of a memberId's URL exactly as parsing the whole URL would give
 * it (a base URL with a query or fragment, which no real configuration has, is parsed per request).
 */
function lookupTarget(baseUrl: string): { origin: string; path: (memberId: string) => string } {
  const prefix = new URL(`${baseUrl}/open/v5/users/@`);
  const parse = (memberId: string) => {
    const url = new URL(`${baseUrl}/open/v5/users/@${encodeURIComponent(memberId)}`);
    return url.search ? `${url.pathname}${url.search}` : url.pathname;
  };
  if (prefix.search !== '' || prefix.hash !== '') {
    return { origin: prefix.origin, path: parse };
  }
  const pathPrefix = prefix.pathname;
  // encodeURIComponent leaves nothing that the URL parser would re-encode or treat as a dot segment here.
  return { origin: prefix.origin, path: (memberId) => `${pathPrefix}${encodeURIComponent(memberId)}` };
}

/**
 * A 200 body becomes a user, or a "malformed" reason naming what was wrong but not the content. Unreadable JSON
 * may be a body cut short, so it is retried; a user whose checked fields (user-schema.ts) have the wrong type is
 * what Channel Talk holds, and asking again would only spend the rate budget: it fails the member at once.
 */
function parseUserBody(text: string): AttemptOutcome {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'retryable', reason: 'malformed response: invalid JSON' };
  }
  const checked = checkUserAnswer(json);
  // The user as it came, not a parsed copy: the replay's entity keeps every key and null (issue 23).
  if (checked.ok) return { kind: 'found', user: checked.user };
  return { kind: 'final', reason: `malformed response: ${invalidAt(checked)}` };
}

/** A 200 body of `GET /open/v5/channel`: only the id is required; anything else malformed is retried. */
function parseChannelBody(text: string): AttemptOutcome {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'retryable', reason: 'malformed channel response: invalid JSON' };
  }
  const parsed = channelResponseSchema.safeParse(json);
  if (parsed.success)
    return { kind: 'channel', channel: { id: parsed.data.channel.id, name: parsed.data.channel.name ?? null } };
  return { kind: 'retryable', reason: `malformed channel response: ${invalidAt(issueAt(parsed.error))}` };
}

/**
 * How long a 429 asks us to wait: `Retry-After` (seconds or HTTP date) if present, else until
 * `x-ratelimit-reset` (epoch seconds). undefined = no usable hint, fall back to backoff.
 */
export function rateLimitWaitMs(headers: ResponseHeaders, now: number): number | undefined {
  const retryAfterMs = parseRetryAfterMs(firstHeader(headers['retry-after']), now);
  if (retryAfterMs !== undefined) return retryAfterMs;
  const reset = Number(firstHeader(headers['x-ratelimit-reset']) ?? NaN);
  if (Number.isFinite(reset) && reset > 0) {
    // Documented as epoch seconds; a value this large can only be epoch milliseconds.
    const resetMs = reset > 1e12 ? reset : reset * 1000;
    if (resetMs > now) return resetMs - now;
  }
  return undefined;
}

/**
 * An answer's rate-limit headers, for the worker's pacer to observe. The grace period's warning is the limit
 * reached: the pacer holds the worker as after a 429 (until the reset, else `fallbackMs`), while the answer itself is
 * used. Every Channel Talk call reads its answer through this (lookups, the channel check, the webhooks listing).
 */
export function heedRateHeaders(
  status: number,
  h: ResponseHeaders,
  o: { pacer: ChannelPacer | undefined; fallbackMs: number; onWarning?: (() => void) | undefined },
): RateHeaders {
  const seen = readRateHeaders(status, h);
  if (seen.warned) {
    o.onWarning?.();
    o.pacer?.holdUntil(Date.now() + Math.min(rateLimitWaitMs(h, Date.now()) ?? o.fallbackMs, MAX_RATE_LIMIT_WAIT_MS));
  }
  return seen;
}

/** The rate-limit headers of an answer as numbers; absent or unreadable ones are left out. */
export function readRateHeaders(status: number, headers: ResponseHeaders): RateHeaders {
  const number = (name: string) => {
    const text = firstHeader(headers[name]);
    const value = text === undefined || text.trim() === '' ? NaN : Number(text);
    return Number.isFinite(value) ? value : undefined;
  };
  const limit = number('x-ratelimit-limit');
  const remaining = number('x-ratelimit-remaining');
  return {
    ...(limit !== undefined ? { limit } : {}),
    ...(remaining !== undefined ? { remaining } : {}),
    warned: firstHeader(headers['x-ratelimit-will-be-throttled'])?.trim().toLowerCase() === 'true',
    rateLimited: status === 429,
  };
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function normaliseBaseUrl(raw: string): string {
  const url = new URL(raw);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`baseUrl must be http(s), got ${url.protocol}`);
  }
  return raw.replace(/\/+$/, '');
}

function positiveInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
