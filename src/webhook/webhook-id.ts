import { hash } from 'node:crypto';
import type { WebhookEvent } from '../domain/types';

/**
 * The id sent as the `webhook-id` header of a replayed webhook.
 *
 * It is derived only from (run, member, event) so that every attempt, worker restart and re-run of the
 * same replay carries the same id: a receiver that deduplicates on `webhook-id` sees retries as one
 * delivery. The inputs are JSON-array encoded before hashing so that no two different input triples can
 * produce the same hashed text (('a','bc') and ('ab','c') stay distinct).
 */
export function webhookId(runLabel: string, memberId: string, event: WebhookEvent): string {
  const encoded = JSON.stringify([runLabel, memberId, event]);
  const digest = hash('sha256', encoded, 'hex'); // one-shot: no Hash object per id
  // 128 bits is ample for uniqueness and keeps the Standard-Webhooks-style `msg_` id short.
  return `msg_${digest.slice(0, 32)}`;
}

/** The shape every id produced by `webhookId` has. */
export const WEBHOOK_ID_PATTERN = /^msg_[0-9a-f]{32}$/;

/**
 * The id of one scope's delivery of a member's replay (WEBHOOK_EVENT_NAMES=scopes): derived from the member's id
 * (`webhookId`), so it is as stable as that one across attempts, restarts and re-runs with the same run label, and
 * differs per scope, so a receiver deduplicating on `webhook-id` keeps a contact change and a consent change apart.
 */
export function scopedWebhookId(memberWebhookId: string, scope: string): string {
  const digest = hash('sha256', JSON.stringify([memberWebhookId, scope]), 'hex');
  return `msg_${digest.slice(0, 32)}`;
}
