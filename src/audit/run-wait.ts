import { z } from 'zod';

/**
 * A time the run waited for the customer's side (issue 28), kept in the audit log beside the outcomes so that the
 * report shows it after the workflow is gone (a report handed on, a run past Temporal's retention):
 * - `receiver-unavailable`: the webhook endpoint answered nobody (src/webhook/receiver-health.ts); recorded by the
 *   workflow when the outage ends (the endpoint answered, the run paused itself past receiverOutagePauseSeconds,
 *   or someone resumed a run paused during it), with what waited: the replays held back and the batches not
 *   started.
 * - `store-unavailable`: the audit or pending store could not take a write (activities/store-outage.ts); recorded
 *   by the batch or replay that waited, once the store took its writes again.
 * Times, counts and numbers only: no member data. In a JSONL log one line `{"wait":{...}}`; in PostgreSQL a row of
 * `<audit table>_waits`. Recorded at least once (an activity may be retried): `waitKey` names a wait, and readers
 * keep one per key.
 */
export const runWaitSchema = z.object({
  kind: z.enum(['receiver-unavailable', 'store-unavailable']),
  /** When the wait began and ended (ISO 8601, UTC). */
  since: z.string().min(1),
  until: z.string().min(1),
  /**
   * How it ended: `answered` (the endpoint took a replay), `paused` (the run paused itself past
   * receiverOutagePauseSeconds), `resumed` (a resume of a run paused during it tried the endpoint afresh),
   * `nothing-waiting` (no replay was left to probe it: the next batches try it), `back` (the store took the write).
   */
  ended: z.enum(['answered', 'paused', 'resumed', 'nothing-waiting', 'back']),
  /** receiver: replays waiting for the endpoint when it ended. */
  waitingReplays: z.number().int().nonnegative().optional(),
  /** receiver: batches not done when it ended (none started while it lasted). */
  batchesLeft: z.number().int().nonnegative().optional(),
  /** store: the batch (0-based) that waited, or the source line of the replay that waited. */
  batch: z.number().int().nonnegative().optional(),
  line: z.number().int().positive().optional(),
});

export type RunWait = z.infer<typeof runWaitSchema>;
export type RunWaitKind = RunWait['kind'];

/** One wait's identity: the same wait recorded twice (a retried activity) has the same key. */
export function waitKey(w: RunWait): string {
  const who = w.batch !== undefined ? `batch ${w.batch}` : w.line !== undefined ? `line ${w.line}` : 'run';
  return `${w.kind} ${who} ${w.since}`;
}

/** A stored wait as the schema reads it (unknown keys dropped), or undefined. */
export function asRunWait(value: unknown): RunWait | undefined {
  const parsed = runWaitSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/** The wait's JSONL line (without its line feed). */
export const runWaitLine = (wait: RunWait): string => JSON.stringify({ wait });

/** A JSONL line as a wait (`{"wait":{...}}`, nothing else beside it), or undefined for any other line. */
export function parseRunWaitLine(text: string): RunWait | undefined {
  if (!text.startsWith('{"wait":')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Object.keys(value).length !== 1) return undefined;
  return asRunWait((value as { wait: unknown }).wait);
}

/** At most this many waits are kept by a reader: a log holds a handful; more is a log gone wrong, not a report. */
export const MAX_WAITS_READ = 10_000;

/** Adds a read wait to `waits` unless one with its key is there (first wins) or the list is full. */
export function keepWait(waits: RunWait[], seen: Set<string>, wait: RunWait): void {
  const key = waitKey(wait);
  if (seen.has(key) || waits.length >= MAX_WAITS_READ) return;
  seen.add(key);
  waits.push(wait);
}
