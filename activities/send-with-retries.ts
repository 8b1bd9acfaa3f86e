import { setTimeout as sleep } from 'node:timers/promises';
import type { ComparedField, SendResult } from '../src/domain/types';
import type { ReplayPayload } from '../src/webhook/payload';
import { isOutageSign, type ReceiverHealth } from '../src/webhook/receiver-health';
import type { WebhookSender } from '../src/webhook/sender';

/** A few quick attempts inside the batch absorb blips; anything longer goes to a per-member activity. */
export const IN_BATCH_ATTEMPTS = 3;
const MAX_IN_BATCH_WAIT_MS = 2_000;

export async function sendWithRetries(
  target: WebhookSender,
  input: {
    webhookId: string;
    payload: ReplayPayload;
    fields?: readonly ComparedField[];
    signal: AbortSignal;
    /** This worker's view of the endpoint, told of every attempt, and the member's key in it. */
    health?: { of: ReceiverHealth; member: string; now: () => number };
    /**
     * Epoch ms after which the payload's lookup is too old to send again (REPLAY_RECHECK_AFTER_MS): the retries stop
     * there and the member goes to its replay activity, which looks it up again first (issue 23).
     */
    freshUntil?: number;
    now?: () => Date;
  },
  attempts = IN_BATCH_ATTEMPTS,
): Promise<SendResult> {
  let result: SendResult = { kind: 'retryable', reason: 'not attempted' };
  const now = input.now ?? (() => new Date());
  for (let attempt = 1; attempt <= attempts; attempt++) {
    input.signal.throwIfAborted();
    if (attempt > 1 && input.freshUntil !== undefined && now().getTime() > input.freshUntil) return result;
    // A POST once started is let finish (WEBHOOK_TIMEOUT_MS bounds it): aborting it on a pause could
    // leave a delivery the receiver accepted unrecorded, to be sent again after resume.
    result = await target.send({
      webhookId: input.webhookId,
      payload: input.payload,
      ...(input.fields ? { fields: input.fields } : {}),
    });
    const health = input.health;
    health?.of.observe(health.member, result, health.now());
    if (result.kind !== 'retryable') return result;
    // The endpoint answers nobody: more quick attempts would only delay handing the replay over to wait.
    if (isOutageSign(result) && health?.of.unavailableSince() !== undefined) return result;
    if (attempt < attempts) {
      const backoff = 250 * 2 ** (attempt - 1);
      const wait = Math.min(result.retryAfterMs ?? backoff, MAX_IN_BATCH_WAIT_MS);
      await sleep(wait, undefined, { signal: input.signal });
    }
  }
  return result;
}
