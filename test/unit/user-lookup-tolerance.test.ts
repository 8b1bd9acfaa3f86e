import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChannelClient } from '../../src/channel/client';
import { userResponseSchema } from '../../src/channel/user-schema';
import { channelWebhookSchema, createChannelWebhooksClient } from '../../src/channel/webhooks';
import { startChannelSimulator, type ChannelSimulator } from '../../dev/simulator/channel-simulator';
import { fullOpenApiUser, UNCOMPARED_USER_FIELDS } from '../../dev/simulator/openapi-user-fixture';
import type { ChannelUser } from '../../src/domain/types';
import { buildUpsertPayload } from '../../src/webhook/payload';

// What Channel Talk may leave null or odd: only the compared fields, `profile` and `type` must parse; anything
// else (null, missing, another type, extra fields) neither fails the member nor costs a retry.

const KEY = 'tol-key';
const SECRET = 'tol-secret';

/** [case, field, value]: `undefined` = the key is removed. */
type Variant = [name: string, field: string, value: unknown];
const ODD_VALUES: Array<[label: string, value: unknown]> = [
  ['null', null],
  ['missing', undefined],
  ['a number', 42],
  ['an object', { nested: true }],
];
const TOLERATED: Variant[] = UNCOMPARED_USER_FIELDS.flatMap((field) =>
  ODD_VALUES.map(([label, value]): Variant => [`${field} ${label}`, field, value]),
);

/** Fields that must parse: a wrong type fails once, naming the field, never the value. */
const REJECTED: Array<[name: string, field: string, value: unknown, reason: string]> = [
  ['email a number', 'email', 98765, 'malformed response: invalid user.email (invalid_type)'],
  [
    'mobileNumber an object',
    'mobileNumber',
    { n: '98765' },
    'malformed response: invalid user.mobileNumber (invalid_type)',
  ],
  [
    'unsubscribeEmail a string',
    'unsubscribeEmail',
    'yes',
    'malformed response: invalid user.unsubscribeEmail (invalid_type)',
  ],
  [
    'unsubscribeTexting a number',
    'unsubscribeTexting',
    1,
    'malformed response: invalid user.unsubscribeTexting (invalid_type)',
  ],
  ['type a number', 'type', 3, 'malformed response: invalid user.type (invalid_type)'],
  ['profile a string', 'profile', 'p@example.com', 'malformed response: invalid user.profile (invalid_type)'],
];

function variant(memberId: string, field: string, value: unknown): ChannelUser {
  const u = fullOpenApiUser(memberId);
  if (value === undefined) delete (u as Record<string, unknown>)[field];
  else (u as Record<string, unknown>)[field] = value;
  return u;
}

describe('user schema: table of null, missing, odd and extra fields', () => {
  it('parses the full OpenApiUserDto, keeping every field for the replay', () => {
    const u = fullOpenApiUser('full');
    const parsed = userResponseSchema.parse({ user: u, online: null });
    expect(parsed.user).toEqual(u);
    expect(buildUpsertPayload(parsed.user).entity).toEqual(u);
  });

  it.each(TOLERATED)(
    '%s: parses; the value is passed through (change times: kept only when numbers)',
    (_name, field, value) => {
      const parsed = userResponseSchema.safeParse({ user: variant('m', field, value) });
      expect(parsed.success).toBe(true);
      const got = (parsed.data!.user as Record<string, unknown>)[field];
      if (field === 'updatedAt' || field.endsWith('UpdatedAt'))
        expect(got).toBe(typeof value === 'number' ? value : undefined);
      else expect(got).toEqual(value);
    },
  );

  it.each([
    ['null', null, null],
    ['missing', undefined, undefined],
  ])('compared fields %s: parse as "empty"', (_name, value, expected) => {
    for (const field of ['email', 'mobileNumber', 'unsubscribeEmail', 'unsubscribeTexting', 'profile']) {
      const parsed = userResponseSchema.parse({ user: variant('m', field, value) });
      expect((parsed.user as Record<string, unknown>)[field], field).toBe(expected);
    }
    expect(userResponseSchema.parse({ user: variant('m', 'type', value) }).user.type).toBeUndefined();
  });

  it('valid change times are kept as numbers; extra unknown fields survive', () => {
    const parsed = userResponseSchema.parse({
      user: { ...fullOpenApiUser('m'), futureField: { a: [1] } },
      extraTop: 1,
    });
    expect(parsed.user).toMatchObject({
      updatedAt: 1_730_500_000_000,
      unsubscribeEmailUpdatedAt: 1_730_499_999_000,
      unsubscribeTextingUpdatedAt: 1_730_499_998_000,
      futureField: { a: [1] },
    });
    expect(userResponseSchema.parse({ user: variant('m', 'updatedAt', 'yesterday') }).user.updatedAt).toBeUndefined();
    expect(userResponseSchema.parse({ user: variant('m', 'updatedAt', Number.NaN) }).user.updatedAt).toBeUndefined();
  });

  it.each(REJECTED)('%s: rejected', (_name, field, value) => {
    expect(userResponseSchema.safeParse({ user: variant('m', field, value) }).success).toBe(false);
  });
});

describe('webhook schema: name and apiVersion may be anything', () => {
  const base = { id: 'wh-1', url: 'https://h.example/x', token: 't', scopes: ['member.deleted'] };
  it.each([
    ['name null', { name: null }, { name: undefined }],
    ['name a number', { name: 5 }, { name: undefined }],
    ['apiVersion null', { apiVersion: null }, { apiVersion: undefined }],
    ['apiVersion missing', {}, { apiVersion: undefined }],
    ['apiVersion an object', { apiVersion: { v: 5 } }, { apiVersion: undefined }],
    ['createdAt a string', { createdAt: 'now' }, { createdAt: undefined }],
    ['blocked null', { blocked: null }, { blocked: undefined }],
    ['token null', { token: null }, { token: undefined }],
    ['scopes null', { scopes: null }, { scopes: [] }],
    ['extra fields', { lastBlockedAt: null, keywords: null, channelId: 'c' }, { id: 'wh-1' }],
  ])('%s', (_name, over, expected) => {
    const parsed = channelWebhookSchema.safeParse({ ...base, ...over });
    expect(parsed.success).toBe(true);
    for (const [key, want] of Object.entries(expected))
      expect((parsed.data as Record<string, unknown>)[key], key).toEqual(want);
  });
  it.each([
    ['id missing', { id: undefined }],
    ['url null', { url: null }],
    ['scopes a string', { scopes: 'member.deleted' }],
    ['blocked a string', { blocked: 'no' }],
  ])('%s: rejected', (_name, over) => {
    expect(channelWebhookSchema.safeParse({ ...base, ...over }).success).toBe(false);
  });
});

describe('over real HTTP (simulator serving OpenApiUserDto-shaped users)', () => {
  let sim: ChannelSimulator;
  let client: ReturnType<typeof createChannelClient>;
  const users: ChannelUser[] = [
    fullOpenApiUser('full'),
    ...TOLERATED.map(([name, field, value]) => variant(`tol:${name}`, field, value)),
    ...REJECTED.map(([name, field, value]) => variant(`rej:${name}`, field, value)),
  ];
  beforeAll(async () => {
    sim = await startChannelSimulator({ users, accessKey: KEY, accessSecret: SECRET });
    client = createChannelClient({
      baseUrl: sim.url,
      accessKey: KEY,
      accessSecret: SECRET,
      backoff: { initialMs: 5, maxMs: 20 },
      maxAttempts: 5,
    });
  });
  afterAll(async () => {
    await client?.close();
    await sim?.close();
  });

  it('the full user is found with one request, every field intact', async () => {
    const r = await client.getUserByMemberId('full');
    expect(r).toEqual({ kind: 'found', user: fullOpenApiUser('full'), attempts: 1 });
  });

  it('every tolerated variant is found with one request, and replayed exactly as Channel Talk answered', async () => {
    for (const [name, field, value] of TOLERATED) {
      const memberId = `tol:${name}`;
      const r = await client.getUserByMemberId(memberId);
      expect(r.kind, name).toBe('found');
      expect(r.attempts, name).toBe(1);
      expect(sim.stats().byMember.get(memberId), name).toBe(1);
      // Every key and null kept, the change times included (a null there once dropped the key from the entity).
      const entity = buildUpsertPayload((r as { user: ChannelUser }).user).entity;
      expect(entity, name).toEqual(variant(memberId, field, value));
      expect(Object.keys(entity), name).toEqual(Object.keys(variant(memberId, field, value)));
    }
  });

  it('a user with null in every change time and in type is replayed with those nulls', async () => {
    const nulls = fullOpenApiUser('nulls', {
      type: null,
      updatedAt: null,
      unsubscribeEmailUpdatedAt: null,
      unsubscribeTextingUpdatedAt: null,
    });
    const own = await startChannelSimulator({ users: [nulls], accessKey: KEY, accessSecret: SECRET });
    const c = createChannelClient({ baseUrl: own.url, accessKey: KEY, accessSecret: SECRET });
    try {
      const r = await c.getUserByMemberId('nulls');
      expect(r.kind).toBe('found');
      const entity = buildUpsertPayload((r as { user: ChannelUser }).user).entity;
      expect(JSON.stringify(entity)).toBe(JSON.stringify(nulls));
    } finally {
      await c.close();
      await own.close();
    }
  });

  it('a wrong type in a checked field fails once (no five retries), naming the field only', async () => {
    for (const [name, , value, reason] of REJECTED) {
      const memberId = `rej:${name}`;
      const r = await client.getUserByMemberId(memberId);
      expect(r, name).toEqual({ kind: 'failed', reason, attempts: 1 });
      expect(sim.stats().byMember.get(memberId), name).toBe(1);
      expect(reason).not.toContain(String(typeof value === 'object' ? JSON.stringify(value) : value));
    }
  });

  it('a webhook listing with null or odd names/apiVersions is read whole; a malformed one fails once', async () => {
    sim.setWebhooks([
      { id: 'a', url: 'https://h.example/a', scopes: ['member.deleted'], name: null, apiVersion: null } as never,
      { id: 'b', url: 'https://h.example/b', scopes: ['member.deleted'], name: 7, apiVersion: { x: 1 } } as never,
      { id: 'c', url: 'https://h.example/c', scopes: ['member.deleted'], apiVersion: 'v5' },
    ]);
    const lister = createChannelWebhooksClient({
      baseUrl: sim.url,
      accessKey: KEY,
      accessSecret: SECRET,
      backoff: { initialMs: 5, maxMs: 5 },
    });
    try {
      const list = await lister.list();
      expect(list.map((w) => [w.id, w.name, w.apiVersion]).sort()).toEqual([
        ['a', undefined, undefined],
        ['b', undefined, undefined],
        ['c', undefined, 'v5'],
      ]);
      sim.setWebhooks([{ id: 'd', url: 'https://h.example/d', scopes: 'member.deleted' } as never]);
      const before = sim.stats().webhookLists;
      await expect(lister.list()).rejects.toThrow(
        "listing the channel's webhooks failed: malformed response: invalid webhooks.0.scopes (invalid_type)",
      );
      expect(sim.stats().webhookLists - before).toBe(1);
    } finally {
      await lister.close();
    }
  });
});
