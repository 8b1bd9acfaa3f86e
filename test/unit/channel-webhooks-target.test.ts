import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BadCredentialsError } from '../../src/channel/errors';
import {
  ChannelWebhooksError,
  createChannelWebhooksClient,
  type ChannelWebhook,
  type ChannelWebhooksClient,
} from '../../src/channel/webhooks';
import { startChannelSimulator, type ChannelSimulator } from '../../dev/simulator/channel-simulator';
import { createChannelPacer } from '../../src/channel/channel-pacer';
import { startWebhookReceiver, type WebhookReceiver } from '../../dev/simulator/webhook-receiver';
import {
  createChannelWebhooksTarget,
  type ChannelWebhooksLogger,
  type ChannelWebhooksTarget,
} from '../../src/webhook/channel-webhooks-target';
import { buildDeletePayload, buildUpsertPayload } from '../../src/webhook/payload';
import { scopedWebhookId, webhookId } from '../../src/webhook/webhook-id';
import type { ComparedField } from '../../src/domain/types';
import { verifyAsReceiver } from '../support/standard-webhooks';

// Real HTTP throughout: the Channel Talk simulator serves GET /open/v5/webhooks, real receivers answer the replays.

const KEY = 'wh-key';
const SECRET = 'wh-secret';
const TOKENS = {
  upserts: 'tok-upserts-1a',
  deletes: 'tok-deletes-2b',
  both: 'tok-both-3c',
  blocked: 'tok-blocked-4d',
  leads: 'tok-leads-5e',
};

let sim: ChannelSimulator;
let rA: WebhookReceiver;
let rB: WebhookReceiver;
let client: ChannelWebhooksClient;
let target: ChannelWebhooksTarget | undefined;

function registered(): ChannelWebhook[] {
  return [
    {
      id: 'wh-upserts',
      name: 'CRM upserts',
      url: rA.url,
      token: TOKENS.upserts,
      scopes: ['member.upserted.contact', 'member.upserted.subscription'],
      apiVersion: 'v5',
      blocked: false,
    },
    {
      id: 'wh-deletes',
      name: 'CRM deletes',
      url: `${rB.url}?src=ct`,
      token: TOKENS.deletes,
      scopes: ['member.deleted'],
      apiVersion: 'v5',
      blocked: false,
    },
    {
      id: 'wh-both',
      name: 'Warehouse',
      url: rB.url,
      token: TOKENS.both,
      scopes: ['member.upserted.subscription', 'member.deleted', 'userChat.opened'],
      apiVersion: 'v5',
    },
    {
      id: 'wh-blocked',
      name: 'Old CRM',
      url: `${rA.url}?secret-query=zz9`,
      token: TOKENS.blocked,
      scopes: ['member.upserted.contact', 'member.deleted'],
      apiVersion: 'v5',
      blocked: true,
    },
    {
      id: 'wh-leads',
      name: 'Leads only',
      url: rA.url,
      token: TOKENS.leads,
      scopes: ['lead.upserted.contact', 'lead.deleted'],
      apiVersion: 'v5',
    },
  ];
}

const alice = { id: 'u-alice', memberId: 'alice', email: 'alice@example.com', unsubscribeEmail: false };
/** An upsert; `fields` absent = a caller that does not say which fields differ (both upsert scopes). */
const upsert = (memberId = 'alice', fields?: ComparedField[]) => ({
  webhookId: webhookId('t', memberId, 'upsert'),
  payload: buildUpsertPayload({ ...alice, memberId }),
  ...(fields ? { fields } : {}),
});
const R = {
  upserts: { id: 'wh-upserts', name: 'CRM upserts' },
  deletes: { id: 'wh-deletes', name: 'CRM deletes' },
  both: { id: 'wh-both', name: 'Warehouse' },
  blocked: { id: 'wh-blocked', name: 'Old CRM', skipped: 'blocked' },
} as const;
const del = (memberId = 'bob') => ({
  webhookId: webhookId('t', memberId, 'delete'),
  payload: buildDeletePayload({
    stored: { memberId, email: null, mobileNumber: null, unsubscribeEmail: null, unsubscribeTexting: null },
  }),
});

function newTarget(over: Partial<Parameters<typeof createChannelWebhooksTarget>[0]> = {}): ChannelWebhooksTarget {
  target = createChannelWebhooksTarget({ list: (s) => client.list(s), ...over });
  return target;
}

beforeAll(async () => {
  [rA, rB] = await Promise.all([startWebhookReceiver(), startWebhookReceiver({ path: '/hooks/b' })]);
  sim = await startChannelSimulator({ users: [], accessKey: KEY, accessSecret: SECRET, webhooks: registered() });
  client = createChannelWebhooksClient({
    baseUrl: sim.url,
    accessKey: KEY,
    accessSecret: SECRET,
    backoff: { initialMs: 10, maxMs: 50 },
  });
});
afterAll(async () => {
  await client.close();
  await Promise.all([sim.close(), rA.close(), rB.close()]);
});
beforeEach(() => {
  sim.setWebhooks(registered());
  sim.setCredentials(KEY, SECRET);
});
afterEach(async () => {
  await target?.close();
  target = undefined;
  for (const r of [rA, rB]) {
    r.setDefaultBehaviour(undefined);
  }
});

const since = (r: WebhookReceiver, seq: number) => r.deliveries().filter((d) => d.seq > seq);
const mark = () => ({ a: rA.deliveries().length, b: rB.deliveries().length });
const lastSeq = (r: WebhookReceiver) => r.deliveries().at(-1)?.seq ?? 0;

/** `n` webhooks subscribed to member.deleted, all at receiver A, oldest first. */
const deleteHooks = (n: number): ChannelWebhook[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `wh-${i}`,
    url: rA.url,
    token: `t${i}`,
    scopes: ['member.deleted'],
    createdAt: 1_700_000_000_000 + i,
  }));

describe('listing GET /open/v5/webhooks', () => {
  it('returns every webhook over several pages (since/next), with scopes and blocked flags', async () => {
    const many = deleteHooks(7);
    sim.setWebhooks(many);
    const paged = createChannelWebhooksClient({ baseUrl: sim.url, accessKey: KEY, accessSecret: SECRET, pageSize: 3 });
    const before = sim.stats().webhookLists;
    try {
      const list = await paged.list();
      expect(list.map((w) => w.id).sort()).toEqual(many.map((w) => w.id).sort());
      expect(sim.stats().webhookLists - before).toBe(3); // 3 + 3 + 1
    } finally {
      await paged.close();
    }
    sim.setWebhooks(registered());
    const list = await client.list();
    expect(list.find((w) => w.id === 'wh-blocked')).toMatchObject({
      blocked: true,
      token: TOKENS.blocked,
      scopes: ['member.upserted.contact', 'member.deleted'],
    });
    expect(list).toHaveLength(5);
  });

  it("goes through the worker's pacer: it waits for it, feeds it every page's headers, and keeps the reserve", async () => {
    const many = deleteHooks(6);
    // A small bucket (3, refilled at 2/s): six pages one by one would run it dry and meet a 429 without the pacer.
    const limited = await startChannelSimulator({
      users: [],
      accessKey: KEY,
      accessSecret: SECRET,
      webhooks: many,
      rateLimit: { perSecond: 2, burst: 3 },
    });
    const pacer = createChannelPacer();
    const paced = createChannelWebhooksClient({
      baseUrl: limited.url,
      accessKey: KEY,
      accessSecret: SECRET,
      pageSize: 1,
      pacer,
    });
    try {
      expect(await paced.list()).toHaveLength(6);
      expect(limited.stats().webhookLists).toBe(6);
      expect(limited.stats().rateLimited).toBe(0);
      expect(pacer.snapshot()).toMatchObject({ limit: 3, rateLimited: 0, givingWay: true });
    } finally {
      await paced.close();
      await limited.close();
    }
  });

  it('the simulator route: limit 1..500 (default 25), since = createdAt to start at, next only when more remain; GET only', async () => {
    sim.setWebhooks(
      Array.from({ length: 30 }, (_, i) => ({
        id: `w${i}`,
        url: rA.url,
        scopes: ['member.deleted'],
        createdAt: 1_000 + i,
      })),
    );
    const get = async (query: string, method = 'GET') => {
      const res = await fetch(`${sim.url}/open/v5/webhooks${query}`, {
        method,
        headers: { 'x-access-key': KEY, 'x-access-secret': SECRET },
      });
      return {
        status: res.status,
        body: res.status === 200 ? ((await res.json()) as { webhooks: ChannelWebhook[]; next?: number }) : undefined,
      };
    };
    const first = await get('');
    expect(first.body!.webhooks).toHaveLength(25);
    expect(first.body!.webhooks[0]!.id).toBe('w29'); // newest first
    expect(first.body!.next).toBe(1_004);
    const rest = await get(`?since=${first.body!.next}&limit=500`);
    expect(rest.body).toEqual({ webhooks: expect.any(Array) });
    expect(rest.body!.webhooks.map((w) => w.id)).toEqual(['w4', 'w3', 'w2', 'w1', 'w0']);
    expect((await get('?since=999')).body).toEqual({ webhooks: [] });
    for (const bad of ['?limit=0', '?limit=501', '?limit=abc', '?since=abc'])
      expect((await get(bad)).status, bad).toBe(422);
    expect((await get('', 'POST')).status).toBe(405);
  });

  it('bad credentials throw BadCredentialsError; the simulator checks them like the users route', async () => {
    sim.setCredentials('other', 'other');
    await expect(client.list()).rejects.toBeInstanceOf(BadCredentialsError);
    const res = await fetch(`${sim.url}/open/v5/webhooks`, {
      headers: { 'x-access-key': KEY, 'x-access-secret': SECRET },
    });
    expect(res.status).toBe(401);
  });

  it('a malformed answer fails at once (no retries: it would not change) with a reason naming the field, never a value', async () => {
    const served: number[] = [];
    const bad = http.createServer((req, res) => {
      served.push(1);
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          webhooks: [{ id: 42, url: 'https://x.example/h?token=leaky', token: 'leaky-token', scopes: [] }],
        }),
      );
    });
    await new Promise<void>((r) => bad.listen(0, '127.0.0.1', () => r()));
    const c = createChannelWebhooksClient({
      baseUrl: `http://127.0.0.1:${(bad.address() as AddressInfo).port}`,
      accessKey: KEY,
      accessSecret: SECRET,
      maxAttempts: 2,
      backoff: { initialMs: 5, maxMs: 5 },
    });
    try {
      const err = await c.list().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ChannelWebhooksError);
      expect((err as Error).message).toBe(
        "listing the channel's webhooks failed: malformed response: invalid webhooks.0.id (invalid_type)",
      );
      expect(served).toHaveLength(1);
    } finally {
      await c.close();
      await new Promise<void>((r) => bad.close(() => r()));
    }
  });
});

describe('channel-webhooks target', () => {
  it('contact changes go to member.upserted.contact subscribers, consent changes to .subscription ones, both kinds to the union once, deletes to member.deleted; each with its own token; blocked and lead-only get nothing', async () => {
    const t = newTarget();
    const m = mark();
    // wh-upserts: contact + subscription; wh-both: subscription + deleted; wh-blocked: contact + deleted (blocked).
    expect(await t.send(upsert('alice', ['email']))).toEqual({
      kind: 'delivered',
      status: 200,
      webhooks: [R.upserts, R.blocked],
    });
    expect(await t.send(upsert('ally', ['unsubscribeTexting']))).toEqual({
      kind: 'delivered',
      status: 200,
      webhooks: [R.upserts, R.both],
    });
    expect(await t.send(upsert('amy', ['mobileNumber', 'unsubscribeEmail']))).toEqual({
      kind: 'delivered',
      status: 200,
      webhooks: [R.upserts, R.both, R.blocked],
    });
    expect(await t.send(del())).toEqual({ kind: 'delivered', status: 200, webhooks: [R.deletes, R.both, R.blocked] });

    const newA = rA.deliveries().slice(m.a);
    const newB = rB.deliveries().slice(m.b);
    // rA: wh-upserts (upserts only, once per member). wh-blocked and wh-leads also point at rA, with their own tokens: nothing.
    expect(newA.map((d) => [d.token, d.event, d.memberId])).toEqual([
      [TOKENS.upserts, 'upsert', 'alice'],
      [TOKENS.upserts, 'upsert', 'ally'],
      [TOKENS.upserts, 'upsert', 'amy'],
    ]);
    // rB: wh-both gets the consent changes and the delete, not alice's email change; wh-deletes the delete, its
    // registered query string kept.
    expect(newB.map((d) => [d.token, d.event, d.memberId]).sort()).toEqual(
      [
        [TOKENS.both, 'upsert', 'ally'],
        [TOKENS.both, 'upsert', 'amy'],
        [TOKENS.both, 'delete', 'bob'],
        [TOKENS.deletes, 'delete', 'bob'],
      ].sort(),
    );
    expect(newB.find((d) => d.token === TOKENS.deletes)!.query).toEqual({ src: 'ct' });
    // Every endpoint gets the same webhook-id for one member's event.
    for (const d of [...newA, ...newB])
      expect(d.webhookId).toBe(webhookId('t', d.memberId!, d.event as 'upsert' | 'delete'));
    const s = t.stats();
    expect(s).toMatchObject({
      listings: 1,
      registered: 5,
      blocked: ['wh-blocked'],
      skippedBlocked: 3,
      noSubscriber: 0,
      nonV5: [],
      skippedNonV5: 0,
    });
    expect(s.perWebhook).toEqual({
      'wh-upserts': { delivered: 3, retryable: 0, rejected: 0 },
      'wh-both': { delivered: 3, retryable: 0, rejected: 0 },
      'wh-deletes': { delivered: 1, retryable: 0, rejected: 0 },
    });
  });

  it('route() tells where a change would go without sending anything (the dry run)', async () => {
    const t = newTarget();
    const m = mark();
    expect(await t.route({ event: 'upsert', fields: ['email'] })).toEqual([R.upserts, R.blocked]);
    expect(await t.route({ event: 'upsert', fields: ['unsubscribeEmail'] })).toEqual([R.upserts, R.both]);
    expect(await t.route({ event: 'delete' })).toEqual([R.deletes, R.both, R.blocked]);
    expect(mark()).toEqual(m);
    sim.setCredentials('revoked', 'revoked');
    await expect(newTarget().route({ event: 'delete' })).rejects.toBeInstanceOf(BadCredentialsError);
  });

  it('webhooks whose apiVersion is not v5 are logged and skipped, unless sendNonV5; the skip is named in the result', async () => {
    const lines: Array<[string, string, Record<string, unknown> | undefined]> = [];
    const logger: ChannelWebhooksLogger = {
      info: (msg, meta) => lines.push(['info', msg, meta]),
      warn: (msg, meta) => lines.push(['warn', msg, meta]),
    };
    sim.setWebhooks(
      registered().map((w) =>
        w.id === 'wh-both' ? { ...w, apiVersion: 'v4' } : w.id === 'wh-deletes' ? { ...w, apiVersion: undefined } : w,
      ),
    );
    const t = newTarget({ logger });
    const m = mark();
    const r = await t.send(del('dan'));
    expect(r).toEqual({
      kind: 'rejected',
      status: 0,
      reason:
        'every registered webhook subscribed to member.deleted is blocked (wh-blocked) or not v5 and skipped (wh-deletes, wh-both; WEBHOOK_SEND_NON_V5=true sends them v5 bodies)',
      webhooks: [{ ...R.deletes, skipped: 'api-version' }, { ...R.both, skipped: 'api-version' }, R.blocked],
    });
    expect(mark()).toEqual(m);
    expect(t.stats()).toMatchObject({ nonV5: ['wh-deletes', 'wh-both'], skippedNonV5: 1 });
    expect(
      lines
        .filter((l) => l[0] === 'warn' && l[1].startsWith("channel webhook's apiVersion is not v5"))
        .map((l) => [l[2]!.id, l[2]!.apiVersion]),
    ).toEqual([
      ['wh-deletes', null],
      ['wh-both', 'v4'],
    ]);
    expect(lines[0]![2]).toMatchObject({ deletes: [], subscription: ['wh-upserts'], nonV5: ['wh-deletes', 'wh-both'] });

    const sending = newTarget({ sendNonV5: true });
    expect(await sending.send(del('dan'))).toEqual({
      kind: 'delivered',
      status: 200,
      webhooks: [R.deletes, R.both, R.blocked],
    });
    expect(
      rB
        .deliveries()
        .slice(m.b)
        .map((d) => d.token)
        .sort(),
    ).toEqual([TOKENS.both, TOKENS.deletes].sort());
  });

  it('the event strings of the bodies are configurable; routing still follows the change', async () => {
    const t = newTarget({ eventNames: { upsert: 'member.upserted.subscription', delete: 'member.deleted' } });
    const m = mark();
    await t.send(upsert('eve', ['unsubscribeEmail']));
    await t.send(del('ed'));
    expect(
      rB
        .deliveries()
        .slice(m.b)
        .filter((d) => d.token === TOKENS.both)
        .map((d) => [d.memberId, d.event]),
    ).toEqual([
      ['eve', 'member.upserted.subscription'],
      ['ed', 'member.deleted'],
    ]);
  });

  it("WEBHOOK_EVENT_NAMES=scopes: each webhook gets one delivery per scope of its own, named by it, with the scope's id", async () => {
    const t = newTarget({ eventNaming: 'scopes' });
    const m = mark();
    const both = upsert('gus', ['mobileNumber', 'unsubscribeTexting']);
    const C = 'member.upserted.contact';
    const S = 'member.upserted.subscription';
    const ids = { [C]: scopedWebhookId(both.webhookId, C), [S]: scopedWebhookId(both.webhookId, S) };
    const planned = [
      { event: C, webhookId: ids[C], endpoints: 1 },
      { event: S, webhookId: ids[S], endpoints: 2 },
    ];
    expect(await t.plan({ event: 'upsert', fields: both.fields, webhookId: both.webhookId })).toEqual(planned);
    expect(await t.send(both)).toEqual({
      kind: 'delivered',
      status: 200,
      webhooks: [R.upserts, R.both, R.blocked],
      deliveries: planned,
    });
    // wh-upserts (contact + subscription) gets both scopes; wh-both (subscription + delete) the consent change only.
    const got = [...rA.deliveries().slice(m.a), ...rB.deliveries().slice(m.b)].map((d) => [
      d.token,
      d.event,
      d.webhookId,
    ]);
    expect(got.sort()).toEqual(
      [
        [TOKENS.upserts, C, ids[C]],
        [TOKENS.upserts, S, ids[S]],
        [TOKENS.both, S, ids[S]],
      ].sort(),
    );
    const gone = del('hal');
    expect(await t.send(gone)).toMatchObject({
      kind: 'delivered',
      deliveries: [
        { event: 'member.deleted', webhookId: scopedWebhookId(gone.webhookId, 'member.deleted'), endpoints: 2 },
      ],
    });
  });

  it('a retry goes only to the endpoints that have not accepted yet', async () => {
    const t = newTarget();
    const seqA = lastSeq(rA);
    const seqB = lastSeq(rB);
    rB.setDefaultBehaviour({ status: 503, times: 1, retryAfterSeconds: 3 });
    const first = await t.send(upsert('carol'));
    expect(first).toEqual({
      kind: 'retryable',
      status: 503,
      retryAfterMs: 3000,
      reason: 'not delivered to 1 of 2 subscribed webhooks: webhook wh-both HTTP 503',
      webhooks: [R.upserts, R.both, R.blocked],
    });
    expect(await t.send(upsert('carol'))).toEqual({
      kind: 'delivered',
      status: 200,
      webhooks: [R.upserts, R.both, R.blocked],
    });
    expect(since(rA, seqA).map((d) => d.status)).toEqual([200]); // wh-upserts: once, not again on the retry
    expect(since(rB, seqB).map((d) => d.status)).toEqual([503, 200]); // wh-both: failed, then retried
    // Once delivered the progress is forgotten: a new send (e.g. a later re-run) goes to every endpoint again.
    expect(await t.send(upsert('carol'))).toMatchObject({ kind: 'delivered', status: 200 });
    expect(since(rA, seqA)).toHaveLength(2);
  });

  it('rejected when an endpoint rejects and none is retryable; retryable wins over rejected', async () => {
    const t = newTarget();
    rB.setBehaviour('dave', { status: 400 });
    const rejected = await t.send(upsert('dave'));
    expect(rejected).toEqual({
      kind: 'rejected',
      status: 400,
      reason: 'rejected by 1 of 2 subscribed webhooks: webhook wh-both HTTP 400',
      webhooks: [R.upserts, R.both, R.blocked],
    });

    rA.setBehaviour('erin', { status: 500 });
    rB.setBehaviour('erin', { status: 410 });
    const mixed = await t.send(upsert('erin'));
    expect(mixed).toMatchObject({ kind: 'retryable', status: 500 });
    expect((mixed as { reason: string }).reason).toBe(
      'not delivered to 2 of 2 subscribed webhooks: webhook wh-upserts HTTP 500; webhook wh-both HTTP 410',
    );
    rB.setBehaviour('dave', undefined);
    rA.setBehaviour('erin', undefined);
    rB.setBehaviour('erin', undefined);
  });

  it('no subscribed webhook, or only blocked ones: rejected with status 0 and a reason naming the scope', async () => {
    sim.setWebhooks(registered().filter((w) => w.id === 'wh-upserts' || w.id === 'wh-leads'));
    const t = newTarget();
    const m = mark();
    expect(await t.send(del())).toEqual({
      kind: 'rejected',
      status: 0,
      reason: 'no registered webhook subscribes to member.deleted',
      webhooks: [],
    });
    sim.setWebhooks(registered().filter((w) => w.id === 'wh-blocked' || w.id === 'wh-deletes'));
    const t2 = createChannelWebhooksTarget({ list: (s) => client.list(s) });
    try {
      expect(await t2.send(upsert('alice', ['email']))).toEqual({
        kind: 'rejected',
        status: 0,
        reason: 'every registered webhook subscribed to member.upserted.contact is blocked (wh-blocked)',
        webhooks: [R.blocked],
      });
      expect(t2.stats()).toMatchObject({ skippedBlocked: 1, noSubscriber: 1 });
    } finally {
      await t2.close();
    }
    expect(mark()).toEqual(m); // nothing was sent anywhere
  });

  it('caches the list for ttlMs, shares one listing between concurrent sends, and picks up changes after it expires', async () => {
    let clock = Date.now();
    const t = newTarget({ ttlMs: 60_000, now: () => clock });
    const before = sim.stats().webhookLists;
    const results = await Promise.all(['f1', 'f2', 'f3', 'f4'].map((id) => t.send(upsert(id))));
    expect(results.every((r) => r.kind === 'delivered')).toBe(true);
    expect(sim.stats().webhookLists - before).toBe(1);
    // wh-upserts is now blocked: within the TTL the cached list still applies...
    sim.setWebhooks(registered().map((w) => (w.id === 'wh-upserts' ? { ...w, blocked: true } : w)));
    const seqA = lastSeq(rA);
    clock += 59_000;
    await t.send(upsert('f5'));
    expect(since(rA, seqA).map((d) => d.memberId)).toEqual(['f5']);
    expect(sim.stats().webhookLists - before).toBe(1);
    // ...and once it expires, the new list does.
    clock += 2_000;
    await t.send(upsert('f6'));
    expect(sim.stats().webhookLists - before).toBe(2);
    expect(since(rA, seqA).map((d) => d.memberId)).toEqual(['f5']);
    expect(t.stats().blocked.sort()).toEqual(['wh-blocked', 'wh-upserts']);
  });

  it('logs the list and the blocked webhooks without tokens or query strings, once per distinct list', async () => {
    const lines: Array<[string, string, Record<string, unknown> | undefined]> = [];
    const logger: ChannelWebhooksLogger = {
      info: (msg, meta) => lines.push(['info', msg, meta]),
      warn: (msg, meta) => lines.push(['warn', msg, meta]),
    };
    let clock = Date.now();
    const t = newTarget({ logger, ttlMs: 1_000, now: () => clock });
    await t.send(upsert('g1'));
    clock += 5_000;
    await t.send(upsert('g2')); // listed again, same list: not logged again
    expect(lines).toEqual([
      [
        'info',
        'channel webhooks listed',
        {
          registered: 5,
          contact: ['wh-upserts'],
          subscription: ['wh-upserts', 'wh-both'],
          deletes: ['wh-deletes', 'wh-both'],
          blocked: ['wh-blocked'],
          nonV5: [],
        },
      ],
      [
        'warn',
        'channel webhook is blocked by Channel Talk: replays skip it',
        {
          id: 'wh-blocked',
          name: 'Old CRM',
          url: rA.url,
          scopes: ['member.upserted.contact', 'member.deleted'],
          blocked: true,
        },
      ],
    ]);
    const text = JSON.stringify(lines);
    for (const secret of [...Object.values(TOKENS), 'secret-query', 'zz9', 'src=ct'])
      expect(text).not.toContain(secret);
  });

  it('bad credentials while listing propagate (the run pauses); other listing failures are retryable', async () => {
    const t = newTarget();
    sim.setCredentials('revoked', 'revoked');
    await expect(t.send(upsert('h1'))).rejects.toBeInstanceOf(BadCredentialsError);
    const unreachable = createChannelWebhooksClient({
      baseUrl: 'http://127.0.0.1:9',
      accessKey: KEY,
      accessSecret: SECRET,
      maxAttempts: 2,
      backoff: { initialMs: 5, maxMs: 5 },
    });
    const down = createChannelWebhooksTarget({ list: () => unreachable.list() });
    try {
      const r = await down.send(upsert('h2'));
      expect(r).toEqual({
        kind: 'retryable',
        reason: "listing the channel's webhooks failed: network error (ECONNREFUSED) after 2 attempts",
      });
      expect(down.stats().listingFailures).toBe(1);
    } finally {
      await down.close();
      await unreachable.close();
    }
  });

  it('an aborted caller stops waiting and the abort propagates', async () => {
    const t = newTarget();
    const ac = new AbortController();
    ac.abort(new Error('paused'));
    await expect(t.send({ ...upsert('i1'), signal: ac.signal })).rejects.toThrow('paused');
    rA.setDefaultBehaviour({ status: 200, delayMs: 2_000 });
    const ac2 = new AbortController();
    const pending = t.send({ ...upsert('i2'), signal: ac2.signal });
    setTimeout(() => ac2.abort(new Error('paused mid-flight')), 200);
    await expect(pending).rejects.toThrow('paused mid-flight');
  });

  it('with a signing secret every endpoint gets a signature that verifies, over its own body and timestamp', async () => {
    const secret = `whsec_${Buffer.alloc(32, 0x5a).toString('base64')}`;
    const t = newTarget({ signingSecret: secret });
    const seqA = lastSeq(rA);
    const seqB = lastSeq(rB);
    expect(await t.send(upsert('j1'))).toMatchObject({ kind: 'delivered', status: 200 });
    const got = [...since(rA, seqA), ...since(rB, seqB)];
    expect(got).toHaveLength(2);
    for (const d of got) {
      expect(verifyAsReceiver(secret, d)).toEqual({
        ok: true,
        webhookId: webhookId('t', 'j1', 'upsert'),
        timestamp: Number(d.headers['webhook-timestamp']),
      });
    }
  });
});
