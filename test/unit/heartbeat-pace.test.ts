import { describe, expect, it } from 'vitest';
import { HeartbeatPace, MAX_GAP_MS, MEMBERS_PER_HEARTBEAT, TICK_MS } from '../../activities/heartbeat-pace';

/** The ticks (seconds after the start) at which a batch doing `perSecond` members a second heartbeats. */
function beats(
  perSecond: number,
  heartbeatTimeoutMs: number | undefined,
  seconds: number,
  details?: (t: number) => string | undefined,
) {
  const pace = new HeartbeatPace(0, 0, heartbeatTimeoutMs);
  const at: number[] = [];
  for (let t = 1; t <= seconds; t++) if (pace.due(t * TICK_MS, Math.floor(perSecond * t), details?.(t))) at.push(t);
  return at;
}

describe('HeartbeatPace: a batch heartbeats as often as a pause and liveness need, not every tick', () => {
  it.each([
    // label, members/s of the batch, heartbeat timeout, expected heartbeats in 100 s
    ['full speed (1,000/s): every tick, so a pause stops the batch within a second', 1_000, 20_000, 100],
    ['100/s: every tick', 100, 20_000, 100],
    ['25/s (R=100 over 4 batches): every 4 s', 25, 20_000, 25],
    ['10/s (R=10, one batch), timeout 20 s: every 10 s (100 members)', 10, 20_000, 10],
    ['2.5/s, timeout 20 s: every 10 s (half the timeout)', 2.5, 20_000, 10],
    ['idle, timeout 20 s: every 10 s', 0, 20_000, 10],
    ['idle, timeout 3 s (the crash test): every tick, inside 1.5 s', 0, 3_000, 100],
    ['idle, timeout 600 s: every MAX_GAP_MS', 0, 600_000, 100 / (MAX_GAP_MS / 1000)],
    ['idle, no timeout: every MAX_GAP_MS', 0, undefined, 100 / (MAX_GAP_MS / 1000)],
  ])('%s', (_label, perSecond, timeout, expected) => {
    const at = beats(perSecond, timeout, 100);
    expect(at).toHaveLength(expected);
    // Never a gap longer than half the timeout (nor MAX_GAP_MS), the start counting as a beat.
    const gaps = at.map((t, i) => t - (i === 0 ? 0 : at[i - 1]!));
    expect(Math.max(...gaps) * 1000).toBeLessThanOrEqual(
      Math.min(MAX_GAP_MS, Math.max(TICK_MS, (timeout ?? Infinity) / 2)),
    );
  });

  it('heartbeats at once when what it reports changes, then paces again', () => {
    const at = beats(0, 20_000, 30, (t) => (t >= 3 && t < 7 ? 'store unavailable since 00:00:03' : undefined));
    expect(at).toEqual([3, 7, 17, 27]);
  });

  it('counts members from where the batch started (an attempt that resumes a partly recorded batch)', () => {
    const pace = new HeartbeatPace(0, 500, 20_000);
    expect(pace.due(TICK_MS, 500 + MEMBERS_PER_HEARTBEAT - 1)).toBe(false);
    expect(pace.due(2 * TICK_MS, 500 + MEMBERS_PER_HEARTBEAT)).toBe(true);
  });
});
