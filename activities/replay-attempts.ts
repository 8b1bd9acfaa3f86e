// A deferred replay's attempt number, as Temporal counts it, includes attempts that a worker refused before
// sending anything (no WEBHOOK_URL, the run's pending store not on its disk), and attempts made while the endpoint
// is down for every member (src/webhook/receiver-health.ts). Neither says anything about the member, so they must
// not use up replayMaxAttempts: in a fleet with one misconfigured worker a member would otherwise give
// up after fewer real deliveries than configured. A refusing attempt counts itself in the activity's heartbeat
// details, which Temporal keeps and hands to every later attempt of the same activity.
import { Context } from '@temporalio/activity';
import { z } from 'zod';

const detailsSchema = z.object({ refused: z.number().int().nonnegative() });

/** Attempts refused so far, from the heartbeat details a replay attempt starts with (anything else: none). */
export function refusedAttempts(details: unknown): number {
  const parsed = detailsSchema.safeParse(details);
  return parsed.success ? parsed.data.refused : 0;
}

/** The heartbeat details a refusing attempt leaves for the next one. */
export function afterRefusal(details: unknown): { refused: number } {
  return { refused: refusedAttempts(details) + 1 };
}

/** Counts the current attempt, which refuses before sending, in its heartbeat details for the next attempt. */
export function recordRefusal(): void {
  const context = Context.current();
  context.heartbeat(afterRefusal(context.info.heartbeatDetails));
}

/** This attempt's number among the attempts that could send (1 for the first of them). */
export function deliveryAttempt(attempt: number, details: unknown): number {
  return Math.max(1, attempt - refusedAttempts(details));
}
