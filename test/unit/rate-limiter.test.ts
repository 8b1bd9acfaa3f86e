import { describe, expect, it } from 'vitest';
import { SeededRng } from '../../dev/seeded-rng';
import { createRateLimiter, type LimiterClock } from '../../src/channel/rate-limiter';

/** Starts `count` acquires at once and records when each resolved, relative to the start. */
async function grantTimes(limiter: ReturnType<typeof createRateLimiter>, count: number): Promise<number[]> {
  const start = performance.now();
  return Promise.all(Array.from({ length: count }, () => limiter.acquire().then(() => performance.now() - start)));
}

/** The most of the (sorted) `times` in any half-open window [t, t + windowMs). */
function mostInWindow(times: number[], windowMs: number): number {
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (j < times.length && times[j]! < times[i]! + windowMs) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

/** The limiter's documented guarantee: at most ceil(T*R)+1 starts in any window of length T. */
const bound = (windowMs: number, rate: number) => Math.ceil((windowMs / 1000) * rate) + 1;

// On the real clock a permit is observed when its promise callback runs, a little after the limiter granted
// it. Windows of (k + 1/2) intervals have the same bound as a window half an interval longer, so they check
// the guarantee exactly while tolerating up to half an interval of that observation delay.
const realClockWindows = (intervalMs: number) => [0.5, 1.5, 4.5, 10.5].map((k) => k * intervalMs);

describe('createRateLimiter', () => {
  it('spreads permits evenly: 21 acquires at 40/s take about half a second', async () => {
    const limiter = createRateLimiter(40); // 25 ms apart
    const times = (await grantTimes(limiter, 21)).sort((a, b) => a - b);
    expect(times[20]!).toBeGreaterThanOrEqual(475); // 20 intervals
    expect(times[20]!).toBeLessThan(900);
    for (const windowMs of realClockWindows(25))
      expect(mostInWindow(times, windowMs)).toBeLessThanOrEqual(bound(windowMs, 40));
  });

  it('never starts more than ceil(T*R)+1 requests in any window of length T', async () => {
    const rate = 50;
    const limiter = createRateLimiter(rate);
    const times = (await grantTimes(limiter, 30)).sort((a, b) => a - b);
    for (const windowMs of realClockWindows(20)) {
      expect(mostInWindow(times, windowMs)).toBeLessThanOrEqual(bound(windowMs, rate));
    }
  });

  it('reaches the configured rate in the long run: 16 waiters at 200/s for about a second', async () => {
    const rate = 200;
    const limiter = createRateLimiter(rate);
    const times: number[] = [];
    const permits = 201;
    let left = permits;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (left > 0) {
          left--;
          await limiter.acquire();
          times.push(performance.now());
        }
      }),
    );
    times.sort((a, b) => a - b);
    const achieved = (times.length - 1) / ((times[times.length - 1]! - times[0]!) / 1000);
    // On the real clock a starved process (other test files, a loaded CI machine) fires timers late by more than an
    // interval, which the limiter deliberately does not catch up in a burst: 92% was measured at a load of 19 on two
    // cores. The 97% floor under late timers is held deterministically by the simulated clock below; here the real
    // timers and promises must still give most of the rate.
    expect(achieved).toBeGreaterThanOrEqual(0.85 * rate);
    for (const windowMs of realClockWindows(5))
      expect(mostInWindow(times, windowMs)).toBeLessThanOrEqual(bound(windowMs, rate));
  });

  it('does not burst after idling: the permits after a pause are one interval apart', async () => {
    const limiter = createRateLimiter(20); // 50 ms apart
    await grantTimes(limiter, 2);
    await new Promise((r) => setTimeout(r, 300)); // six intervals with nobody asking
    const times = (await grantTimes(limiter, 4)).sort((a, b) => a - b);
    expect(times[0]!).toBeLessThan(25); // the first is granted at once...
    // ...and nothing was saved up: the rest follow at 50, 100, 150 ms (observed 1 ms early at worst).
    for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThanOrEqual(i * 50 - 1);
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

/**
 * A simulated clock whose timers fire late (or early) by amounts the test chooses. Time stands still while
 * promise callbacks run, so the times recorded by callers are exactly the times the limiter granted them.
 */
class LateClock implements LimiterClock {
  private t = 1_000;
  private timers = new Map<number, { at: number; callback: () => void }>();
  private nextId = 1;
  constructor(private readonly lateness: (dueInMs: number) => number) {}
  now = () => this.t;
  epochNow = () => 1_700_000_000_000 + this.t;
  setTimer = (callback: () => void, ms: number) => {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + Math.max(0, ms), callback });
    return id;
  };
  clearTimer = (handle: unknown) => {
    this.timers.delete(handle as number);
  };
  /** Lets promise callbacks (callers resuming, acquiring again) run to completion. */
  static settle = () => new Promise<void>((r) => setImmediate(r));
  /** Fires timers, each late by `lateness`, until `untilMs` or nothing is scheduled. */
  async run(untilMs: number): Promise<void> {
    await LateClock.settle();
    while (this.t < untilMs && this.timers.size > 0) {
      const [id, next] = [...this.timers].reduce((a, b) => (b[1].at < a[1].at ? b : a));
      this.timers.delete(id);
      this.t = Math.max(this.t, next.at + this.lateness(next.at - this.t));
      next.callback();
      await LateClock.settle();
    }
  }
  /** Moves time forward with no timer firing (the limiter sits idle). */
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A seeded generator, so a failure reproduces. */
function seeded(seed: number): () => number {
  const rng = new SeededRng(seed);
  return () => rng.float();
}

/** `waiters` callers acquiring in a loop for `durationMs` of simulated time; returns the grant times. */
async function saturate(clock: LateClock, rate: number, durationMs: number, waiters = 16): Promise<number[]> {
  const limiter = createRateLimiter(rate, { clock });
  const grants: number[] = [];
  const end = clock.now() + durationMs;
  const callers = Array.from({ length: waiters }, async () => {
    while (clock.now() < end) {
      await limiter.acquire();
      grants.push(clock.now());
    }
  });
  await clock.run(end);
  // Release whoever is still waiting (their grants fall after `end` and are not counted).
  await clock.run(Infinity);
  await Promise.all(callers);
  return grants.filter((t) => t < end).sort((a, b) => a - b);
}

describe('createRateLimiter with timers that fire late (simulated clock)', () => {
  it.each([
    [200, 'up to one interval late', (r: () => number, i: number) => r() * i],
    [200, 'up to three intervals late, sometimes early', (r: () => number, i: number) => (r() - 0.15) * 3 * i],
    [1000, 'a millisecond timer: up to two intervals late', (r: () => number, i: number) => r() * 2 * i],
    [7, 'an interval that is not a whole number of ms', (r: () => number, i: number) => r() * 1.5 * i],
  ])('at %s/s, %s: never more than ceil(T*R)+1 in any window of length T', async (rate, _label, late) => {
    const intervalMs = 1000 / rate;
    const random = seeded(rate * 31 + 7);
    const clock = new LateClock(() => late(random, intervalMs));
    const grants = await saturate(clock, rate, 1200 * intervalMs);
    expect(grants.length).toBeGreaterThan(600); // enough permits for the windows to mean something
    for (const k of [0, 0.5, 1, 1.5, 2, 4.5, 10, 100, 1000]) {
      // k = 0: permits granted at the same instant (a window of a few µs): at most 2.
      const windowMs = k === 0 ? 1e-6 : k * intervalMs;
      expect(mostInWindow(grants, windowMs), `window of ${k} intervals`).toBeLessThanOrEqual(bound(windowMs, rate));
    }
  });

  it('keeps the full rate when every timer is late by up to one interval', async () => {
    const random = seeded(1);
    const clock = new LateClock(() => random() * 5); // 200/s: up to 5 ms late, every time
    const grants = await saturate(clock, 200, 10_000);
    // 10 s at 200/s: 2,000 slots (the last may fall just past the end). Spacing from the actual grant time
    // would have given about 2000 / 1.5 = 1,333.
    expect(grants.length).toBeGreaterThanOrEqual(1999);
    expect(grants.length).toBeLessThanOrEqual(2001);
  });

  it('catches up by one interval at most when a timer is very late', async () => {
    let late = 0;
    const clock = new LateClock(() => late);
    const limiter = createRateLimiter(100, { clock }); // 10 ms apart
    const granted: number[] = [];
    const start = clock.now();
    for (let i = 0; i < 6; i++) void limiter.acquire().then(() => granted.push(clock.now() - start));
    late = 50; // the first timer fires 50 ms late (five intervals)
    await clock.run(start + 15);
    late = 0;
    await clock.run(Infinity);
    // 0 at once; the timer for 10 fires at 60 and grants two (one interval caught up), then 70, 80, 90.
    expect(granted).toEqual([0, 60, 60, 70, 80, 90]);
  });

  it('setRate: the next permit comes one new interval after the last, faster or slower; a hold stays', async () => {
    const clock = new LateClock(() => 0);
    const limiter = createRateLimiter(10, { clock }); // 100 ms apart
    const granted: number[] = [];
    const start = clock.now();
    const take = (n: number) =>
      Array.from({ length: n }, () => limiter.acquire().then(() => granted.push(clock.now() - start)));
    const waiting = take(4);
    await LateClock.settle(); // the first at once; the second planned at 100
    limiter.setRate(100); // 10 ms apart: the second comes at 10, not 100
    await clock.run(start + 15); // fires at 10, then at 20 (the run stops past 15)
    limiter.setRate(20); // 50 ms apart from the last permit (20)
    await Promise.all([...waiting, clock.run(Infinity)]);
    expect(granted).toEqual([0, 10, 20, 70]);
    limiter.pause(300);
    const heldAt = clock.now() - start;
    limiter.setRate(undefined); // unlimited, but the hold is kept
    await Promise.all([...take(2), clock.run(Infinity)]);
    expect(granted.slice(4)).toEqual([heldAt + 300, heldAt + 300]);
    expect(limiter.ratePerSecond).toBe(Infinity);
  });

  it('starts a new schedule after idling and after a hold: no saved-up burst', async () => {
    const clock = new LateClock(() => 0);
    const limiter = createRateLimiter(100, { clock }); // 10 ms apart
    const granted: number[] = [];
    const start = clock.now();
    const take = (n: number) =>
      Array.from({ length: n }, () => limiter.acquire().then(() => granted.push(clock.now() - start)));
    await Promise.all([...take(3), clock.run(Infinity)]);
    expect(granted).toEqual([0, 10, 20]);
    clock.advance(1_000); // idle for 100 intervals
    await Promise.all([...take(3), clock.run(Infinity)]);
    expect(granted.slice(3)).toEqual([1020, 1030, 1040]);
    limiter.pause(100); // e.g. a 429 with Retry-After
    const heldAt = clock.now() - start;
    await Promise.all([...take(3), clock.run(Infinity)]);
    expect(granted.slice(6)).toEqual([heldAt + 100, heldAt + 110, heldAt + 120]);
  });

  it('a hold blocks every permit until it ends even with timers late, then re-bases without catching up', async () => {
    const clock = new LateClock(() => 30); // every timer 30 ms late (three intervals)
    const limiter = createRateLimiter(100, { clock });
    const granted: number[] = [];
    const start = clock.now();
    await limiter.acquire();
    limiter.holdUntil(clock.epochNow() + 200);
    const all = Array.from({ length: 3 }, () => limiter.acquire().then(() => granted.push(clock.now() - start)));
    await clock.run(Infinity);
    await Promise.all(all);
    // The hold's timer fires at 230: one permit (no catch-up across a hold); then 240 + 30 late = 270 grants two.
    expect(granted[0]).toBe(230);
    expect(granted.slice(1)).toEqual([270, 270]);
  });
});

describe('acquireNow: the permit acquire would grant without waiting, and only that', () => {
  type Step = 'now' | 'acquire' | 'pause 50' | `advance ${number}` | 'abort' | 'run';
  // Each case: a rate, steps, and what each `now` step answers (in order). Time is simulated: it moves only by
  // `advance` (no timer fires) or `run` (the limiter's timers fire on time).
  const cases: Array<[string, number | undefined, Step[], boolean[]]> = [
    ['an idle limiter grants at once', 10, ['now'], [true]],
    [
      'the next slot is one interval on',
      10,
      ['now', 'now', 'advance 99', 'now', 'advance 1', 'now'],
      [true, false, false, true],
    ],
    ['unlimited: always at once', undefined, ['now', 'now', 'now'], [true, true, true]],
    [
      'someone already waits: never ahead of it, even when its slot has come',
      10,
      ['now', 'acquire', 'advance 150', 'now', 'run', 'now'],
      [true, false, false],
    ],
    [
      'a hold (after a 429) refuses until it ends',
      undefined,
      ['pause 50', 'now', 'advance 49', 'now', 'advance 1', 'now'],
      [false, false, true],
    ],
    ['an aborted signal takes nothing (acquire then rejects)', undefined, ['abort'], []],
  ];
  it.each(cases)('%s', async (_name, rate, steps, expected) => {
    const clock = new LateClock(() => 0);
    const limiter = createRateLimiter(rate, { clock });
    const answers: boolean[] = [];
    const waiting: Array<Promise<void>> = [];
    for (const step of steps) {
      if (step === 'now') answers.push(limiter.acquireNow());
      else if (step === 'acquire') waiting.push(limiter.acquire());
      else if (step === 'pause 50') limiter.pause(50);
      else if (step === 'run') await clock.run(Infinity);
      else if (step === 'abort') {
        const aborted = AbortSignal.abort(new Error('cancelled'));
        expect(limiter.acquireNow(aborted)).toBe(false);
        await expect(limiter.acquire(aborted)).rejects.toThrow('cancelled');
        expect(limiter.acquireNow()).toBe(true); // the aborted caller used no slot
      } else clock.advance(Number(step.split(' ')[1]));
    }
    expect(answers).toEqual(expected);
    await clock.run(Infinity);
    await Promise.all(waiting);
  });
});
