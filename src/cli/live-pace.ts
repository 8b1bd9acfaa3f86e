// The lookup rate now, live: the workflow hears of the channel's rate limit only when a batch ends, but every
// running batch's heartbeat carries its worker's pace (activities/batch-run.ts, BatchHeartbeat; a batch heartbeats
// every 100 members done and at most 10 s apart, activities/heartbeat-pace.ts), and
// Temporal keeps each pending activity's last heartbeat. `status` reads them from the workflow's description, as
// the Web UI shows them with each pending activity.
import { z } from 'zod';
import type { ChannelPace, LivePace } from '../../workflows/definitions';

/**
 * A heartbeat older than this says nothing about now (a worker gone): a running batch heartbeats at most 10 s apart
 * (MAX_GAP_MS in activities/heartbeat-pace.ts), and the answer takes a moment to reach `status`.
 */
export const LIVE_PACE_MAX_AGE_MS = 15_000;

const livePaceSchema = z.object({
  pacer: z.string(),
  ratePerSecond: z.number().nonnegative(),
  limit: z.number().nullable(),
  remaining: z.number().nullable(),
  givingWay: z.boolean(),
});
const heartbeatSchema = z.object({ pace: livePaceSchema });

/** One pending batch's last heartbeat: when the server got it, and its details as decoded. */
export interface BatchBeat {
  at: number;
  details: unknown;
}

export type LiveView = Pick<ChannelPace, 'ratePerSecond' | 'limit' | 'remaining' | 'givingWay'>;

/**
 * The run's pace now from its running batches' last heartbeats: the rate summed over workers (batches on one worker
 * share its pacer and report the same rate, so each pacer counts once, by its latest beat), the limit and remaining
 * as the latest beat saw them, giving way when any worker is. Undefined when no fresh beat carries a pace.
 */
export function livePaceOf(beats: readonly BatchBeat[], now: number): LiveView | undefined {
  const latest = new Map<string, { at: number; pace: LivePace }>();
  for (const beat of beats) {
    if (now - beat.at > LIVE_PACE_MAX_AGE_MS) continue;
    const parsed = heartbeatSchema.safeParse(beat.details);
    if (!parsed.success) continue;
    const { pace } = parsed.data;
    const known = latest.get(pace.pacer);
    if (!known || known.at < beat.at) latest.set(pace.pacer, { at: beat.at, pace });
  }
  if (latest.size === 0) return undefined;
  const newest = [...latest.values()].reduce((a, b) => (b.at > a.at ? b : a));
  let ratePerSecond = 0;
  for (const { pace } of latest.values()) ratePerSecond += pace.ratePerSecond;
  return {
    ratePerSecond: Math.round(ratePerSecond * 10) / 10,
    limit: newest.pace.limit,
    remaining: newest.pace.remaining,
    givingWay: [...latest.values()].some(({ pace }) => pace.givingWay),
  };
}

/** The run's rate-limit view with the live part laid over what the workflow knows (its totals stay). */
export function withLivePace(known: ChannelPace | undefined, live: LiveView | undefined): ChannelPace | undefined {
  if (!live) return known;
  return { rateLimited: 0, warnings: 0, waitedMs: 0, ...known, ...live };
}
