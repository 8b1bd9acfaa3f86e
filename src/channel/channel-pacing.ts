// How fast a worker may call Channel Talk when the channel's budget is shared with the customer's own production
// traffic. Pure: the headers and a few measurements in, a permitted rate out (table-tested in
// test/unit/channel-pacing.test.ts; the state around it is src/channel/channel-pacer.ts).
//
// What the headers tell and what they do not. Channel Talk limits a channel (all keys together) with a bucket:
// `x-ratelimit-limit` is its size L, `x-ratelimit-remaining` what is left now R. The refill rate is not sent, and
// what `x-ratelimit-reset` means (when the next call is admitted, or when a window ends) is not confirmed, so the
// rule does not build on either. It measures instead: over a short window, the change of R per second (the trend)
// is what refills minus what everybody takes, so
//
//     what the others leave us  A  =  our own rate  +  trend.
//
// The rule is a level controller on R. It aims to keep R at a reserve (a fraction of L, default 20%) that is
// never ours: a customer's burst lands on it instead of on a 429.
//   - R at or above twice the reserve: nothing to give way to; the rule does not bind (only the configured
//     budget, if any, does). This is what keeps a small bucket used alone at full speed: with a bucket of 10 at
//     100/s and a budget of 100/s, R stays near 10, far above 2 x 2, and the reserve costs nothing.
//   - Below that: permitted = own rate + weight x (trend + (R - reserve) / HORIZON). At R = reserve that is
//     exactly A (take what the others leave, so R stays put); above it the surplus is spent over HORIZON, below
//     it the deficit is paid back over HORIZON. When production grows, the trend falls and so does the rate; when
//     it stops, the trend rises and the repair takes the budget back. In steady state R sits at the reserve, below
//     L, so no refill is lost to a full bucket: the repair gets all of A on average.
//   - weight: every worker reads the same channel-wide R and trend, so if each corrected by the whole gap, n
//     workers would correct n times over and oscillate. A worker corrects by its part of the run (the sum of
//     1/share over its running batches, see src/domain/rate-share.ts), and the parts add up to at most 1.
//   - A bucket read at its ends hides the trend: full (R >= L - 1), it was capped and could have given more, so
//     the rule lets the rate at least double from what was used (a probe); empty, over-limit calls do not show.
//   - `x-ratelimit-will-be-throttled: true` (the grace period) or a 429 is the empty end seen for sure: the rule
//     reads R as 0 and at least halves the rate used (the caller also holds until the reset, as after a 429);
//     a controller that only paid back the reserve would leave the overdraft it cannot see in place.
//   - Never below MIN_RATE: a worker keeps a reading now and then, or it could not see the others stop.
//   - A bucket that holds no more than one second of the configured budget (L <= CHANNEL_RATE_LIMIT) is left to
//     the budget, except for warnings and 429s: its reserve is less than the jitter of the budget's own spacing
//     (its limiters catch a late timer up by one interval per batch), so pacing on it only turns that jitter into
//     held-back requests released together. Measured with `npm run bench -- --rate 100 --burst 10 --workers 2`:
//     with the reserve enforced on that bucket 81-87% of the budget and 6-21 429s, without it 98% and none.
// Without a configured budget the rule alone paces the job; with one, the budget (the batch limiters) caps it.

/** Seconds over which the gap between R and the reserve is closed. */
export const PACING_HORIZON_S = 1;
/** Requests per second a worker keeps even when giving way, to keep reading the headers. */
export const MIN_PACED_RATE = 1;
/** Default share of x-ratelimit-limit left to the channel's other traffic (CHANNEL_RATE_RESERVE). */
export const DEFAULT_RESERVE_FRACTION = 0.2;

export interface PacingInputs {
  /** x-ratelimit-limit as last seen. */
  limit: number;
  /** x-ratelimit-remaining as last seen. */
  remaining: number;
  /** The last answer carried x-ratelimit-will-be-throttled: true, or was a 429. */
  warned: boolean;
  /** Change of remaining per second over the recent window (negative: draining). */
  trend: number;
  /** This worker's requests per second over the same window. */
  ownRate: number;
  /** This worker's part of the run, in (0, 1]. */
  weight: number;
  /** Share of the limit left to others, in [0, 1). */
  reserveFraction: number;
  /** The configured budget (CHANNEL_RATE_LIMIT) in requests per second, if any. */
  budget?: number;
}

export interface Pacing {
  /** Requests per second this worker may make; Infinity when the rule does not bind. */
  ratePerSecond: number;
  /** The rule binds: the job is holding back so that the reserve stays for other traffic. */
  givingWay: boolean;
  /** The reserve in requests (of x-ratelimit-limit). */
  reserve: number;
}

/** The reserve in whole requests: at most L - 1, so that a bucket of 1 still lets one call through. */
export function reserveOf(limit: number, reserveFraction: number): number {
  return Math.max(0, Math.min(Math.ceil(limit * reserveFraction), limit - 1));
}

export function pacingRate(i: PacingInputs): Pacing {
  const reserve = reserveOf(i.limit, i.reserveFraction);
  const remaining = i.warned ? 0 : i.remaining;
  const unbound = { ratePerSecond: Infinity, givingWay: false, reserve };
  if (remaining >= 2 * reserve && !i.warned) return unbound;
  if (i.budget !== undefined && i.limit <= i.budget && !i.warned) return unbound;
  const weight = Math.min(1, Math.max(0, i.weight));
  let rate = i.ownRate + weight * (i.trend + (remaining - reserve) / PACING_HORIZON_S);
  if (remaining >= i.limit - 1) rate = Math.max(rate, 2 * i.ownRate);
  if (i.warned) rate = Math.min(rate, i.ownRate / 2);
  return { ratePerSecond: Math.max(MIN_PACED_RATE, rate), givingWay: true, reserve };
}
