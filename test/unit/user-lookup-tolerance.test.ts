import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createChannelClient } from '../../src/channel/client';
import { checkUserAnswer, userAnswerSchema } from '../../src/channel/user-schema';
import { channelWebhookSchema, createChannelWebhooksClient } from '../../src/channel/webhooks';
import { startChannelSimulator, type ChannelSimulator } from '../../dev/simulator/channel-simulator';
import { fullOpenApiUser, UNCOMPARED_USER_FIELDS } from '../../dev/simulator/openapi-user-fixture';
import { recordChangeTimes } from '../../src/audit/audit-entry';
import { fieldChangeTime } from '../../src/domain/decide';
import type { ChannelUser, ComparedField } from '../../src/domain/types';
import { buildUpsertPayload } from '../../src/webhook/payload';

// What Channel Talk may leave null or odd: only the compared fields, `profile` and `type` must parse; anything
// else (null, missing, another type, extra fields) neither fails the member nor costs a retry, and reaches the
// replay as it came. The check (src/channel/user-schema.ts) only checks: what the client hands on is the answer's
// own user, and the change times are read through a number check where they are read.

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

const CHANGE_TIME_FIELDS = ['updatedAt', 'unsubscribeEmailUpdatedAt', 'unsubscribeTextingUpdatedAt'];
/** The consent flag a change time belongs to. */
const fieldOfChangeTime = (field: string): ComparedField =>
  field === 'unsubscribeEmailUpdatedAt' ? 'unsubscribeEmail' : 'unsubscribeTexting';

function variant(memberId: string, field: string, value: unknown): ChannelUser {
  const u = fullOpenApiUser(memberId);
  if (value === undefined) delete (u as Record<string, unknown>)[field];
  else (u as Record<string, unknown>)[field] = value;
  return u;
}

/** The check's answer for a user, as the client reads it. */
const check = (user: unknown, top: Record<string, unknown> = {}) => checkUserAnswer({ user, ...top });

describe('user answer check: table of null, missing, odd and extra fields', () => {
  it("accepts the full OpenApiUserDto and hands on the answer's own user, every field kept for the replay", () => {
    const u = fullOpenApiUser('full');
    const checked = check(u, { online: null });
    expect(checked).toEqual({ ok: true, user: fullOpenApiUser('full') });
    expect(checked.ok && checked.user).toBe(u);
    expect(buildUpsertPayload(u).entity).toEqual(fullOpenApiUser('full'));
  });

  it.each(TOLERATED)('%s: accepted; the user is handed on as it came', (_name, field, value) => {
    const user = variant('m', field, value);
    const checked = check(user);
    expect(checked.ok).toBe(true);
    expect(checked.ok && checked.user).toBe(user);
    expect(user).toEqual(variant('m', field, value));
  });

  it.each(
    CHANGE_TIME_FIELDS.flatMap((field) =>
      [...ODD_VALUES, ['a string', 'yesterday'] as const].map(([label, value]): Variant => [
        `${field} ${label}`,
        field,
        value,
      ]),
    ),
  )('%s: accepted; read as a change time only when a number', (_name, field, value) => {
    const user = variant('m', field, value);
    expect(check(user).ok).toBe(true);
    const expected = typeof value === 'number' ? value : undefined;
    const entry: Record<string, unknown> = {};
    recordChangeTimes(entry, user);
    expect(entry[field]).toBe(expected);
    // A consent flag without its own change time falls back to updatedAt: without one, none is known.
    const [times, compared] =
      field === 'updatedAt' ? [user, 'email' as const] : [{ ...user, updatedAt: undefined }, fieldOfChangeTime(field)];
    expect(fieldChangeTime(times, compared)).toBe(expected);
  });

  it('valid change times are read as numbers', () => {
    const entry: Record<string, unknown> = {};
    recordChangeTimes(entry, fullOpenApiUser('m'));
    expect(entry).toEqual({
      updatedAt: 1_730_500_000_000,
      unsubscribeEmailUpdatedAt: 1_730_499_999_000,
      unsubscribeTextingUpdatedAt: 1_730_499_998_000,
    });
  });

  it.each([
    ['null', null],
    ['missing', undefined],
  ])('compared fields, profile and type %s: accepted, handed on as they came', (_name, value) => {
    for (const field of ['email', 'mobileNumber', 'unsubscribeEmail', 'unsubscribeTexting', 'profile', 'type']) {
      const user = variant('m', field, value);
      expect(check(user), field).toEqual({ ok: true, user: variant('m', field, value) });
      expect(field in user, field).toBe(value === null);
    }
  });

  it('extra unknown fields, in the user and beside it, are accepted and kept', () => {
    const user = { ...fullOpenApiUser('m'), futureField: { a: [1] } };
    const checked = check(user, { extraTop: 1, online: { status: 'x' } });
    expect(checked.ok && checked.user).toBe(user);
    expect(user.futureField).toEqual({ a: [1] });
  });

  it.each(REJECTED)('%s: refused, naming the field', (_name, field, value) => {
    expect(check(variant('m', field, value))).toEqual({ ok: false, where: `user.${field}`, code: 'invalid_type' });
  });

  // Every checked field against every kind of JSON value: accepted exactly when the value is of the field's kind,
  // null or missing, by the compiled check and by zod's runtime parser alike.
  const KINDS: Array<[label: string, value: unknown, kind: string]> = [
    ['a string', 'x', 'string'],
    ['an empty string', '', 'string'],
    ['true', true, 'boolean'],
    ['false', false, 'boolean'],
    ['an object', { nested: true }, 'object'],
    ['an empty object', {}, 'object'],
    ['a number', 42, 'number'],
    ['zero', 0, 'number'],
    ['an array', ['x'], 'array'],
    ['null', null, 'null'],
    ['missing', undefined, 'null'],
  ];
  const FIELD_KIND: Record<string, string> = {
    type: 'string',
    email: 'string',
    mobileNumber: 'string',
    unsubscribeEmail: 'boolean',
    unsubscribeTexting: 'boolean',
    profile: 'object',
  };
  it('checks exactly the fields of FIELD_KIND', () => {
    expect(Object.keys(userAnswerSchema.shape.user.shape).sort()).toEqual(Object.keys(FIELD_KIND).sort());
  });
  it.each(
    Object.keys(FIELD_KIND).flatMap((field) =>
      KINDS.map(([label, value, kind]): [string, string, unknown, boolean] => {
        const accepted = kind === 'null' || kind === FIELD_KIND[field];
        return [`${field} ${label}: ${accepted ? 'accepted' : 'refused'}`, field, value, accepted];
      }),
    ),
  )('%s', (_name, field, value, accepted) => {
    const answer = { user: variant('m', field, value) };
    expect(checkUserAnswer(answer)).toEqual(
      accepted ? { ok: true, user: answer.user } : { ok: false, where: `user.${field}`, code: 'invalid_type' },
    );
    expect(userAnswerSchema.safeParse(answer).success).toBe(accepted);
  });

  it.each<[name: string, answer: unknown, where: string]>([
    ['the body an array', [], 'body'],
    ['the body null', null, 'body'],
    ['the body a string', 'user', 'body'],
    ['no user', { online: null }, 'user'],
    ['user null', { user: null }, 'user'],
    ['user an array', { user: [] }, 'user'],
    ['profile an array', { user: { ...fullOpenApiUser('m'), profile: [] } }, 'user.profile'],
    ['the first of two bad fields', { user: { ...fullOpenApiUser('m'), email: 1, type: 2 } }, 'user.type'],
  ])('%s: refused, naming where', (_name, answer, where) => {
    expect(checkUserAnswer(answer)).toEqual({ ok: false, where, code: 'invalid_type' });
  });

  it('zod compiles the check (a schema it could not compile would quietly keep the slower runtime parser)', () => {
    expect(() => z.compile(userAnswerSchema, { strict: true })).not.toThrow();
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
