// Spaces Channel Talk requests evenly so a run stays under the channel's requests-per-second budget.
// Burst is 1 on purpose: Channel Talk's bucket is shared by every key of the channel (and by the customer's own
// traffic), so spending a saved-up burst could push other callers into 429s.

export interface RateLimiter {
  /** Resolves when the caller may start one request; rejects if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<void>;
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
  holdUntil(epochMs: number): void;
  /** Same as `holdUntil(Date.now() + ms)`. */
  pause(ms: number): void;
}

interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/**
 * One permit every 1000/R ms, first come first served: in any window of length T at most ceil(T*R)+1
 * requests start. `undefined`, 0 or Infinity means unlimited (only a hold delays a permit).
 */
export function createRateLimiter(ratePerSecond: number | undefined): SpacedRateLimiter {
  if (ratePerSecond !== undefined && (Number.isNaN(ratePerSecond) || ratePerSecond < 0)) {
    throw new RangeError(`ratePerSecond must be a non-negative number, got ${ratePerSecond}`);
  }
  const unlimited = ratePerSecond === undefined || ratePerSecond === 0 || ratePerSecond === Infinity;
  const intervalMs = unlimited ? 0 : 1000 / ratePerSecond;

  const queue: Waiter[] = [];
  // When the last permit was actually granted. Spacing from the real grant time (not the planned one) means a
  // late timer can only make us slower, never let two requests start closer than the interval.
  let lastGrantAt = -Infinity;
  let heldUntil = 0;
  let timer: NodeJS.Timeout | undefined;

  const nextDueAt = (): number => Math.max(lastGrantAt + intervalMs, heldUntil);

  function grant(waiter: Waiter, now: number): void {
    lastGrantAt = now;
    if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
    waiter.resolve();
  }

  function drain(): void {
    timer = undefined;
    let now = Date.now();
    while (queue.length > 0 && now >= nextDueAt()) {
      grant(queue.shift()!, now);
      now = Date.now();
    }
    schedule();
  }

  function schedule(): void {
    if (timer !== undefined || queue.length === 0) return;
    timer = setTimeout(drain, Math.max(0, nextDueAt() - Date.now()));
  }

  function reschedule(): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    schedule();
  }

  function holdUntil(epochMs: number): void {
    if (!(epochMs > heldUntil)) return;
    heldUntil = epochMs;
    reschedule();
  }

  return {
    ratePerSecond: unlimited ? Infinity : ratePerSecond,

    acquire(signal?: AbortSignal): Promise<void> {
      if (signal?.aborted) return Promise.reject(signal.reason);
      const now = Date.now();
      if (queue.length === 0 && now >= nextDueAt()) {
        lastGrantAt = now;
        return Promise.resolve();
      }
      return new Promise<void>((resolve, reject) => {
        const waiter: Waiter = { resolve, reject, signal };
        if (signal) {
          // An aborted waiter leaves the queue without using a slot, so the next caller is not delayed.
          waiter.onAbort = () => {
            const index = queue.indexOf(waiter);
            if (index >= 0) queue.splice(index, 1);
            if (index === 0) reschedule();
            reject(signal.reason);
          };
          signal.addEventListener('abort', waiter.onAbort, { once: true });
        }
        queue.push(waiter);
        schedule();
      });
    },

    holdUntil,
    pause: (ms: number) => holdUntil(Date.now() + ms),
  };
}
