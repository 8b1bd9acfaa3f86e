import type { ChannelUser, StoredMember, WebhookEvent } from '../domain/types';

/** The body of a replayed webhook, shaped like the ones Channel Talk sends. */
export interface ReplayPayload {
  event: WebhookEvent;
  type: string;
  entity: Record<string, unknown>;
  refers: Record<string, unknown>;
}

/**
 * Channel Talk does not document the `type` of user webhooks; "user" is the natural reading, so callers
 * can override it from configuration.
 */
export const DEFAULT_ENTITY_TYPE = 'user';

/** An upsert carries the user exactly as the API returned it, unknown fields included. */
export function buildUpsertPayload(user: ChannelUser, entityType: string = DEFAULT_ENTITY_TYPE): ReplayPayload {
  return { event: 'upsert', type: entityType, entity: { ...user }, refers: {} };
}

/**
 * A delete for a unified user carries the user as fetched (Channel Talk still has it, merged into another).
 * After a 404 Channel Talk keeps nothing, so the entity is what the customer itself stored: the memberId
 * plus the compared fields that were not empty.
 */
export function buildDeletePayload(
  input: { user?: ChannelUser; stored: StoredMember },
  entityType: string = DEFAULT_ENTITY_TYPE,
): ReplayPayload {
  const entity = input.user ? { ...input.user } : entityFromStoredRow(input.stored);
  return { event: 'delete', type: entityType, entity, refers: {} };
}

function entityFromStoredRow(stored: StoredMember): Record<string, unknown> {
  const entity: Record<string, unknown> = { memberId: stored.memberId };
  if (stored.mobileNumber !== null) entity.mobileNumber = stored.mobileNumber;
  if (stored.email !== null) entity.email = stored.email;
  if (stored.unsubscribeEmail !== null) entity.unsubscribeEmail = stored.unsubscribeEmail;
  if (stored.unsubscribeTexting !== null) entity.unsubscribeTexting = stored.unsubscribeTexting;
  return entity;
}
