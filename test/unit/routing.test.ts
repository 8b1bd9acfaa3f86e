import { describe, expect, it } from 'vitest';
import type { ChannelWebhook } from '../../src/channel/webhooks';
import { COMPARED_FIELDS, type ComparedField } from '../../src/domain/types';
import { routeChange, routesOf, scopesForChange } from '../../src/webhook/routing';

// Channel Talk's routing of user changes (OpenAPI webhook.Webhook.scopes), for every combination of differing fields.

const hook = (id: string, scopes: string[], over: Partial<ChannelWebhook> = {}): ChannelWebhook => ({
  id,
  name: `name ${id}`,
  url: `https://h.example/${id}`,
  token: `tok-${id}`,
  scopes,
  apiVersion: 'v5',
  ...over,
});

const WEBHOOKS: ChannelWebhook[] = [
  hook('contact', ['member.upserted.contact']),
  hook('subscription', ['member.upserted.subscription']),
  hook('both-upserts', ['member.upserted.contact', 'member.upserted.subscription']),
  hook('deletes', ['member.deleted']),
  hook('contact-deletes', ['member.upserted.contact', 'member.deleted', 'userChat.opened']),
  hook('everything', ['*']),
  hook('leads', ['lead.upserted.contact', 'lead.upserted.subscription', 'lead.deleted']),
  hook('chats', ['userChat.opened', 'message.created.userChat']),
  hook('blocked-contact', ['member.upserted.contact'], { blocked: true }),
  hook('blocked-all', ['member.upserted.contact', 'member.upserted.subscription', 'member.deleted'], { blocked: true }),
  hook('v4-subscription', ['member.upserted.subscription'], { apiVersion: 'v4' }),
  hook('no-version-deletes', ['member.deleted'], { apiVersion: undefined }),
];

const CONTACT = ['contact', 'both-upserts', 'contact-deletes', 'everything'];
const SUBSCRIPTION = ['subscription', 'both-upserts', 'everything'];

/** Every non-empty subset of the compared fields (15 of them). */
const SUBSETS: ComparedField[][] = Array.from({ length: 2 ** COMPARED_FIELDS.length - 1 }, (_, i) =>
  COMPARED_FIELDS.filter((_, bit) => ((i + 1) >> bit) & 1),
);

describe('routeChange: upserts, every combination of differing fields', () => {
  it.each(SUBSETS.map((fields) => [fields.join('+'), fields] as const))('%s', (_name, fields) => {
    const contact = fields.includes('email') || fields.includes('mobileNumber');
    const consent = fields.includes('unsubscribeEmail') || fields.includes('unsubscribeTexting');
    const wanted = new Set([...(contact ? CONTACT : []), ...(consent ? SUBSCRIPTION : [])]);
    const r = routeChange(WEBHOOKS, { event: 'upsert', fields });
    // Listing order, each webhook once (both-upserts and everything appear once for a change of both kinds).
    expect(r.targets.map((w) => w.id)).toEqual(WEBHOOKS.map((w) => w.id).filter((id) => wanted.has(id)));
    expect(r.scopes).toEqual([
      ...(contact ? ['member.upserted.contact'] : []),
      ...(consent ? ['member.upserted.subscription'] : []),
    ]);
    // Blocked subscribers and the v4 one are skipped with their reason; lead-only and chat-only never appear.
    const skipped = r.skipped.map((s) => [s.webhook.id, s.reason]);
    expect(skipped).toEqual([
      ...(contact ? [['blocked-contact', 'blocked']] : []),
      ['blocked-all', 'blocked'],
      ...(consent ? [['v4-subscription', 'api-version']] : []),
    ]);
  });
});

describe('routeChange: the rest', () => {
  const CASES: Array<
    [
      name: string,
      change: Parameters<typeof routeChange>[1],
      opts: { sendNonV5?: boolean },
      targets: string[],
      skipped: string[],
    ]
  > = [
    [
      'delete',
      { event: 'delete' },
      {},
      ['deletes', 'contact-deletes', 'everything'],
      ['blocked-all:blocked', 'no-version-deletes:api-version'],
    ],
    [
      'delete, non-v5 sent',
      { event: 'delete' },
      { sendNonV5: true },
      ['deletes', 'contact-deletes', 'everything', 'no-version-deletes'],
      ['blocked-all:blocked'],
    ],
    [
      'upsert of consent, non-v5 sent',
      { event: 'upsert', fields: ['unsubscribeTexting'] },
      { sendNonV5: true },
      [...SUBSCRIPTION, 'v4-subscription'],
      ['blocked-all:blocked'],
    ],
    // A caller that does not know the fields (a replay recorded before routing existed) reaches both upsert scopes.
    [
      'upsert, fields unknown',
      { event: 'upsert' },
      {},
      ['contact', 'subscription', 'both-upserts', 'contact-deletes', 'everything'],
      ['blocked-contact:blocked', 'blocked-all:blocked', 'v4-subscription:api-version'],
    ],
    ['upsert, no fields', { event: 'upsert', fields: [] }, {}, [], []],
  ];
  it.each(CASES)('%s', (_name, change, opts, targets, skipped) => {
    const r = routeChange(WEBHOOKS, change, opts);
    expect(r.targets.map((w) => w.id)).toEqual(WEBHOOKS.map((w) => w.id).filter((id) => targets.includes(id)));
    expect(r.skipped.map((s) => `${s.webhook.id}:${s.reason}`)).toEqual(skipped);
  });

  it('only blocked or lead-only webhooks: nobody gets it', () => {
    const only = WEBHOOKS.filter((w) => w.id.startsWith('blocked') || w.id === 'leads');
    const r = routeChange(only, { event: 'upsert', fields: ['email'] });
    expect(r.targets).toEqual([]);
    expect(r.skipped.map((s) => s.webhook.id)).toEqual(['blocked-contact', 'blocked-all']);
    expect(
      routeChange(
        only.filter((w) => w.id === 'leads'),
        { event: 'delete' },
      ),
    ).toEqual({ scopes: ['member.deleted'], targets: [], skipped: [] });
  });

  it('scopesForChange', () => {
    expect(scopesForChange({ event: 'upsert', fields: ['unsubscribeEmail', 'mobileNumber'] })).toEqual([
      'member.upserted.contact',
      'member.upserted.subscription',
    ]);
    expect(scopesForChange({ event: 'delete', fields: ['email'] })).toEqual(['member.deleted']);
  });

  it('routesOf names targets then skipped webhooks by id and name, never URL or token', () => {
    const routes = routesOf(routeChange(WEBHOOKS, { event: 'upsert', fields: ['unsubscribeEmail'] }));
    expect(routes).toEqual([
      { id: 'subscription', name: 'name subscription' },
      { id: 'both-upserts', name: 'name both-upserts' },
      { id: 'everything', name: 'name everything' },
      { id: 'blocked-all', name: 'name blocked-all', skipped: 'blocked' },
      { id: 'v4-subscription', name: 'name v4-subscription', skipped: 'api-version' },
    ]);
    expect(JSON.stringify(routes)).not.toMatch(/tok-|https:/);
    expect(routesOf(routeChange([hook('x', ['member.deleted'], { name: undefined })], { event: 'delete' }))).toEqual([
      { id: 'x' },
    ]);
  });
});
