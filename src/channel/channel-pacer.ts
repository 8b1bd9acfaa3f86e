// One per worker, shared by every call it makes to Channel Talk (all batches, re-lookups, the channel check):
// it reads the rate-limit headers of every answer and paces the worker by the rule in channel-pacing.ts, so the
// customer's own traffic on the same channel keeps a reserve. It also keeps what `progress`/status show (rate
// now, limit and remaining as last seen, giving way) and the totals the report sums (429s, grace warnings, wait).
import { randomUUID } from 'node:crypto';
import { createRateLimiter, type LimiterClock, type SpacedRateLimiter } from './rate-limiter';
import { DEFAULT_RESERVE_FRACTION, MIN_PACED_RATE, pacingRate, type Pacing } from './channel-pacing';

/** The rate-limit headers of one answer, as numbers. */
export interface RateHeaders {
  limit?: number;
  remaining?: number;
  /** x-ratelimit-will-be-throttled: true (Channel Talk's grace period: the call succeeded but was over the limit). */
  warned: boolean;
  /** The answer was a 429. */
  rateLimited: boolean;
}

export interface PacerSnapshot {
  /** This pacer (one per worker process): its totals below count from its start. */
  pacerId: string;
  /** This worker's requests per second over the last window. */
  ratePerSecond: number;
  /** What the rule permits now; null when it does not bind. */
  permittedPerSecond: number | null;
  limit: number | null;
  remaining: number | null;
  givingWay: boolean;
  warnings: number;
  rateLimited: number;
  /** Time callers spent waiting on this pacer (ms, summed over callers). */
  waitedMs: number;
}

export interface ChannelPacer {
  /** Resolves when the worker may start one request; rejects if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<void>;
  /**
   * The permit at once when `acquire` would grant it without waiting: true. False when the caller must call `acquire`
   * (which then asks again, as its own loop would have). Saves a lookup its promises (rate-limiter.ts, `acquireNow`).
   */
  acquireNow(signal?: AbortSignal): boolean;
  /** Once per request sent, when it ends: its answer's headers, 2xx or not (none after a network error). */
  observe(headers: RateHeaders): void;
  /** Grant nothing before `epochMs` (after a 429 or a grace-period warning). */
  holdUntil(epochMs: number): void;
  /** A batch joins with its share of the run (src/domain/rate-share.ts); call the result when it ends. */
  join(share: number): () => void;
  snapshot(): PacerSnapshot;
}

/** How far back the trend of remaining and the worker's own rate are measured. */
export const PACING_WINDOW_MS = 1000;
// Shorter than this, a trend is mostly the rounding of remaining: the rule then uses none.
const MIN_TREND_SPAN_MS = 200;

interface Sample {
  at: number;
  remaining: number;
  sent: number;
}

export function createChannelPacer(
  o: {
    reserveFraction?: number;
    /**
     * The configured budget (CHANNEL_RATE_LIMIT), if any: the batches' own limiters already space requests to it,
     * so the pacer does not count requests in flight against the reading (that bound a small bucket used alone:
     * two workers at 100/s against a bucket of 10 lost 13%), and the rule leaves a bucket of at most one second of
     * it to the budget (channel-pacing.ts).
     */
    budget?: number;
    clock?: LimiterClock;
    now?: () => number;
  } = {},
): ChannelPacer {
  const reserveFraction = o.reserveFraction ?? DEFAULT_RESERVE_FRACTION;
  const now = o.now ?? (() => performance.now());
  // Until the first answer shows the headers, one request at a time: a worker starting with many lookups at
  // once could otherwise run through a small bucket before it knows its size. The first answer sets the rate.
  const limiter: SpacedRateLimiter = createRateLimiter(MIN_PACED_RATE, o.clock ? { clock: o.clock } : {});
  const samples: Sample[] = [];
  const shares = new Map<number, number>();
  let nextShareId = 0;
  let sent = 0;
  let limit: number | undefined;
  let remaining: number | undefined;
  let pacing: Pacing | undefined;
  // Requests answered when remaining was last read: any sent beyond them (in flight then, or sent since) may not
  // be in that reading yet.
  let answeredAtReading = 0;
  // Answers observed (with or without headers): sent - answered are in flight.
  let answered = 0;
  let lastWarned = false;
  // The last reading left the rule unbound (its reserve, for the check of requests sent since).
  let readingUnbound = false;
  let reserve: number | undefined;
  const totals = { warnings: 0, rateLimited: 0, waitedMs: 0 };
  const pacerId = randomUUID();

  function weight(): number {
    if (shares.size === 0) return 1;
    let sum = 0;
    for (const share of shares.values()) sum += 1 / Math.max(1, share);
    return Math.min(1, sum);
  }

  /** Trend of remaining and own rate over the window, from its oldest sample to the newest. */
  function measure(at: number): { trend: number; ownRate: number } {
    while (samples.length > 2 && samples[1]!.at <= at - PACING_WINDOW_MS) samples.shift();
    const first = samples[0];
    const last = samples[samples.length - 1];
    if (!first || !last || last.at - first.at < MIN_TREND_SPAN_MS) return { trend: 0, ownRate: 0 };
    const seconds = (last.at - first.at) / 1000;
    return { trend: (last.remaining - first.remaining) / seconds, ownRate: (last.sent - first.sent) / seconds };
  }

  /**
   * This worker's requests per second up to `at`, from the oldest sample kept: the window while requests flow, and
   * longer once they stop, so a worker that went quiet (paused, between batches) reads as slowing to 0 rather than
   * as the rate of its last answers (what `status` shows as the lookup rate now).
   */
  function rateNow(at: number): number {
    measure(at);
    const first = samples[0];
    if (!first || at - first.at < MIN_TREND_SPAN_MS) return 0;
    return (sent - first.sent) / ((at - first.at) / 1000);
  }

  function repace(at: number, remainingNow: number, warned: boolean): void {
    if (limit === undefined) return;
    const { trend, ownRate } = measure(at);
    pacing = pacingRate({
      limit,
      remaining: remainingNow,
      warned,
      trend,
      ownRate,
      weight: weight(),
      reserveFraction,
      ...(o.budget !== undefined ? { budget: o.budget } : {}),
    });
    limiter.setRate(pacing.ratePerSecond);
  }

  /**
   * While the rule does not bind, requests go out faster than answers come back: each one not answered when
   * the last reading came (in flight then, or sent since) is counted off it, so a burst cannot run through the reserve before the next reading shows it. Every
   * worker sees the same reading: each may spend only its part (weight) of what lies above the line. True when
   * the permit just granted would overdraw: the rule then binds, and the caller asks again at its rate.
   */
  function overdrawn(): boolean {
    if (o.budget !== undefined) return false;
    if (remaining === undefined || !readingUnbound || reserve === undefined) return false;
    const estimate = remaining - (sent + 1 - answeredAtReading) / Math.max(weight(), 0.01);
    if (estimate >= 2 * reserve) return false;
    if (!pacing?.givingWay) repace(now(), Math.max(0, estimate), lastWarned);
    // Asking again only helps where the rule now binds (a finite rate); with no reserve nothing binds but a 429.
    return pacing?.givingWay === true;
  }

  /** A permit given: the wait it took (from `started`) counted, one more request sent. */
  function granted(started: number): void {
    totals.waitedMs += now() - started;
    sent += 1;
  }

  return {
    acquireNow(signal) {
      const started = now();
      // acquire's first turn without its await: a permit that would overdraw sends the caller to acquire.
      if (!limiter.acquireNow(signal) || (sent > answered && overdrawn())) return false;
      granted(started);
      return true;
    },

    async acquire(signal) {
      const started = now();
      // Waiters released together by an unbound limiter are checked one by one as each continues; one that would
      // overdraw asks again, at the rate the rule now sets, until a fresher reading settles it. With nothing in
      // flight no fresher reading can come: it goes, as a probe.
      do await limiter.acquire(signal);
      while (sent > answered && overdrawn());
      granted(started);
    },

    observe(h) {
      answered = Math.min(sent, answered + 1);
      if (h.warned) totals.warnings += 1;
      if (h.rateLimited) totals.rateLimited += 1;
      if (h.limit === undefined || h.remaining === undefined || !(h.limit > 0) || !(h.remaining >= 0)) {
        // An API that sends no rate-limit headers: nothing to pace by (the configured budget still applies).
        if (limit === undefined) limiter.setRate(undefined);
        return;
      }
      limit = h.limit;
      remaining = h.remaining;
      answeredAtReading = answered;
      lastWarned = h.warned || h.rateLimited;
      const at = now();
      samples.push({ at, remaining: h.remaining, sent });
      repace(at, remaining, lastWarned);
      readingUnbound = !pacing!.givingWay;
      reserve = pacing!.reserve;
    },

    holdUntil: (epochMs) => limiter.holdUntil(epochMs),

    join(share) {
      const id = nextShareId++;
      shares.set(id, share);
      return () => shares.delete(id);
    },

    snapshot() {
      return {
        pacerId,
        ratePerSecond: rateNow(now()),
        permittedPerSecond: pacing && Number.isFinite(pacing.ratePerSecond) ? pacing.ratePerSecond : null,
        limit: limit ?? null,
        remaining: remaining ?? null,
        givingWay: pacing?.givingWay ?? false,
        ...totals,
      };
    },
  };
}
