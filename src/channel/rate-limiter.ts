// Spaces Channel Talk requests evenly so a run stays under the channel's requests-per-second budget.
// Burst is 1 on purpose: Channel Talk's bucket is shared by every key of the channel (and by the customer's own
// traffic), so spending a saved-up burst could push other callers into 429s.
//
// Permits follow a schedule of slots one interval (1000/R ms) apart, and each slot is planned from the previous
// *slot*, not from the moment the previous permit was actually granted: a timer that fires late (a busy event
// loop, millisecond timer granularity) then costs nothing, because the next slot stays where it was. Spacing from
// the actual grant time instead loses every timer's lateness for good (measured with 16 waiters on the shared
// 2-core machine, load 2-4: 95-97% of 100/s, 91-94% of 200/s, 71-83% of 1000/s; this way 100%, 99.5-99.9%, 87-97%).
//
// Two rules keep that from turning into bursts:
// - Bounded catch-up: a late permit may pull the schedule forward by at most one interval, so a timer that is
//   very late grants at most two permits at once and drops the rest of its lateness.
// - Re-base after idling or a hold: a caller arriving at an idle limiter (more than one interval past the
//   planned slot, nobody waiting) or the first permit after a hold (`holdUntil`/`pause`, after a 429) starts a
//   new schedule at that moment; nothing is "saved up" while nobody asks.
// Formally this is GCRA (virtual scheduling) with a tolerance of one interval, whose well-known bound gives:
// in any window [t, t+T) at most ceil(T*R)+1 permits start, and over any long run at most R per second.

import { whenAborted } from '../abort-fanout';

export interface RateLimiter {
  /** Resolves when the caller may start one request; rejects if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<void>;
  /**
   * Takes the permit `acquire` would grant without waiting, when there is one: true. False, with nothing taken, when
   * the caller would wait (or `signal` has aborted): it then calls `acquire`. A lookup that is let through at once
   * (most are) so costs no promise: with AsyncLocalStorage active, as in a Temporal worker, every promise pays an
   * async hook. Optional: other implementations need only `acquire`.
   */
  acquireNow?(signal?: AbortSignal): boolean;
  /** Permits per second; Infinity when unlimited. */
  readonly ratePerSecond: number;
  /**
   * Grant no permit before `epochMs` (used after a 429). Optional so that other limiter implementations
   * (e.g. one shared across workers) stay compatible with the client.
   */
  holdUntil?(epochMs: number): void;
}

/** The in-process limiter: always supports holding after a 429. */
export interface SpacedRateLimiter extends RateLimiter {
  acquireNow(signal?: AbortSignal): boolean;
  holdUntil(epochMs: number): void;
  /** Same as `holdUntil(Date.now() + ms)`. */
  pause(ms: number): void;
  /**
   * Changes the rate from the next permit on (src/channel/channel-pacer.ts follows the channel's headers with it):
   * the next permit comes one new interval after the last one; a hold stays. Same values as `createRateLimiter`.
   */
  setRate(ratePerSecond: number | undefined): void;
}

/**
 * Where the limiter reads the time and sets its timer. The default is the process's monotonic clock
 * (`performance.now()`, so a wall-clock step cannot stall the limiter) and `setTimeout`; tests pass a
 * simulated clock to check the guarantee under timers that fire late by chosen amounts.
 */
export interface LimiterClock {
  /** Milliseconds on a monotonic scale. */
  now(): number;
  /** Epoch milliseconds now (to convert `holdUntil`'s epoch time to the monotonic scale). */
  epochNow(): number;
  setTimer(callback: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

const systemClock: LimiterClock = {
  now: () => performance.now(),
  epochNow: () => Date.now(),
  setTimer: (callback, ms) => setTimeout(callback, ms),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal?: AbortSignal;
  /** Stops listening for the signal's abort (src/abort-fanout.ts). */
  stopWatching?: () => void;
}

/**
 * About R permits per second, first come first served: in any window of length T at most ceil(T*R)+1 requests
 * start, and a limiter that was idle grants its next permits one interval apart (no burst). `undefined`, 0 or
 * Infinity means unlimited (only a hold delays a permit).
 */
export function createRateLimiter(
  ratePerSecond: number | undefined,
  options: { clock?: LimiterClock } = {},
): SpacedRateLimiter {
  checkRate(ratePerSecond);
  const clock = options.clock ?? systemClock;
  let unlimited = isUnlimited(ratePerSecond);
  let intervalMs = unlimited ? 0 : 1000 / ratePerSecond!;

  const queue: Waiter[] = [];
  // The next planned slot (clock.now() scale): no permit is granted before it.
  let due = -Infinity;
  // Set by a hold: the first permit after it starts a new schedule instead of catching up.
  let rebase = false;
  let timer: unknown;

  /** Moves the schedule past a permit granted at `now`; `idle` when nobody was waiting for it. */
  function advance(now: number, idle: boolean): void {
    if (rebase || (idle && now > due + intervalMs)) due = now + intervalMs;
    // Late by at most one interval: keep the planned slot. Later than that: catch up by one interval only.
    else due = Math.max(due, now - intervalMs) + intervalMs;
    rebase = false;
  }

  function grant(waiter: Waiter, now: number): void {
    advance(now, false);
    waiter.stopWatching?.();
    waiter.resolve();
  }

  function drain(): void {
    timer = undefined;
    let now = clock.now();
    while (queue.length > 0 && now >= due) {
      grant(queue.shift()!, now);
      now = clock.now();
    }
    schedule();
  }

  function schedule(): void {
    if (timer !== undefined || queue.length === 0) return;
    timer = clock.setTimer(drain, Math.max(0, due - clock.now()));
  }

  function reschedule(): void {
    if (timer !== undefined) clock.clearTimer(timer);
    timer = undefined;
    schedule();
  }

  /** A permit at once, when nobody waits and its slot has come. */
  function acquireNow(signal?: AbortSignal): boolean {
    if (signal?.aborted) return false;
    const now = clock.now();
    if (queue.length > 0 || now < due) return false;
    advance(now, true);
    return true;
  }

  function holdUntil(epochMs: number): void {
    const until = clock.now() + (epochMs - clock.epochNow());
    if (!(until > due)) return; // also ignores NaN; a hold never shortens the current one
    due = until;
    rebase = true;
    reschedule();
  }

  return {
    get ratePerSecond() {
      return unlimited ? Infinity : 1000 / intervalMs;
    },

    setRate(next: number | undefined): void {
      checkRate(next);
      const previousMs = intervalMs;
      unlimited = isUnlimited(next);
      intervalMs = unlimited ? 0 : 1000 / next!;
      // The planned slot was one old interval after the last permit: it becomes one new interval after it (closer
      // or further); a hold stays as it is.
      if (!rebase && Number.isFinite(due)) due += intervalMs - previousMs;
      reschedule();
    },

    acquireNow,

    acquire(signal?: AbortSignal): Promise<void> {
      if (signal?.aborted) return Promise.reject(signal.reason);
      if (acquireNow(signal)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const waiter: Waiter = { resolve, reject, signal };
        if (signal) {
          // An aborted waiter leaves the queue without using a slot (the schedule only moves when a permit is
          // granted), so the next caller is not delayed.
          waiter.stopWatching = whenAborted(signal, () => {
            const index = queue.indexOf(waiter);
            if (index >= 0) queue.splice(index, 1);
            if (index === 0) reschedule();
            reject(signal.reason);
          });
        }
        queue.push(waiter);
        schedule();
      });
    },

    holdUntil,
    pause: (ms: number) => holdUntil(clock.epochNow() + ms),
  };
}

function checkRate(ratePerSecond: number | undefined): void {
  if (ratePerSecond !== undefined && (Number.isNaN(ratePerSecond) || ratePerSecond < 0)) {
    throw new RangeError(`ratePerSecond must be a non-negative number, got ${ratePerSecond}`);
  }
}

function isUnlimited(ratePerSecond: number | undefined): boolean {
  return ratePerSecond === undefined || ratePerSecond === 0 || ratePerSecond === Infinity;
}
