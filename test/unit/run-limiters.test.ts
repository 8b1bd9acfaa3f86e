import { describe, expect, it } from 'vitest';
import { createRateLimiter } from '../../src/channel/rate-limiter';
import { createRunLimiters } from '../../activities/run-limiters';

// A replay's lookup made again spends the run's budget: a running batch's permits on this worker, else a limiter
// at the run's budget / parallelBatches, capped by the worker's CHANNEL_RATE_LIMIT.
describe('run limiters', () => {
  it('borrows a running batch of the same run, never one of another run', () => {
    const limiters = createRunLimiters(undefined);
    const batch = createRateLimiter(5);
    const remove = limiters.add('run-a', batch);
    expect(limiters.forRecheck('run-a', 2)).toBe(batch);
    expect(limiters.forRecheck('run-b', 2)).not.toBe(batch);
    remove();
    expect(limiters.forRecheck('run-a', 2)).not.toBe(batch);
  });

  it.each([
    // worker cap, fallback rate -> rate of the limiter used
    [undefined, 2.5, 2.5],
    [10, 2.5, 2.5],
    [2, 2.5, 2],
    [10, undefined, 10],
    [undefined, undefined, Infinity],
  ])('no batch here: worker cap %s, run share %s -> %s/s', (cap, fallback, rate) => {
    const limiter = createRunLimiters(cap).forRecheck('run-a', fallback);
    expect(limiter.ratePerSecond).toBe(rate);
  });

  it('one fallback limiter per rate, shared by every replay of the worker', () => {
    const limiters = createRunLimiters(undefined);
    expect(limiters.forRecheck('run-a', 3)).toBe(limiters.forRecheck('run-b', 3));
  });
});
