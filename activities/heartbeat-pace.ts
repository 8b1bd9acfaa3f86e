// How often a batch heartbeats. A heartbeat that reaches Temporal is an action (what Temporal Cloud bills), and it is
// also how a pause (the workflow cancelling the batch) reaches a running batch, and how Temporal sees that the worker
// is alive. So a batch heartbeats when it has something to say or a reason to ask, not on every tick:
// - once MEMBERS_PER_HEARTBEAT members are done since the last one: at full speed that is every tick (a pause stops
//   the batch within a second, as before), under a budget of 10 lookups/s about every 10 s;
// - before half the heartbeat timeout passes without one (at most MAX_GAP_MS), so a live worker is never taken for
//   dead and a pause reaches even a slow batch within that gap;
// - when what it reports changes (the store became unavailable or came back);
// - at every tick for HURRY_MS after the workflow told this worker it paused (activities/pause-notices.ts), so that
//   the cancellation, which only a heartbeat's answer brings, reaches the batch within about a second.
// Pure: the batch calls `due` from its one-second tick (TICK_MS) and heartbeats when it answers true.

/** The batch's timer period: it flushes the audit log and may heartbeat at each tick. */
export const TICK_MS = 1_000;
/** Members done between two heartbeats at most (when a tick comes): a pause costs at most about this many lookups. */
export const MEMBERS_PER_HEARTBEAT = 100;
/** The longest gap between two heartbeats whatever the heartbeat timeout: how long a pause may take at a low rate. */
export const MAX_GAP_MS = 10_000;
/** How long a batch heartbeats at every tick after a pause notice: the cancellation may reach Temporal after it. */
export const HURRY_MS = 5_000;

/**
 * The longest gap between two heartbeats of an activity whose heartbeat timeout is `heartbeatTimeoutMs` (undefined:
 * none set): half of it, so one late heartbeat never times a live worker out, at most MAX_GAP_MS, at least a tick.
 */
export function heartbeatGapMs(heartbeatTimeoutMs: number | undefined): number {
  return Math.max(TICK_MS, Math.min(MAX_GAP_MS, (heartbeatTimeoutMs ?? Infinity) / 2));
}

export class HeartbeatPace {
  private lastBeatAt: number;
  private doneAtLastBeat: number;
  private detailsAtLastBeat: string | undefined;
  private readonly gapMs: number;
  private hurryUntil = -Infinity;

  /** `heartbeatTimeoutMs`: the activity's (undefined: none set, MAX_GAP_MS applies). */
  constructor(startedAt: number, done: number, heartbeatTimeoutMs: number | undefined) {
    this.lastBeatAt = startedAt;
    this.doneAtLastBeat = done;
    this.gapMs = heartbeatGapMs(heartbeatTimeoutMs);
  }

  /** Heartbeat at every tick until `now + HURRY_MS` (the workflow paused). */
  hurry(now: number): void {
    this.hurryUntil = now + HURRY_MS;
  }

  /** Whether to heartbeat now; when it answers true the caller heartbeats, and the pace counts from here. */
  due(now: number, done: number, details?: string): boolean {
    const beat =
      now <= this.hurryUntil ||
      done - this.doneAtLastBeat >= MEMBERS_PER_HEARTBEAT ||
      // The next tick would come after the gap: beat now, so no gap is ever longer than gapMs.
      now + TICK_MS - this.lastBeatAt > this.gapMs ||
      details !== this.detailsAtLastBeat;
    if (beat) {
      this.lastBeatAt = now;
      this.doneAtLastBeat = done;
      this.detailsAtLastBeat = details;
    }
    return beat;
  }
}
