// One request's deadline: a signal for undici's `request` that aborts when the timeout (headers and body together)
// passes or when the caller's signal aborts, whichever comes first. Whether it was the timeout is kept, so the
// caller can tell "timed out" (retry) from "cancelled" (its own abort reason) from a network error.
//
// The signal is an EventEmitter with `aborted` and `reason`, which undici's `request` takes as it takes an
// AbortSignal (its `signal` option: "AbortSignal | EventEmitter"; it listens with `once('abort')` and reads
// `reason`). An AbortController and its listener cost about 4 µs of CPU per request on this machine against 0.1 µs
// for an EventEmitter: 116 ms of a 20,000-member run (29,000 requests), 6 s of a million's (BENCHMARKS.md).
//
// Deadlines of one length share one timer (`ExpiryQueue`): they pass in the order they were set, so a queue in that
// order and a timer for its first deadline still running do what a timer per request did, without a Timeout object
// per request (each one an async resource that AsyncLocalStorage, active in a Temporal worker, hooks into).
import { EventEmitter } from 'node:events';
import { whenAborted } from '../abort-fanout';

/** What a deadline hands to undici's `request` as its `signal`. */
export interface DeadlineSignal extends EventEmitter {
  readonly aborted: boolean;
  readonly reason: unknown;
}

export interface RequestDeadline {
  readonly signal: DeadlineSignal;
  readonly timedOut: boolean;
  /** Stops the timer and the watch on the caller's signal; call once the response is read. */
  clear(): void;
}

/** Where the queue reads the time and sets its timer: the process's monotonic clock and setTimeout, unless a test says. */
export interface ExpiryClock {
  now(): number;
  setTimer(callback: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

/** Node's timers wait at most 2³¹-1 ms (about 24.8 days); a longer wait would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const systemClock: ExpiryClock = {
  now: () => performance.now(),
  setTimer: (callback, ms) => setTimeout(callback, ms),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Deadlines of one length, each expired (`expire()` called) once `ms` have passed since it was added, unless removed
 * first. Added in time order, they are due in that order: the timer is only ever set for the first one still held,
 * and none is held once every deadline is removed or expired (nothing keeps the process alive then).
 */
export class ExpiryQueue {
  // Parallel arrays from `start` on, in the order added; a removed or expired entry's item is undefined.
  private items: Array<{ expire(): void } | undefined> = [];
  private dues: number[] = [];
  private start = 0;
  /** The sequence number of items[0]: an entry's handle stays valid as the arrays are compacted. */
  private base = 0;
  private timer: unknown;
  private firing = false;

  constructor(
    private readonly ms: number,
    private readonly clock: ExpiryClock = systemClock,
  ) {}

  /** Holds `item` until it is due, then calls its `expire()`; the handle is for `remove`. */
  add(item: { expire(): void }): number {
    this.items.push(item);
    this.dues.push(this.clock.now() + this.ms);
    if (this.timer === undefined && !this.firing) this.timer = this.clock.setTimer(this.fire, this.ms);
    return this.base + this.items.length - 1;
  }

  /** Forgets an entry that has not expired (its request ended first). */
  remove(handle: number): void {
    this.items[handle - this.base] = undefined;
    if (this.firing) return;
    this.dropRemoved();
    if (this.start === this.items.length && this.timer !== undefined) {
      this.clock.clearTimer(this.timer);
      this.timer = undefined;
    }
  }

  /** Entries held (not removed, not expired): for tests. */
  get size(): number {
    let held = 0;
    for (let i = this.start; i < this.items.length; i++) if (this.items[i] !== undefined) held += 1;
    return held;
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.firing = true;
    const now = this.clock.now();
    try {
      for (; this.start < this.items.length; this.start++) {
        const item = this.items[this.start];
        if (item === undefined) continue;
        if (this.dues[this.start]! > now) break;
        this.items[this.start] = undefined;
        item.expire();
      }
    } finally {
      this.firing = false;
      this.dropRemoved();
      // Due in a fraction of a millisecond is due in one: the timer's resolution.
      if (this.start < this.items.length) {
        const wait = Math.min(Math.max(1, Math.ceil(this.dues[this.start]! - now)), MAX_TIMER_MS);
        this.timer = this.clock.setTimer(this.fire, wait);
      }
    }
  };

  /** Moves past removed entries at the front; compacts the arrays once the front is all behind. */
  private dropRemoved(): void {
    while (this.start < this.items.length && this.items[this.start] === undefined) this.start++;
    if (this.start === this.items.length) {
      this.base += this.start;
      this.items.length = 0;
      this.dues.length = 0;
      this.start = 0;
    } else if (this.start > 1024 && this.start * 2 > this.items.length) {
      this.base += this.start;
      this.items = this.items.slice(this.start);
      this.dues = this.dues.slice(this.start);
      this.start = 0;
    }
  }
}

class Deadline extends EventEmitter implements RequestDeadline, DeadlineSignal {
  private readonly handle: number;
  private settled = false;
  timedOut = false;
  aborted = false;
  reason: unknown = undefined;

  private readonly stopWatching: (() => void) | undefined;

  constructor(
    private readonly queue: ExpiryQueue,
    callerSignal: AbortSignal | undefined,
  ) {
    super();
    this.handle = queue.add(this);
    if (callerSignal) this.stopWatching = whenAborted(callerSignal, () => this.abort(callerSignal.reason));
  }

  get signal(): DeadlineSignal {
    return this;
  }

  /** The queue's call when the timeout passes. */
  expire(): void {
    this.settled = true;
    this.timedOut = true;
    this.abort(new Error('request timed out'));
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }

  clear(): void {
    if (!this.settled) {
      this.settled = true;
      this.queue.remove(this.handle);
    }
    this.stopWatching?.();
  }
}

/** One queue per deadline length in use (a client's and a sender's timeouts: a few at most). */
const queues = new Map<number, ExpiryQueue>();

export function requestDeadline(timeoutMs: number, callerSignal: AbortSignal | undefined): RequestDeadline {
  let queue = queues.get(timeoutMs);
  if (!queue) {
    queue = new ExpiryQueue(timeoutMs);
    queues.set(timeoutMs, queue);
  }
  return new Deadline(queue, callerSignal);
}
