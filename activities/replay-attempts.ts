// A deferred replay's attempt number, as Temporal counts it, includes attempts that a worker refused before
// sending anything (no WEBHOOK_URL, the run's pending store not on its disk), and attempts made while the endpoint
// is down for every member (src/webhook/receiver-health.ts). Neither says anything about the member, so they must
// not use up replayMaxAttempts: in a fleet with one misconfigured worker a member would otherwise give
// up after fewer real deliveries than configured. A refusing attempt counts itself in the activity's heartbeat
// details, which Temporal keeps and hands to every later attempt of the same activity.
import { Context } from '@temporalio/activity';
import { z } from 'zod';
import type { AuditEntry } from '../src/audit/audit-entry';
import { asAuditRecord } from '../src/audit/audit-store';
import { heartbeatGapMs } from './heartbeat-pace';

const detailsSchema = z.object({ refused: z.number().int().nonnegative() });

/** Attempts refused so far, from the heartbeat details a replay attempt starts with (anything else: none). */
export function refusedAttempts(details: unknown): number {
  const parsed = detailsSchema.safeParse(details);
  return parsed.success ? parsed.data.refused : 0;
}

/**
 * The heartbeat details a refusing attempt leaves for the next one: one more refusal, and the replay an earlier
 * attempt sent and could not record (keepSent) still kept, or the next attempt would send it again.
 */
export function afterRefusal(details: unknown): { refused: number; sent?: unknown } {
  const sent = typeof details === 'object' && details !== null && 'sent' in details ? details.sent : undefined;
  return { refused: refusedAttempts(details) + 1, ...(sent !== undefined ? { sent } : {}) };
}

/** The details each running attempt heartbeated last (keepReplayAlive repeats them). */
const lastDetails = new WeakMap<Context, unknown>();

/** Heartbeats `details`, which the next attempt starts with should this one end without another heartbeat. */
function heartbeatWith(context: Context, details: unknown): void {
  lastDetails.set(context, details);
  context.heartbeat(details);
}

/**
 * Keeps a replay attempt heartbeating while it waits (on the rate limiter of its lookup again, a store that is away, a
 * slow receiver), when its activity has a heartbeat timeout: a worker that dies mid-replay is then found within that
 * timeout, not at the end of the attempt's (replayAttemptTimeoutSeconds), and the replay is tried again elsewhere.
 * Every beat repeats the details this attempt heartbeated last, else those it started with: Temporal keeps only the
 * last ones, and the refusals counted and a sent replay kept (keepSent) must reach the next attempt. Returns the stop.
 */
export function keepReplayAlive(): () => void {
  const context = Context.current();
  const timeoutMs = context.info.heartbeatTimeoutMs;
  if (!timeoutMs) return () => undefined; // scheduled without one (runs recorded before): nothing waits on it
  const beat = () =>
    context.heartbeat(lastDetails.has(context) ? lastDetails.get(context) : context.info.heartbeatDetails);
  const timer = setInterval(beat, heartbeatGapMs(timeoutMs));
  return () => clearInterval(timer);
}

/** Counts the current attempt, which refuses before sending, in its heartbeat details for the next attempt. */
export function recordRefusal(): void {
  const context = Context.current();
  heartbeatWith(context, afterRefusal(context.info.heartbeatDetails));
}

/** This attempt's number among the attempts that could send (1 for the first of them). */
export function deliveryAttempt(attempt: number, details: unknown): number {
  return Math.max(1, attempt - refusedAttempts(details));
}

/**
 * A replay sent, whose outcome this attempt must record before it settles: kept in the heartbeat details (with the
 * refusals counted so far) so that, if the attempt cannot record it (the store away past its attempt
 * timeout, replayAttemptTimeoutSeconds; the worker gone), the next attempt records that outcome instead of sending the replay again. The entry
 * is the audit record itself: field names, ids and statuses, no personal data (activities/replay-deferred.ts).
 */
export function keepSent(entry: AuditEntry): void {
  const context = Context.current();
  heartbeatWith(context, { refused: refusedAttempts(context.info.heartbeatDetails), sent: entry });
}

/** The outcome an earlier attempt sent and could not record (keepSent), for `line`; undefined when there is none. */
export function sentBefore(details: unknown, line: number): AuditEntry | undefined {
  if (typeof details !== 'object' || details === null || !('sent' in details)) return undefined;
  const entry = asAuditRecord((details as { sent: unknown }).sent);
  return entry?.line === line ? entry : undefined;
}
