// Lookups made again before replays (activities/recheck-replay.ts) spend the run's rate budget, not one of their own:
// they take their permits from a batch of the same run running on this worker (its share of the budget, so the
// batches' shares still sum to at most the budget), and only when none runs here from a limiter at the run's budget
// divided by parallelBatches (the share a batch of its own would get), capped by the worker's CHANNEL_RATE_LIMIT.
import { createRateLimiter, type RateLimiter } from '../src/channel/rate-limiter';

export interface RunLimiters {
  /** Registers a batch's limiter while the batch runs; returns what unregisters it. */
  add(backfill: string, limiter: RateLimiter): () => void;
  /** The limiter a lookup made again for `backfill` takes its permit from. */
  forRecheck(backfill: string, fallbackRate: number | undefined): RateLimiter;
}

export function createRunLimiters(workerRateLimit: number | undefined): RunLimiters {
  const batches = new Map<string, Set<RateLimiter>>();
  const fallbacks = new Map<number | undefined, RateLimiter>();
  return {
    add(backfill, limiter) {
      const running = batches.get(backfill) ?? new Set<RateLimiter>();
      batches.set(backfill, running.add(limiter));
      return () => {
        running.delete(limiter);
        if (running.size === 0 && batches.get(backfill) === running) batches.delete(backfill);
      };
    },
    forRecheck(backfill, fallbackRate) {
      const running = batches.get(backfill);
      if (running) for (const limiter of running) return limiter;
      const rate =
        fallbackRate === undefined
          ? workerRateLimit
          : Math.min(fallbackRate, workerRateLimit ?? Number.POSITIVE_INFINITY);
      let limiter = fallbacks.get(rate);
      if (!limiter) fallbacks.set(rate, (limiter = createRateLimiter(rate)));
      return limiter;
    },
  };
}
