import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  startWebhookReceiver,
  type ReceiverBehaviour,
  type WebhookReceiver,
} from '../../dev/simulator/webhook-receiver';
import { parseRetryAfterMs } from '../../src/http/retry-after';
import { buildDeletePayload, buildUpsertPayload, type ReplayPayload } from '../../src/webhook/payload';
import {
  classifyStatus,
  createWebhookSender,
  type WebhookSender,
  type WebhookSenderOptions,
} from '../../src/webhook/sender';
import { scopedWebhookId, webhookId } from '../../src/webhook/webhook-id';
import type { SendResult } from '../../src/domain/types';

// Everything opened by a test is closed after it, so a failing assertion cannot leave a server running.
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function receiver(opts?: Parameters<typeof startWebhookReceiver>[0]): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver(opts);
  cleanups.push(() => r.close());
  return r;
}

function sender(o: WebhookSenderOptions): WebhookSender {
  const s = createWebhookSender(o);
  cleanups.push(() => s.close());
  return s;
}

function upsertFor(memberId: string): ReplayPayload {
  return buildUpsertPayload({ memberId, type: 'member', email: `${memberId}@example.com`, extra: { a: 1 } });
}

const TOKEN = 'tok en/&=?+%한';

describe('webhook sender against the simulated receiver', () => {
  it('delivers with token, webhook-id, content-type, user-agent and the exact body', async () => {
    const r = await receiver();
    const s = sender({ url: r.url, token: TOKEN });
    const payload = upsertFor('m-1');
    const id = webhookId('run', 'm-1', 'upsert');

    const result = await s.send({ webhookId: id, payload });

    expect(result).toEqual({ kind: 'delivered', status: 200 });
    const [d] = r.deliveries();
    expect(r.deliveries()).toHaveLength(1);
    expect(d).toMatchObject({
      token: TOKEN,
      query: {},
      webhookId: id,
      contentType: 'application/json',
      userAgent: 'webhook-backfill',
      event: 'upsert',
      memberId: 'm-1',
      status: 200,
    });
    expect(d?.body).toStrictEqual(JSON.parse(JSON.stringify(payload)));
    expect(r.accepted()).toHaveLength(1);
  });

  it('keeps the query string of the registered URL', async () => {
    const r = await receiver();
    const s = sender({ url: `${r.url}?tenant=acme&v=2`, token: 'secret' });

    expect(await s.send({ webhookId: 'msg_x', payload: upsertFor('m-1') })).toMatchObject({ kind: 'delivered' });
    expect(r.deliveries()[0]).toMatchObject({ token: 'secret', query: { tenant: 'acme', v: '2' } });
  });

  it('keeps the registered query string byte for byte, replacing only a `token` parameter (table)', async () => {
    const seen: string[] = [];
    const raw = createServer((req, res) => {
      seen.push(req.url ?? '');
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => raw.close(() => resolve())));
    const base = `http://127.0.0.1:${(raw.address() as AddressInfo).port}/h`;
    const CASES: Array<[query: string, token: string | undefined, path: string]> = [
      ['', 'a b', '/h?token=a%20b'],
      ['?x=a%20b&y=1+2', 't', '/h?x=a%20b&y=1+2&token=t'],
      ['?flag&empty=', 't', '/h?flag&empty=&token=t'],
      ['?token=old&keep=1', 'new', '/h?keep=1&token=new'],
      ['?to%6Ben=old&k=%E2%82%AC', 'n', '/h?k=%E2%82%AC&token=n'],
      ['?x=a%20b', undefined, '/h?x=a%20b'],
    ];
    for (const [query, token, path] of CASES) {
      const s = sender({ url: `${base}${query}`, ...(token === undefined ? {} : { token }) });
      expect(await s.send({ webhookId: 'msg_q', payload: upsertFor('m-q') }), query).toMatchObject({
        kind: 'delivered',
        status: 204,
      });
      expect(seen.at(-1), query).toBe(path);
    }
  });

  it("names the body's event as configured (WEBHOOK_EVENT_UPSERT / WEBHOOK_EVENT_DELETE); unset: upsert / delete", async () => {
    const r = await receiver();
    const named = sender({ url: r.url, eventNames: { upsert: 'member.upserted.contact', delete: 'member.deleted' } });
    const plain = sender({ url: r.url });
    const gone = buildDeletePayload({
      stored: { memberId: 'm-d', email: null, mobileNumber: null, unsubscribeEmail: null, unsubscribeTexting: null },
    });
    for (const s of [named, plain]) {
      await s.send({ webhookId: 'msg_e', payload: upsertFor('m-e') });
      await s.send({ webhookId: 'msg_d', payload: gone });
    }
    expect(r.deliveries().map((d) => d.event)).toEqual([
      'member.upserted.contact',
      'member.deleted',
      'upsert',
      'delete',
    ]);
  });

  describe('WEBHOOK_EVENT_NAMES=scopes and WEBHOOK_URL_SCOPES', () => {
    const C = 'member.upserted.contact';
    const S = 'member.upserted.subscription';
    const BOTH = ['email', 'unsubscribeEmail'] as const;

    it('a change of contact and consent is two deliveries, each named by its scope with its own stable id', async () => {
      const r = await receiver({ triggerEvents: [C, S, 'member.deleted'] });
      const s = sender({ url: r.url, eventNaming: 'scopes' });
      const id = webhookId('run', 'm-2', 'upsert');
      const result = await s.send({ webhookId: id, payload: upsertFor('m-2'), fields: [...BOTH] });
      const ids = [scopedWebhookId(id, C), scopedWebhookId(id, S)];
      expect(result).toEqual({
        kind: 'delivered',
        status: 200,
        deliveries: [
          { event: C, webhookId: ids[0], endpoints: 1 },
          { event: S, webhookId: ids[1], endpoints: 1 },
        ],
      });
      expect(r.deliveries().map((d) => [d.event, d.webhookId, d.memberId, d.triggered])).toEqual([
        [C, ids[0], 'm-2', true],
        [S, ids[1], 'm-2', true],
      ]);
      // The same body otherwise: the user as fetched.
      expect(r.deliveries().map((d) => ({ ...(d.body as object), event: 'x' }))).toEqual([
        { ...upsertFor('m-2'), event: 'x' },
        { ...upsertFor('m-2'), event: 'x' },
      ]);
      // The dry run's plan says the same without sending.
      expect(await s.plan?.({ event: 'upsert', fields: [...BOTH], webhookId: id })).toEqual(result.deliveries);
      expect(r.deliveries()).toHaveLength(2);
    });

    it('a retry sends only the scope not yet accepted, with the same id', async () => {
      const r = await receiver({ behaviours: { 'm-3': { status: 503, times: 1 } } });
      const s = sender({ url: r.url, eventNaming: 'scopes' });
      const id = webhookId('run', 'm-3', 'upsert');
      const first = await s.send({ webhookId: id, payload: upsertFor('m-3'), fields: [...BOTH] });
      expect(first).toMatchObject({ kind: 'retryable', status: 503, reason: `${C}: HTTP 503` });
      expect(await s.send({ webhookId: id, payload: upsertFor('m-3'), fields: [...BOTH] })).toMatchObject({
        kind: 'delivered',
      });
      expect(r.deliveries().map((d) => [d.event, d.status, d.webhookId])).toEqual([
        [C, 503, scopedWebhookId(id, C)],
        [S, 200, scopedWebhookId(id, S)],
        [C, 200, scopedWebhookId(id, C)],
      ]);
    });

    it('sends only the scopes the URL stands for; a change under none of them is rejected, sending nothing', async () => {
      const r = await receiver({ triggerEvents: [C] });
      const s = sender({ url: r.url, eventNaming: 'scopes', scopes: [C] });
      const id = webhookId('run', 'm-4', 'upsert');
      expect(await s.send({ webhookId: id, payload: upsertFor('m-4'), fields: [...BOTH] })).toMatchObject({
        kind: 'delivered',
        deliveries: [{ event: C, webhookId: scopedWebhookId(id, C), endpoints: 1 }],
      });
      expect(await s.send({ webhookId: 'msg_c', payload: upsertFor('m-5'), fields: ['unsubscribeTexting'] })).toEqual({
        kind: 'rejected',
        status: 0,
        reason: `the endpoint stands for ${C}: none of ${S}`,
        deliveries: [],
      });
      expect(r.deliveries().map((d) => [d.memberId, d.event, d.triggered])).toEqual([['m-4', C, true]]);
    });

    it('the notice naming sends one delivery with the member id, as before, and records no per-scope deliveries', async () => {
      const r = await receiver({ triggerEvents: [C, S] });
      const s = sender({ url: r.url });
      const id = webhookId('run', 'm-6', 'upsert');
      expect(await s.send({ webhookId: id, payload: upsertFor('m-6'), fields: [...BOTH] })).toEqual({
        kind: 'delivered',
        status: 200,
      });
      expect(await s.plan?.({ event: 'upsert', fields: [...BOTH], webhookId: id })).toBeUndefined();
      // ... which a trigger set to particular scopes ignores: what WEBHOOK_EVENT_NAMES=scopes is for.
      expect(r.deliveries().map((d) => [d.event, d.webhookId, d.triggered])).toEqual([['upsert', id, false]]);
    });
  });

  it('sends no token parameter when there is no token', async () => {
    const r = await receiver();
    const s = sender({ url: r.url });
    expect(await s.send({ webhookId: 'msg_x', payload: upsertFor('m-1') })).toMatchObject({ kind: 'delivered' });
    expect(r.deliveries()[0]?.token).toBeNull();
  });

  const statusCases: Array<{ name: string; behaviour: ReceiverBehaviour; expected: SendResult }> = [
    { name: '201 is delivered', behaviour: { status: 201 }, expected: { kind: 'delivered', status: 201 } },
    {
      name: '400 is rejected',
      behaviour: { status: 400 },
      expected: { kind: 'rejected', status: 400, reason: 'HTTP 400' },
    },
    {
      name: '401 is rejected',
      behaviour: { status: 401 },
      expected: { kind: 'rejected', status: 401, reason: 'HTTP 401' },
    },
    {
      name: '302 is rejected',
      behaviour: { status: 302 },
      expected: { kind: 'rejected', status: 302, reason: 'HTTP 302' },
    },
    {
      name: '503 is retryable',
      behaviour: { status: 503 },
      expected: { kind: 'retryable', status: 503, reason: 'HTTP 503' },
    },
    {
      name: '500 is retryable',
      behaviour: { status: 500 },
      expected: { kind: 'retryable', status: 500, reason: 'HTTP 500' },
    },
    {
      name: '408 is retryable',
      behaviour: { status: 408 },
      expected: { kind: 'retryable', status: 408, reason: 'HTTP 408' },
    },
    {
      name: '429 with Retry-After is retryable with the delay',
      behaviour: { status: 429, retryAfterSeconds: 7 },
      expected: { kind: 'retryable', status: 429, retryAfterMs: 7000, reason: 'HTTP 429' },
    },
    {
      name: '503 with Retry-After 0',
      behaviour: { status: 503, retryAfterSeconds: 0 },
      expected: { kind: 'retryable', status: 503, retryAfterMs: 0, reason: 'HTTP 503' },
    },
  ];
  it.each(statusCases)('$name', async ({ behaviour, expected }) => {
    const r = await receiver({ defaultBehaviour: behaviour });
    const s = sender({ url: r.url, token: TOKEN });

    const result = await s.send({ webhookId: 'msg_x', payload: upsertFor('m-1') });

    expect(result).toStrictEqual(expected);
    expect(r.deliveries().map((d) => d.status)).toEqual([behaviour.status]);
    if (result.kind !== 'delivered') expect(result.reason).not.toContain('tok');
  });

  it('gives up on a slow receiver after timeoutMs as retryable', async () => {
    const r = await receiver({ defaultBehaviour: { status: 200, delayMs: 5_000 } });
    const s = sender({ url: r.url, token: TOKEN, timeoutMs: 150 });
    const started = Date.now();

    const result = await s.send({ webhookId: 'msg_x', payload: upsertFor('m-1') });

    expect(result).toStrictEqual({ kind: 'retryable', reason: 'timeout after 150ms' });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(r.deliveries()).toHaveLength(1);
  });

  it('reports a stopped receiver as retryable, and delivers again after start() on the same port', async () => {
    const r = await receiver();
    const s = sender({ url: r.url, token: TOKEN });
    // A first delivery leaves a keep-alive connection open; stop() must cut it too.
    expect(await s.send({ webhookId: 'msg_1', payload: upsertFor('m-1') })).toMatchObject({ kind: 'delivered' });

    await r.stop();
    const down = await s.send({ webhookId: 'msg_2', payload: upsertFor('m-2') });
    expect(down.kind).toBe('retryable');
    expect(down).not.toHaveProperty('status');
    // ECONNREFUSED is the expected case; a reset of a socket the client had not yet seen closed is also "down".
    expect(down.kind === 'retryable' && down.reason).toMatch(/^(ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET)$/);

    const port = r.port;
    await r.start();
    expect(r.port).toBe(port);
    expect(await s.send({ webhookId: 'msg_3', payload: upsertFor('m-3') })).toStrictEqual({
      kind: 'delivered',
      status: 200,
    });
    expect(r.deliveries().map((d) => d.memberId)).toEqual(['m-1', 'm-3']);
  });

  it('connection refused on a fresh sender is ECONNREFUSED', async () => {
    const r = await receiver();
    await r.stop();
    const s = sender({ url: `${r.url}?secret=q`, token: TOKEN });
    const result = await s.send({ webhookId: 'msg_x', payload: upsertFor('m-1') });
    expect(result).toStrictEqual({ kind: 'retryable', reason: 'ECONNREFUSED' });
  });

  it('follows a `times` behaviour: 503 twice, then 200', async () => {
    const r = await receiver({ behaviours: { 'm-1': { status: 503, times: 2 } } });
    const s = sender({ url: r.url, token: TOKEN });
    const payload = upsertFor('m-1');
    const id = webhookId('run', 'm-1', 'upsert');

    const results: string[] = [];
    for (let i = 0; i < 3; i++) results.push((await s.send({ webhookId: id, payload })).kind);

    expect(results).toEqual(['retryable', 'retryable', 'delivered']);
    expect(r.deliveries().map((d) => [d.status, d.webhookId])).toEqual([
      [503, id],
      [503, id],
      [200, id],
    ]);
    expect(r.accepted()).toHaveLength(1);
  });

  it('rethrows when the caller aborts (cancellation is not a delivery outcome)', async () => {
    const r = await receiver({ defaultBehaviour: { status: 200, delayMs: 5_000 } });
    const s = sender({ url: r.url, timeoutMs: 10_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('cancelled by caller')), 50);

    await expect(s.send({ webhookId: 'msg_x', payload: upsertFor('m-1'), signal: controller.signal })).rejects.toThrow(
      'cancelled by caller',
    );
  });

  it('rejects invalid options without echoing their values', () => {
    expect(() => createWebhookSender({ url: 'ftp://x/?token=abc' })).toThrow(/url/);
    expect(() => createWebhookSender({ url: 'not a url' })).not.toThrow(/not a url/);
    expect(() => createWebhookSender({ url: 'http://127.0.0.1/', timeoutMs: 0 })).toThrow(/timeoutMs/);
  });
});

describe('simulated receiver', () => {
  it('answers a non-JSON body with 400 and records body null', async () => {
    const r = await receiver();
    const res = await fetch(`${r.url}?token=t`, {
      method: 'POST',
      body: 'not json',
      headers: { 'webhook-id': 'msg_y' },
    });
    expect(res.status).toBe(400);
    expect(r.deliveries()).toMatchObject([
      { seq: 1, status: 400, body: null, memberId: null, token: 't', webhookId: 'msg_y' },
    ]);
    expect(r.accepted()).toEqual([]);
  });

  it('keeps behaviour counters per memberId and lets behaviours change at run time', async () => {
    const r = await receiver({ defaultBehaviour: { status: 500, times: 1 } });
    const s = sender({ url: r.url });
    const send = async (memberId: string, payload = upsertFor(memberId)): Promise<string> =>
      (await s.send({ webhookId: 'msg_x', payload })).kind;

    expect(await send('a')).toBe('retryable');
    expect(await send('b')).toBe('retryable');
    expect(await send('a')).toBe('delivered');

    r.setBehaviour('a', { status: 410 });
    expect(await send('a')).toBe('rejected');
    r.setBehaviour('a', undefined);
    r.setDefaultBehaviour(undefined);
    expect(await send('a')).toBe('delivered');
    const deleted = buildDeletePayload({
      stored: { memberId: 'c', mobileNumber: null, email: null, unsubscribeEmail: null, unsubscribeTexting: null },
    });
    expect(await send('c', deleted)).toBe('delivered');
    expect(r.deliveries().map((d) => `${d.memberId}:${d.event}:${d.status}`)).toEqual([
      'a:upsert:500',
      'b:upsert:500',
      'a:upsert:200',
      'a:upsert:410',
      'a:upsert:200',
      'c:delete:200',
    ]);
  });
});

describe('status classification and Retry-After', () => {
  const now = Date.parse('2024-11-12T06:37:00Z');
  const retryAfterCases: Array<{ value: string | undefined; expected: number | undefined }> = [
    { value: undefined, expected: undefined },
    { value: '', expected: undefined },
    { value: '12', expected: 12_000 },
    { value: ' 3 ', expected: 3_000 },
    { value: 'Tue, 12 Nov 2024 06:37:30 GMT', expected: 30_000 },
    { value: 'Tue, 12 Nov 2024 06:36:00 GMT', expected: 0 },
    { value: 'soon', expected: undefined },
    { value: '-5', expected: undefined },
    { value: '1.5', expected: undefined },
    { value: 'Sunday, 12-Nov-24 06:37:10 GMT', expected: 10_000 },
  ];
  it.each(retryAfterCases)('Retry-After $value -> $expected', ({ value, expected }) => {
    expect(parseRetryAfterMs(value, now)).toBe(expected);
  });

  it('uses an HTTP-date Retry-After on a retryable status only', () => {
    expect(classifyStatus(503, 'Tue, 12 Nov 2024 06:38:00 GMT', now)).toStrictEqual({
      kind: 'retryable',
      status: 503,
      retryAfterMs: 60_000,
      reason: 'HTTP 503',
    });
    expect(classifyStatus(400, '5', now)).toStrictEqual({ kind: 'rejected', status: 400, reason: 'HTTP 400' });
  });
});

// What the simulated receiver never does: answer bodies too long to drain, bodies that stall or break off.
describe('webhook sender: the HTTP exchange', () => {
  /** A plain HTTP server on 127.0.0.1 that keeps each request's body and counts its TCP connections. */
  async function rawServer(handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void) {
    const bodies: Buffer[] = [];
    let connections = 0;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        bodies.push(body);
        handler(req, res, body);
      });
    });
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
      bodies,
      connections: () => connections,
    };
  }

  const memberOf = (body: Buffer) =>
    (JSON.parse(body.toString('utf8')) as { entity: { memberId: string } }).entity.memberId;

  it('reuses keep-alive connections across delivered, rejected and retryable answers', async () => {
    const server = await rawServer((_req, res, body) => {
      const memberId = memberOf(body);
      if (memberId.startsWith('busy')) res.writeHead(503, { 'retry-after': '2' }).end('try later');
      else if (memberId.startsWith('no')) res.writeHead(422).end('{"error":"unprocessable"}');
      else res.writeHead(200).end('ok');
    });
    const s = sender({ url: server.url, token: TOKEN });
    const results: SendResult[] = [];
    const memberIds = Array.from({ length: 8 }, (_, i) => [`m${i}`, `busy${i}`, `no${i}`]).flat();
    for (const memberId of memberIds)
      results.push(await s.send({ webhookId: `msg_${memberId}`, payload: upsertFor(memberId) }));
    expect(results.slice(0, 3)).toStrictEqual([
      { kind: 'delivered', status: 200 },
      { kind: 'retryable', status: 503, retryAfterMs: 2000, reason: 'HTTP 503' },
      { kind: 'rejected', status: 422, reason: 'HTTP 422' },
    ]);
    expect(results.map((r) => r.kind)).toEqual(
      memberIds.map((id) => (id.startsWith('m') ? 'delivered' : id.startsWith('busy') ? 'retryable' : 'rejected')),
    );
    // The exact bytes of each payload arrived, and 24 POSTs did not need 24 connections.
    expect(server.bodies.map((b) => b.toString('utf8'))).toEqual(memberIds.map((id) => JSON.stringify(upsertFor(id))));
    expect(server.connections()).toBeLessThanOrEqual(2);
  });

  it('answers by the status when the answer body is too long to drain, and goes on', async () => {
    const big = 'x'.repeat(200 * 1024);
    const server = await rawServer((_req, res, body) => {
      const memberId = memberOf(body);
      if (memberId === 'declared') res.writeHead(200, { 'content-length': String(big.length) }).end(big);
      else if (memberId === 'chunked') res.writeHead(500).end(big);
      else res.writeHead(200).end();
    });
    const s = sender({ url: server.url });
    expect(await s.send({ webhookId: 'msg_1', payload: upsertFor('declared') })).toStrictEqual({
      kind: 'delivered',
      status: 200,
    });
    expect(await s.send({ webhookId: 'msg_2', payload: upsertFor('chunked') })).toStrictEqual({
      kind: 'retryable',
      status: 500,
      reason: 'HTTP 500',
    });
    expect(await s.send({ webhookId: 'msg_3', payload: upsertFor('after') })).toStrictEqual({
      kind: 'delivered',
      status: 200,
    });
  });

  it('keeps the status verdict when the answer body stalls past the timeout or breaks off', async () => {
    const server = await rawServer((_req, res, body) => {
      const memberId = memberOf(body);
      res.writeHead(memberId === 'stall' ? 200 : 503, { 'content-length': '100' });
      res.write('only ten b');
      if (memberId === 'cut') setTimeout(() => res.destroy(), 20);
    });
    const s = sender({ url: server.url, timeoutMs: 150 });
    const started = Date.now();
    expect(await s.send({ webhookId: 'msg_1', payload: upsertFor('stall') })).toStrictEqual({
      kind: 'delivered',
      status: 200,
    });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await s.send({ webhookId: 'msg_2', payload: upsertFor('cut') })).toStrictEqual({
      kind: 'retryable',
      status: 503,
      reason: 'HTTP 503',
    });
  });

  it("rejects at once, sending nothing, when the caller's signal is already aborted", async () => {
    const server = await rawServer((_req, res) => res.writeHead(200).end());
    const s = sender({ url: server.url });
    await expect(
      s.send({ webhookId: 'msg_1', payload: upsertFor('m1'), signal: AbortSignal.abort(new Error('paused')) }),
    ).rejects.toThrow('paused');
    expect(server.bodies).toEqual([]);
  });

  it("a caller's signal that aborts after the answer changes nothing", async () => {
    const server = await rawServer((_req, res) => res.writeHead(200).end());
    const s = sender({ url: server.url });
    const controller = new AbortController();
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        s.send({ webhookId: `msg_${i}`, payload: upsertFor(`m${i}`), signal: controller.signal }),
      ),
    );
    controller.abort(new Error('late'));
    expect(results).toStrictEqual(Array.from({ length: 5 }, () => ({ kind: 'delivered', status: 200 })));
    expect(await s.send({ webhookId: 'msg_9', payload: upsertFor('m9') })).toStrictEqual({
      kind: 'delivered',
      status: 200,
    });
  });
});
