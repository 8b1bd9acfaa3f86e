import { describe, expect, it } from 'vitest';
import type { ComparedField, WebhookEvent } from '../../src/domain/types';
import {
  deliveriesFor,
  deliveryWebhookId,
  MEMBER_SCOPES,
  scopeDeliveries,
  type EventNamingRule,
} from '../../src/webhook/deliveries';
import { scopedWebhookId, webhookId, WEBHOOK_ID_PATTERN } from '../../src/webhook/webhook-id';

// How one member's decision becomes the deliveries one endpoint gets: (decision, differing fields, the endpoint's
// scopes, naming) -> [event, the scopes it stands for, what its webhook-id is keyed on].

const C = 'member.upserted.contact';
const S = 'member.upserted.subscription';
const D = 'member.deleted';
const ALL = [...MEMBER_SCOPES];
const NOTICE: EventNamingRule = { naming: 'notice' };
const RENAMED: EventNamingRule = { naming: 'notice', noticeNames: { upsert: 'user.upsert', delete: 'user.delete' } };
const SCOPES: EventNamingRule = { naming: 'scopes' };

type Row = [
  name: string,
  event: WebhookEvent,
  fields: ComparedField[] | undefined,
  subscribed: string[],
  rule: EventNamingRule,
  want: Array<[event: string, scopes: string[], idScope: string | undefined]>,
];

const ROWS: Row[] = [
  // The notice naming: one delivery per endpoint, keyed on the member's own id (today's), whatever it stands for.
  ['notice: contact change, all scopes', 'upsert', ['email'], ALL, NOTICE, [['upsert', [C], undefined]]],
  ['notice: consent change, all scopes', 'upsert', ['unsubscribeTexting'], ALL, NOTICE, [['upsert', [S], undefined]]],
  [
    'notice: both changes, all scopes: still one',
    'upsert',
    ['mobileNumber', 'unsubscribeEmail'],
    ALL,
    NOTICE,
    [['upsert', [C, S], undefined]],
  ],
  [
    'notice: both changes, contact only',
    'upsert',
    ['email', 'unsubscribeEmail'],
    [C],
    NOTICE,
    [['upsert', [C], undefined]],
  ],
  ['notice: consent change, contact only: none', 'upsert', ['unsubscribeEmail'], [C], NOTICE, []],
  ['notice: delete, all scopes', 'delete', undefined, ALL, NOTICE, [['delete', [D], undefined]]],
  ['notice: delete, upserts only: none', 'delete', undefined, [C, S], NOTICE, []],
  [
    'notice: unknown fields (recorded before routing): both',
    'upsert',
    undefined,
    ALL,
    NOTICE,
    [['upsert', [C, S], undefined]],
  ],
  ['notice renamed: upsert', 'upsert', ['email'], ALL, RENAMED, [['user.upsert', [C], undefined]]],
  ['notice renamed: delete', 'delete', undefined, ['*'], RENAMED, [['user.delete', [D], undefined]]],
  // The scopes naming: one delivery per scope the endpoint subscribes to, each keyed on its scope.
  ['scopes: contact change, all scopes', 'upsert', ['mobileNumber'], ALL, SCOPES, [[C, [C], C]]],
  ['scopes: consent change, all scopes', 'upsert', ['unsubscribeEmail'], ALL, SCOPES, [[S, [S], S]]],
  [
    'scopes: both changes, all scopes: two',
    'upsert',
    ['email', 'unsubscribeTexting'],
    ALL,
    SCOPES,
    [
      [C, [C], C],
      [S, [S], S],
    ],
  ],
  [
    'scopes: both changes, everything (*): two',
    'upsert',
    ['email', 'unsubscribeTexting'],
    ['*'],
    SCOPES,
    [
      [C, [C], C],
      [S, [S], S],
    ],
  ],
  [
    'scopes: both changes, contact only',
    'upsert',
    ['email', 'unsubscribeEmail'],
    [C, 'userChat.opened'],
    SCOPES,
    [[C, [C], C]],
  ],
  [
    'scopes: both changes, subscription + delete',
    'upsert',
    ['email', 'unsubscribeEmail'],
    [S, D],
    SCOPES,
    [[S, [S], S]],
  ],
  ['scopes: contact change, subscription + delete: none', 'upsert', ['email'], [S, D], SCOPES, []],
  ['scopes: delete, subscription + delete', 'delete', undefined, [S, D], SCOPES, [[D, [D], D]]],
  ['scopes: delete, contact only: none', 'delete', undefined, [C], SCOPES, []],
  ['scopes: lead scopes only: none', 'upsert', ['email'], ['lead.upserted.contact', 'lead.deleted'], SCOPES, []],
  [
    'scopes: unknown fields: both upsert scopes',
    'upsert',
    undefined,
    ALL,
    SCOPES,
    [
      [C, [C], C],
      [S, [S], S],
    ],
  ],
  // WEBHOOK_EVENT_UPSERT does not apply to the scopes naming (the configuration refuses the pair).
  ['scopes: notice names ignored', 'upsert', ['email'], ALL, { ...RENAMED, naming: 'scopes' }, [[C, [C], C]]],
];

describe('deliveriesFor: (decision, differing fields, subscribed scopes, naming) -> deliveries', () => {
  it.each(ROWS)('%s', (_name, event, fields, subscribed, rule, want) => {
    const got = deliveriesFor({ event, ...(fields ? { fields } : {}) }, subscribed, rule);
    expect(got.map((d) => [d.event, d.scopes, d.idScope])).toEqual(want);
  });
});

describe('the webhook-id of a delivery', () => {
  const member = webhookId('run-1', 'm-1', 'upsert');

  it("notice naming: the member's id, exactly as before scopes existed", () => {
    for (const d of deliveriesFor({ event: 'upsert', fields: ['email', 'unsubscribeEmail'] }, ALL, NOTICE))
      expect(deliveryWebhookId(member, d)).toBe(member);
  });

  it('scopes naming: one id per scope, stable, distinct from each other and from the notice id', () => {
    const ds = deliveriesFor({ event: 'upsert', fields: ['email', 'unsubscribeEmail'] }, ALL, SCOPES);
    const ids = ds.map((d) => deliveryWebhookId(member, d));
    expect(ids).toHaveLength(2);
    expect(new Set([...ids, member]).size).toBe(3);
    for (const id of ids) expect(id).toMatch(WEBHOOK_ID_PATTERN);
    // Re-runs with the same run label derive the same ids; another run label or member, other ids.
    expect(ds.map((d) => deliveryWebhookId(webhookId('run-1', 'm-1', 'upsert'), d))).toEqual(ids);
    expect(ds.map((d) => deliveryWebhookId(webhookId('run-2', 'm-1', 'upsert'), d))).not.toContain(ids[0]);
    expect(ds.map((d) => deliveryWebhookId(webhookId('run-1', 'm-2', 'upsert'), d))).not.toContain(ids[1]);
    expect(ids).toEqual([scopedWebhookId(member, C), scopedWebhookId(member, S)]);
  });
});

describe('scopeDeliveries: what the audit entry records', () => {
  const member = webhookId('run-1', 'm-1', 'upsert');
  const change = { event: 'upsert' as const, fields: ['email', 'unsubscribeEmail'] as ComparedField[] };

  it('counts endpoints per scope, with the scope delivery id', () => {
    const perEndpoint = [[C], [S, D], ['*']].map((subscribed) => deliveriesFor(change, subscribed, SCOPES));
    expect(scopeDeliveries(member, perEndpoint, SCOPES)).toEqual([
      { event: C, webhookId: scopedWebhookId(member, C), endpoints: 2 },
      { event: S, webhookId: scopedWebhookId(member, S), endpoints: 2 },
    ]);
  });

  it('records nothing for the notice naming (its entry already names its one event and id)', () => {
    expect(scopeDeliveries(member, [deliveriesFor(change, ALL, NOTICE)], NOTICE)).toBeUndefined();
  });
});
