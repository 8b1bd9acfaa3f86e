// Telling "the customer's endpoint is down" from "the endpoint refuses this member". A replay that fails for one
// member (a 4xx, or a 5xx while other members get through) is that member's outcome and uses up its attempts. An
// endpoint that does not answer anyone (connections refused or reset, timeouts, 502/503/504 from a proxy in front
// of a restarting service) says nothing about the members: their replays wait for it without using up
// replayMaxAttempts (activities/replay-deferred.ts), and the run stops looking members up while it lasts.
import type { SendResult } from '../domain/types';

/** Statuses a gateway or load balancer answers with when the service behind it is not there. */
const UNAVAILABLE_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

/**
 * Distinct members whose replays must fail with an outage sign, with no answer from the endpoint in between,
 * before the endpoint counts as unavailable. One member failing again and again is a per-member problem.
 */
export const OUTAGE_MEMBERS = 3;

/**
 * Whether one send result is a sign that the endpoint itself is unavailable: no HTTP answer at all (refused,
 * reset, timed out: a retryable result without a status) or a 502/503/504. A 429 or 408 is an answer (the
 * endpoint is there and asks to slow down); a 500 is the endpoint's own verdict on that request.
 */
export function isOutageSign(result: SendResult): boolean {
  if (result.kind !== 'retryable') return false;
  return result.status === undefined || UNAVAILABLE_STATUSES.has(result.status);
}

/**
 * One worker's view of one endpoint, fed with every send result (batches and deferred replays alike): the
 * endpoint is unavailable from the first of an unbroken run of outage signs that spans OUTAGE_MEMBERS different
 * members; any other result (delivered, rejected, another status) ends it. Not persisted: a new worker learns
 * again within OUTAGE_MEMBERS sends.
 */
export class ReceiverHealth {
  private streakStart: number | undefined;
  private readonly streakMembers = new Set<string>();

  constructor(private readonly members = OUTAGE_MEMBERS) {}

  /** Feeds one send result for `member` (any stable key: member id or source line) at time `nowMs`. */
  observe(member: string, result: SendResult, nowMs: number): void {
    if (!isOutageSign(result)) {
      this.streakStart = undefined;
      this.streakMembers.clear();
      return;
    }
    this.streakStart ??= nowMs;
    this.streakMembers.add(member);
  }

  /** Since when (ms since the epoch) the endpoint has been unavailable; undefined while it is not. */
  unavailableSince(): number | undefined {
    return this.streakMembers.size >= this.members ? this.streakStart : undefined;
  }
}

/** The health of each sender a worker has (its WEBHOOK_URL, the channel's webhooks), created on first use. */
export function healthPerSender<S extends object>(): (sender: S) => ReceiverHealth {
  const bySender = new WeakMap<S, ReceiverHealth>();
  return (sender) => {
    let health = bySender.get(sender);
    if (!health) bySender.set(sender, (health = new ReceiverHealth()));
    return health;
  };
}
