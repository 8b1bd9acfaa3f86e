// How one member's decision becomes the deliveries one endpoint receives. Pure: table-tested.
//
// Two namings of the body's `event` (WEBHOOK_EVENT_NAMES), because Channel Talk has not confirmed which its user
// webhooks carry (docs/channel-talk-unconfirmed.md):
// - `notice` (the default): what the incident notice says, `upsert` / `delete` (or WEBHOOK_EVENT_UPSERT / _DELETE).
//   One delivery per endpoint, whichever of its scopes the change falls under: exactly what the job sent before
//   scopes existed, with the same webhook-id.
// - `scopes`: the scope Channel Talk sends the change under, as its own n8n trigger node registers and filters them
//   (`member.upserted.contact`, `member.upserted.subscription`, `member.deleted`). One delivery per scope the
//   endpoint subscribes to, each with its own webhook-id: a change of contact and consent is two deliveries at an
//   endpoint subscribed to both, one at an endpoint subscribed to one of them.
import type { ScopeDelivery, WebhookEvent } from '../domain/types';
import {
  ALL_SCOPES,
  CONTACT_SCOPE,
  DELETE_SCOPE,
  SUBSCRIPTION_SCOPE,
  scopesForChange,
  type MemberChange,
} from './routing';
import { scopedWebhookId } from './webhook-id';

export const EVENT_NAMINGS = ['notice', 'scopes'] as const;
export type EventNaming = (typeof EVENT_NAMINGS)[number];

/** The member scopes a replay can fall under: what a WEBHOOK_URL endpoint stands for unless told otherwise. */
export const MEMBER_SCOPES: readonly string[] = [CONTACT_SCOPE, SUBSCRIPTION_SCOPE, DELETE_SCOPE];

/** The body's `event` per notice event (WEBHOOK_EVENT_UPSERT / WEBHOOK_EVENT_DELETE); unset: `upsert` / `delete`. */
export type WebhookEventNames = Partial<Record<WebhookEvent, string>>;

export interface EventNamingRule {
  naming: EventNaming;
  /** Notice naming only. */
  noticeNames?: WebhookEventNames;
}

export const NOTICE_NAMING: EventNamingRule = { naming: 'notice' };

/** One POST of one member's replay to one endpoint. */
export interface Delivery {
  /** The body's `event`. */
  event: string;
  /** The scopes of the change it stands for (notice naming: possibly two; scopes naming: exactly its own). */
  scopes: string[];
  /**
   * What its webhook-id is keyed on besides the member's own id: absent for the notice naming (the member's
   * webhook-id itself, as before), the scope for the scopes naming.
   */
  idScope?: string;
}

/** Whether an endpoint subscribed to `subscribed` receives changes under `scope` (`*`: everything). */
export function subscribesTo(subscribed: readonly string[], scope: string): boolean {
  return subscribed.some((s) => s === ALL_SCOPES || s === scope);
}

/**
 * The deliveries an endpoint subscribed to `subscribed` gets for `change`, in scope order (contact, subscription,
 * delete). Empty when it subscribes to none of the change's scopes.
 */
export function deliveriesFor(
  change: MemberChange,
  subscribed: readonly string[],
  rule: EventNamingRule = NOTICE_NAMING,
): Delivery[] {
  const scopes = scopesForChange(change).filter((s) => subscribesTo(subscribed, s));
  if (scopes.length === 0) return [];
  if (rule.naming === 'scopes') return scopes.map((scope) => ({ event: scope, scopes: [scope], idScope: scope }));
  return [{ event: rule.noticeNames?.[change.event] ?? change.event, scopes }];
}

/** The webhook-id a delivery carries, from the member's (stable per run label, member and event). */
export function deliveryWebhookId(memberWebhookId: string, delivery: Pick<Delivery, 'idScope'>): string {
  return delivery.idScope === undefined ? memberWebhookId : scopedWebhookId(memberWebhookId, delivery.idScope);
}

/**
 * The deliveries of one member across its endpoints, one line per event, in first-seen order; undefined for the
 * notice naming (its single delivery per endpoint is the entry's own `event` and `webhookId`, as before).
 */
export function scopeDeliveries(
  memberWebhookId: string,
  perEndpoint: readonly Delivery[][],
  rule: EventNamingRule,
): ScopeDelivery[] | undefined {
  if (rule.naming !== 'scopes') return undefined;
  const byEvent = new Map<string, ScopeDelivery>();
  for (const d of perEndpoint.flat()) {
    const known = byEvent.get(d.event);
    if (known) known.endpoints += 1;
    else byEvent.set(d.event, { event: d.event, webhookId: deliveryWebhookId(memberWebhookId, d), endpoints: 1 });
  }
  return [...byEvent.values()];
}
