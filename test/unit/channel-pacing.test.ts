import { describe, expect, it } from 'vitest';
import { createChannelPacer } from '../../src/channel/channel-pacer';
import { MIN_PACED_RATE, pacingRate, reserveOf, type PacingInputs } from '../../src/channel/channel-pacing';
import { createRateLimiter, type LimiterClock } from '../../src/channel/rate-limiter';

const base: PacingInputs = {
  limit: 200,
  remaining: 200,
  warned: false,
  trend: 0,
  ownRate: 0,
  weight: 1,
  reserveFraction: 0.2,
};

describe('reserveOf', () => {
  it.each([
    [10, 0.2, 2],
    [200, 0.2, 40],
    [20, 0.2, 4],
    [1000, 0.2, 200],
    [1, 0.2, 0], // a bucket of one keeps its one call
    [3, 0.9, 2],
    [10, 0, 0],
  ])('limit %d, fraction %d: %d', (limit, fraction, reserve) => {
    expect(reserveOf(limit, fraction)).toBe(reserve);
  });
});

describe('pacingRate', () => {
  it.each<[string, Partial<PacingInputs>, { rate: number; givingWay: boolean }]>([
    // Budget: a bucket of 10 at 100/s used alone by two workers at 50/s each; remaining stays near the top.
    [
      'small bucket used alone: the reserve costs nothing',
      { limit: 10, remaining: 9, ownRate: 50, weight: 0.5 },
      { rate: Infinity, givingWay: false },
    ],
    [
      'small bucket, remaining at twice the reserve',
      { limit: 10, remaining: 4, ownRate: 50 },
      { rate: Infinity, givingWay: false },
    ],
    // Shared: bucket 200 refilled at 50/s, production at about 14/s, so 36/s are left.
    [
      'shared, full bucket: the budget decides',
      { remaining: 200, ownRate: 50, trend: -14 },
      { rate: Infinity, givingWay: false },
    ],
    [
      'shared, at the reserve and steady: take what is left',
      { remaining: 40, ownRate: 36, trend: 0 },
      { rate: 36, givingWay: true },
    ],
    [
      'shared, draining toward the reserve: slow to the refill',
      { remaining: 60, ownRate: 50, trend: -14 },
      { rate: 56, givingWay: true },
    ],
    [
      'shared, production bursts 20 at once: give way',
      { remaining: 20, ownRate: 36, trend: -20 },
      { rate: MIN_PACED_RATE, givingWay: true },
    ],
    [
      'shared, after the burst: pay the reserve back',
      { remaining: 30, ownRate: 20, trend: 16 },
      { rate: 26, givingWay: true },
    ],
    [
      'shared, production stops: take the budget back',
      { remaining: 60, ownRate: 36, trend: 14 },
      { rate: 70, givingWay: true },
    ],
    [
      'two workers correct by their part only',
      { remaining: 40, ownRate: 18, trend: -10, weight: 0.5 },
      { rate: 13, givingWay: true },
    ],
    // Grace period: refill 100, bucket 20 (reserve 4), no budget configured.
    [
      'grace: warned, halve what was used',
      { limit: 20, remaining: 5, warned: true, ownRate: 100 },
      { rate: 50, givingWay: true },
    ],
    [
      'grace: warned at a low rate, pay back the reserve',
      { limit: 20, remaining: 0, warned: true, ownRate: 6, trend: 0 },
      { rate: 2, givingWay: true },
    ],
    [
      'grace: near the reserve, no warning: what the trend allows',
      { limit: 20, remaining: 4, ownRate: 90, trend: 10 },
      { rate: 100, givingWay: true },
    ],
    // A reserve as large as the bucket: a full bucket (capped, trend hides the refill) lets the rate double.
    [
      'full bucket below twice the reserve: probe',
      { limit: 10, remaining: 9, ownRate: 20, reserveFraction: 0.5 },
      { rate: 40, givingWay: true },
    ],
    [
      'no own traffic yet, below the line: a start from the gap',
      { limit: 20, remaining: 6, ownRate: 0 },
      { rate: 2, givingWay: true },
    ],
    [
      'a bucket of at most one second of the budget is left to the budget',
      { limit: 10, remaining: 1, ownRate: 50, trend: -5, budget: 100 },
      { rate: Infinity, givingWay: false },
    ],
    [
      '... but not its warnings',
      { limit: 10, remaining: 1, warned: true, ownRate: 50, budget: 100 },
      { rate: 25, givingWay: true },
    ],
    [
      'a bucket larger than the budget keeps its reserve',
      { remaining: 30, ownRate: 36, trend: 0, budget: 50 },
      { rate: 26, givingWay: true },
    ],
    [
      'reserve 0: only warnings bind',
      { limit: 20, remaining: 0, reserveFraction: 0, ownRate: 100 },
      { rate: Infinity, givingWay: false },
    ],
  ])('%s', (_name, inputs, expected) => {
    const pacing = pacingRate({ ...base, ...inputs });
    expect(pacing.ratePerSecond).toBeCloseTo(expected.rate, 6);
    expect(pacing.givingWay).toBe(expected.givingWay);
  });
});

// --- The rule in a closed loop: a model of the channel's bucket, the customer's production and the job's
// workers, on a simulated clock (no timers, no sockets: the integration test does that with the simulator).

interface Scenario {
  refill: number;
  bucket: number;
  /** The configured budget for the whole run (each worker's batch limiter gets its part). */
  budget?: number;
  workers: number;
  /** Lookups in flight per worker. */
  concurrency: number;
  /** Production: steady per second, plus a burst of this many every 5 s. */
  production: { perSecond: number; burst: number };
  /** Over-limit calls succeed with the warning instead of a 429. */
  grace: boolean;
  lookups: number;
  latencyMs: number;
  /** CHANNEL_RATE_RESERVE; default 0.2. */
  reserveFraction?: number;
  /**
   * How a lookup takes its permits: `client` as src/client.ts does (a permit granted at once without a promise,
   * `acquireNow`, else `acquire`; the default), `awaited` always through `acquire` (as the client did before).
   */
  permits?: 'client' | 'awaited';
}

interface Outcome {
  productionCalls: number;
  production429: number;
  repair429: number;
  warned: number;
  /** Lookups per second from the first to the last. */
  repairRate: number;
}

class Timeline {
  now = 0;
  private seq = 0;
  private heap: Array<{ at: number; seq: number; run: () => void; cancelled?: boolean }> = [];

  at(time: number, run: () => void) {
    const event = { at: time, seq: this.seq++, run };
    const h = this.heap;
    h.push(event);
    for (let i = h.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (this.before(h[p]!, h[i]!)) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
    return event;
  }

  private before(a: { at: number; seq: number }, b: { at: number; seq: number }) {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private pop() {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.before(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.at(this.now + ms, resolve));
  }

  async runUntil(done: () => boolean): Promise<void> {
    while (!done()) {
      const event = this.pop();
      if (!event) return;
      this.now = event.at;
      if (!event.cancelled) event.run();
      // Let every promise continuation of this instant run before time moves on.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  clock(): LimiterClock {
    return {
      now: () => this.now,
      epochNow: () => this.now,
      setTimer: (callback, ms) => this.at(this.now + ms, callback),
      clearTimer: (handle) => {
        (handle as { cancelled?: boolean }).cancelled = true;
      },
    };
  }
}

async function simulate(s: Scenario): Promise<Outcome> {
  const time = new Timeline();
  let tokens = s.bucket;
  let refilledAt = 0;
  const take = () => {
    tokens = Math.min(s.bucket, tokens + ((time.now - refilledAt) / 1000) * s.refill);
    refilledAt = time.now;
    if (tokens >= 1) {
      tokens -= 1;
      return { ok: true, warned: false, remaining: Math.floor(tokens) };
    }
    return { ok: s.grace, warned: s.grace, remaining: 0 };
  };
  // Reset as the simulator sends it: when the next call is admitted, in whole seconds rounded up.
  const resetAt = () => Math.ceil((time.now + 1) / 1000) * 1000;

  const outcome: Outcome = { productionCalls: 0, production429: 0, repair429: 0, warned: 0, repairRate: 0 };
  let left = s.lookups;
  let finished = 0;
  let first = -1;
  let last = 0;
  const production = () => {
    if (finished === s.lookups) return;
    outcome.productionCalls += 1;
    if (!take().ok) outcome.production429 += 1;
  };
  const horizon = 1_000_000;
  if (s.production.perSecond > 0)
    for (let at = 0; at < horizon; at += 1000 / s.production.perSecond) time.at(at, production);
  for (let at = 2500; at < horizon; at += 5000)
    time.at(at, () => {
      for (let i = 0; i < s.production.burst; i++) production();
    });

  for (let w = 0; w < s.workers; w++) {
    const pacer = createChannelPacer({
      clock: time.clock(),
      now: () => time.now,
      ...(s.reserveFraction !== undefined ? { reserveFraction: s.reserveFraction } : {}),
      ...(s.budget !== undefined ? { budget: s.budget } : {}),
    });
    pacer.join(s.workers);
    const budget = createRateLimiter(s.budget === undefined ? undefined : s.budget / s.workers, {
      clock: time.clock(),
    });
    const lookups = async () => {
      while (left > 0) {
        left -= 1;
        for (;;) {
          // As the client does (src/channel/client.ts): the worker's pacer, then the budget.
          if (s.permits === 'awaited') {
            await pacer.acquire();
            await budget.acquire();
          } else {
            if (!pacer.acquireNow()) await pacer.acquire();
            if (!budget.acquireNow()) await budget.acquire();
          }
          if (first < 0) first = time.now;
          await time.sleep(s.latencyMs / 2);
          const answer = take();
          await time.sleep(s.latencyMs / 2);
          pacer.observe({
            limit: s.bucket,
            remaining: answer.remaining,
            warned: answer.warned,
            rateLimited: !answer.ok,
          });
          if (answer.warned) outcome.warned += 1;
          if (answer.ok) {
            if (answer.warned) pacer.holdUntil(resetAt());
            break;
          }
          outcome.repair429 += 1;
          pacer.holdUntil(resetAt());
          budget.holdUntil(resetAt());
          await time.sleep(resetAt() - time.now);
        }
        finished += 1;
        last = time.now;
      }
    };
    for (let c = 0; c < s.concurrency; c++) void lookups();
  }
  await time.runUntil(() => finished === s.lookups);
  outcome.repairRate = finished / ((last - first) / 1000);
  return outcome;
}

const quiet = { perSecond: 0, burst: 0 };

/** No reserve and no budget: nothing binds before a 429. */
const noReserve: Scenario = {
  refill: 40,
  bucket: 40,
  workers: 1,
  concurrency: 32,
  production: quiet,
  grace: false,
  lookups: 300,
  latencyMs: 4,
  reserveFraction: 0,
};

describe('permits taken at once (acquireNow) pace as permits awaited', () => {
  const scenarios: Array<[string, Scenario]> = [
    [
      'shared, budget 50, 2 workers',
      {
        refill: 50,
        bucket: 200,
        budget: 50,
        workers: 2,
        concurrency: 8,
        production: { perSecond: 10, burst: 20 },
        grace: false,
        lookups: 600,
        latencyMs: 4,
      },
    ],
    [
      'headers alone, grace period',
      {
        refill: 100,
        bucket: 20,
        workers: 2,
        concurrency: 16,
        production: quiet,
        grace: true,
        lookups: 600,
        latencyMs: 4,
      },
    ],
    ['no reserve: 429s', noReserve],
  ];
  it.each(scenarios)('%s', async (_name, scenario) => {
    const awaited = await simulate({ ...scenario, permits: 'awaited' });
    const client = await simulate({ ...scenario, permits: 'client' });
    // The same run but for the last bits of a float (the simulated times add up in another order).
    expect({ ...client, repairRate: 0 }).toEqual({ ...awaited, repairRate: 0 });
    expect(client.repairRate).toBeCloseTo(awaited.repairRate, 9);
  });
});

describe("the pacer's lookup rate now (status, the batch heartbeat)", () => {
  it('is the rate of the last second while requests flow, and falls toward 0 once they stop', async () => {
    let t = 0;
    const pacer = createChannelPacer({ now: () => t });
    // 10 requests/s for 2 s, each answered at once with plenty remaining (the rule does not bind).
    for (; t <= 2000; t += 100) {
      await pacer.acquire();
      pacer.observe({ limit: 100, remaining: 99, warned: false, rateLimited: false });
    }
    t = 2000;
    expect(pacer.snapshot().ratePerSecond).toBeCloseTo(10, 0);
    t = 6000; // quiet for 4 s
    expect(pacer.snapshot().ratePerSecond).toBeLessThan(3);
    t = 60_000;
    expect(pacer.snapshot().ratePerSecond).toBeLessThan(0.2);
  });
});

describe('the pacing rule in a closed loop (model of the bucket, simulated clock)', () => {
  it('shared: bucket 200 at 50/s, production 10/s + 20 every 5 s, budget 50: production never refused, repair >= 90% of what is left', async () => {
    for (const workers of [1, 2, 4]) {
      const o = await simulate({
        refill: 50,
        bucket: 200,
        budget: 50,
        workers,
        concurrency: 8,
        production: { perSecond: 10, burst: 20 },
        grace: false,
        lookups: 1500,
        latencyMs: 4,
      });
      expect(o.production429, `${workers} workers`).toBe(0);
      expect(o.repair429).toBe(0);
      expect(o.repairRate / (50 - 14)).toBeGreaterThanOrEqual(0.9);
    }
  });

  it('shared without a budget: the headers alone keep production whole', async () => {
    const o = await simulate({
      refill: 50,
      bucket: 200,
      workers: 2,
      concurrency: 16,
      production: { perSecond: 10, burst: 20 },
      grace: false,
      lookups: 1500,
      latencyMs: 20,
    });
    expect(o.production429).toBe(0);
    expect(o.repairRate / (50 - 14)).toBeGreaterThanOrEqual(0.9);
  });

  it('grace period: refill 100/s, bucket 20, no budget: at most 1% of lookups warned', async () => {
    for (const workers of [1, 2]) {
      const o = await simulate({
        refill: 100,
        bucket: 20,
        workers,
        concurrency: 16,
        production: quiet,
        grace: true,
        lookups: 2000,
        latencyMs: 4,
      });
      expect(o.warned, `${workers} workers`).toBeLessThanOrEqual(20);
    }
  });

  it('budget: bucket 10 at 100/s used alone by two workers at 100/s: >= 99% and no 429', async () => {
    const o = await simulate({
      refill: 100,
      bucket: 10,
      budget: 100,
      workers: 2,
      concurrency: 8,
      production: quiet,
      grace: false,
      lookups: 2000,
      latencyMs: 4,
    });
    expect(o.repair429).toBe(0);
    expect(o.repairRate).toBeGreaterThanOrEqual(99);
  });

  it('no reserve and no budget: nothing binds before a 429, and the run still finishes (no busy loop)', async () => {
    const o = await simulate(noReserve);
    expect(o.repair429).toBeGreaterThan(0);
  });

  it('no budget and a 300/s channel: no 429 while finding the rate from the headers', async () => {
    const o = await simulate({
      refill: 300,
      bucket: 300,
      workers: 2,
      concurrency: 16,
      production: quiet,
      grace: false,
      lookups: 2000,
      latencyMs: 4,
    });
    expect(o.repair429).toBe(0);
    expect(o.repairRate).toBeGreaterThanOrEqual(0.9 * 300);
  });
});
