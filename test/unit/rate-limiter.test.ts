import { describe, expect, it } from 'vitest';
import { createRateLimiter } from '../../src/channel/rate-limiter';

/** Starts `count` acquires at once and records when each resolved, relative to the start. */
async function grantTimes(limiter: ReturnType<typeof createRateLimiter>, count: number): Promise<number[]> {
  const start = performance.now();
  return Promise.all(Array.from({ length: count }, () => limiter.acquire().then(() => performance.now() - start)));
}

describe('createRateLimiter', () => {
  it('spaces permits evenly: 21 acquires at 20/s take about one second', async () => {
    const limiter = createRateLimiter(20);
    const times = await grantTimes(limiter, 21);
    const total = Math.max(...times);
    expect(total).toBeGreaterThanOrEqual(950);
    expect(total).toBeLessThan(1500);
    const sorted = [...times].sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++) {
      // 1 ms of slack for timer/clock granularity between Date.now and performance.now.
      expect(sorted[i]! - sorted[i - 1]!).toBeGreaterThanOrEqual(49);
    }
  });

  it('never starts more than ceil(T*R)+1 requests in any window of length T', async () => {
    const rate = 50;
    const limiter = createRateLimiter(rate);
    const times = (await grantTimes(limiter, 30)).sort((a, b) => a - b);
    const windowMs = 100;
    for (const from of times) {
      const inWindow = times.filter((t) => t >= from && t < from + windowMs).length;
      expect(inWindow).toBeLessThanOrEqual(Math.ceil((windowMs / 1000) * rate) + 1);
    }
  });

  it('grants permits in arrival order', async () => {
    const limiter = createRateLimiter(100);
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3, 4, 5].map((i) => limiter.acquire().then(() => order.push(i))));
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it.each([
    ['undefined', undefined],
    ['0', 0],
    ['Infinity', Infinity],
  ])('is unlimited for %s: 200 acquires resolve at once', async (_label, rate) => {
    const limiter = createRateLimiter(rate);
    expect(limiter.ratePerSecond).toBe(Infinity);
    const times = await grantTimes(limiter, 200);
    expect(Math.max(...times)).toBeLessThan(200); // a limiter at any rate would need 199 intervals
  });

  it.each([-1, NaN])('rejects an invalid rate (%s)', (rate) => {
    expect(() => createRateLimiter(rate)).toThrow(RangeError);
  });

  it('rejects a waiting acquire when its signal aborts, without costing the next caller its slot', async () => {
    const limiter = createRateLimiter(5); // 200 ms apart
    await limiter.acquire();
    const controller = new AbortController();
    const aborted = limiter.acquire(controller.signal);
    const start = performance.now();
    const next = limiter.acquire().then(() => performance.now() - start);
    setTimeout(() => controller.abort(new Error('stop waiting')), 20);
    await expect(aborted).rejects.toThrow('stop waiting');
    // The aborted waiter's slot (~200 ms) goes to the next caller instead of pushing it to ~400 ms.
    expect(await next).toBeLessThan(320);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const limiter = createRateLimiter(1);
    await expect(limiter.acquire(AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
  });

  it.each([
    ['a spaced limiter', 1000],
    ['an unlimited limiter', undefined],
  ])('holdUntil / pause delay the next permits of %s', async (_label, rate) => {
    const limiter = createRateLimiter(rate);
    await limiter.acquire();
    limiter.pause(150);
    const times = await grantTimes(limiter, 3);
    expect(Math.min(...times)).toBeGreaterThanOrEqual(140);
    expect(Math.max(...times)).toBeLessThan(400);
    // A hold earlier than the current one does not shorten it.
    limiter.holdUntil(Date.now() + 100);
    limiter.holdUntil(Date.now() + 10);
    const [after] = await grantTimes(limiter, 1);
    expect(after).toBeGreaterThanOrEqual(90);
  });
});
