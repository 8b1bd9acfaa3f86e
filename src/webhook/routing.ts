// Which registered webhooks one member's replay goes to, as Channel Talk itself routes user changes (OpenAPI
// `webhook.Webhook.scopes`): contact changes (email, mobile number) only to `member.upserted.contact`
// subscribers, marketing-consent changes only to `member.upserted.subscription` subscribers, a change of both
// kinds to the union (once per webhook), deletes to `member.deleted` subscribers. Pure: table-tested.
import type { ChannelWebhook } from '../channel/webhooks';
import type { ComparedField, WebhookEvent, WebhookRoute } from '../domain/types';

export const CONTACT_SCOPE = 'member.upserted.contact';
export const SUBSCRIPTION_SCOPE = 'member.upserted.subscription';
export const DELETE_SCOPE = 'member.deleted';
/** Channel Talk's n8n node documents `["*"]` as "all events". */
export const ALL_SCOPES = '*';
/** The apiVersion whose bodies this job builds (a v4 user has `unsubscribed`, no `unsubscribeEmail`). */
export const BODY_API_VERSION = 'v5';

const SCOPE_OF_FIELD: Record<ComparedField, string> = {
  email: CONTACT_SCOPE,
  mobileNumber: CONTACT_SCOPE,
  unsubscribeEmail: SUBSCRIPTION_SCOPE,
  unsubscribeTexting: SUBSCRIPTION_SCOPE,
};

export interface MemberChange {
  event: WebhookEvent;
  /**
   * An upsert's differing fields. Absent: the caller does not know them (a replay recorded before routing
   * existed), and the upsert goes to both upsert scopes, as it did then.
   */
  fields?: readonly ComparedField[];
}

/** The scopes a change is delivered under, in a fixed order. */
export function scopesForChange(change: MemberChange): string[] {
  if (change.event === 'delete') return [DELETE_SCOPE];
  if (change.fields === undefined) return [CONTACT_SCOPE, SUBSCRIPTION_SCOPE];
  const wanted = new Set(change.fields.map((f) => SCOPE_OF_FIELD[f]));
  return [CONTACT_SCOPE, SUBSCRIPTION_SCOPE].filter((s) => wanted.has(s));
}

export function isV5(w: Pick<ChannelWebhook, 'apiVersion'>): boolean {
  return w.apiVersion === BODY_API_VERSION;
}

export interface Routing {
  scopes: string[];
  /** Unblocked subscribers that get the replay, in listing order, each once. */
  targets: ChannelWebhook[];
  /** Subscribers that get nothing: blocked by Channel Talk, or (unless sendNonV5) not a v5 webhook. */
  skipped: Array<{ webhook: ChannelWebhook; reason: 'blocked' | 'api-version' }>;
}

export function routeChange(
  webhooks: readonly ChannelWebhook[],
  change: MemberChange,
  o: { sendNonV5?: boolean } = {},
): Routing {
  const scopes = scopesForChange(change);
  const targets: ChannelWebhook[] = [];
  const skipped: Routing['skipped'] = [];
  if (scopes.length === 0) return { scopes, targets, skipped };
  for (const w of webhooks) {
    if (!w.scopes.some((s) => s === ALL_SCOPES || scopes.includes(s))) continue;
    if (w.blocked === true) skipped.push({ webhook: w, reason: 'blocked' });
    else if (!isV5(w) && o.sendNonV5 !== true) skipped.push({ webhook: w, reason: 'api-version' });
    else targets.push(w);
  }
  return { scopes, targets, skipped };
}

/** What the audit line says: targets first, then the skipped ones with why. Ids and names only. */
export function routesOf(routing: Routing): WebhookRoute[] {
  const route = (w: ChannelWebhook): WebhookRoute => (w.name ? { id: w.id, name: w.name } : { id: w.id });
  return [...routing.targets.map(route), ...routing.skipped.map((s) => ({ ...route(s.webhook), skipped: s.reason }))];
}
