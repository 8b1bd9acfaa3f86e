import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createChannelPacer } from '../../src/channel/channel-pacer';
import {
  createChannelClient,
  rateLimitWaitMs,
  readRateHeaders,
  type ChannelClientOptions,
} from '../../src/channel/client';
import { BadCredentialsError } from '../../src/channel/errors';
import { createRateLimiter } from '../../src/channel/rate-limiter';
import {
  startChannelSimulator,
  type ChannelFault,
  type ChannelSimulator,
  type ChannelSimulatorOptions,
} from '../../dev/simulator/channel-simulator';
import type { ChannelUser, FetchResult } from '../../src/domain/types';

const KEY = 'client-key';
const SECRET = 'client-secret-do-not-leak';
const EMAIL = 'private.person@example.com';

function user(memberId: string, extra: Partial<ChannelUser> = {}): ChannelUser {
  return {
    id: `u-${memberId}`,
    memberId,
    type: 'member',
    email: EMAIL,
    mobileNumber: '+821099998888',
    unsubscribeEmail: false,
    unsubscribeTexting: null,
    profile: { email: EMAIL, mobileNumber: '+821099998888' },
    ...extra,
  };
}

const ODD_MEMBER_IDS = [
  'with space',
  'a/b/c',
  'user@example.com',
  'q?x=1&y=2',
  'hash#1',
  '한글회원',
  '100%',
  '+82 10-1234',
  '😀',
  '..',
  '%41',
];

const USERS: ChannelUser[] = [
  user('plain', { veilId: 'v1', unknownTopLevel: { deep: [1, 'two'] }, tags: ['vip'], createdAt: 1730400000000 }),
  user('flaky'),
  user('legacy422'),
  ...ODD_MEMBER_IDS.map((id) => user(id)),
  // A field of the wrong type: the schema must reject it and the reason must not quote it.
  { memberId: 'bad-email', email: 12345 as unknown as string },
];

/** Test-speed defaults: tiny backoffs, short timeouts. */
function clientFor(sim: ChannelSimulator, extra: Partial<ChannelClientOptions> = {}) {
  return createChannelClient({
    baseUrl: sim.url,
    accessKey: KEY,
    accessSecret: SECRET,
    backoff: { initialMs: 5, maxMs: 20 },
    timeoutMs: 2_000,
    ...extra,
  });
}

async function withSimulator<T>(
  extra: Partial<ChannelSimulatorOptions>,
  run: (sim: ChannelSimulator) => Promise<T>,
): Promise<T> {
  const sim = await startChannelSimulator({ users: USERS, accessKey: KEY, accessSecret: SECRET, ...extra });
  try {
    return await run(sim);
  } finally {
    await sim.close();
  }
}

function expectSafeReason(result: FetchResult): void {
  if (result.kind !== 'failed') return;
  expect(result.reason).not.toContain(SECRET);
  expect(result.reason).not.toContain(EMAIL);
  expect(result.reason).not.toContain('private');
  expect(result.reason).not.toContain('12345');
}

describe('Channel Talk client against the simulator', () => {
  let sim: ChannelSimulator;
  let client: ReturnType<typeof createChannelClient>;
  beforeAll(async () => {
    sim = await startChannelSimulator({ users: USERS, accessKey: KEY, accessSecret: SECRET });
    client = clientFor(sim, { maxAttempts: 3 });
  });
  afterAll(async () => {
    await client.close();
    await sim.close();
  });
  beforeEach(() => sim.setFaults({}));

  it('returns the user with unknown fields passed through', async () => {
    const result = await client.getUserByMemberId('plain');
    expect(result).toEqual({ kind: 'found', user: USERS[0], attempts: 1 });
  });

  it('reports an absent member as not-found with its status', async () => {
    expect(await client.getUserByMemberId('ghost')).toEqual({ kind: 'not-found', status: 404, attempts: 1 });
  });

  const faultCases: Array<{ name: string; fault: ChannelFault; expected: Partial<FetchResult>; requests: number }> = [
    { name: '503 twice then success', fault: { status5xx: 2 }, expected: { kind: 'found', attempts: 3 }, requests: 3 },
    { name: 'a reset then success', fault: { reset: 1 }, expected: { kind: 'found', attempts: 2 }, requests: 2 },
    { name: 'malformed then success', fault: { malformed: 1 }, expected: { kind: 'found', attempts: 2 }, requests: 2 },
    {
      name: '503 forever',
      fault: { status5xx: 99 },
      expected: { kind: 'failed', reason: 'HTTP 503 after 3 attempts', attempts: 3 },
      requests: 3,
    },
    {
      name: '500 forever',
      fault: { status: 500 },
      expected: { kind: 'failed', reason: 'HTTP 500 after 3 attempts', attempts: 3 },
      requests: 3,
    },
    {
      name: 'malformed forever',
      fault: { malformed: 99 },
      expected: { kind: 'failed', reason: 'malformed response: invalid JSON after 3 attempts', attempts: 3 },
      requests: 3,
    },
    {
      name: 'resets forever',
      fault: { reset: 99 },
      expected: { kind: 'failed', attempts: 3 },
      requests: 3,
    },
    {
      name: 'another 4xx (400)',
      fault: { status: 400 },
      expected: { kind: 'failed', reason: 'HTTP 400', attempts: 1 },
      requests: 1,
    },
    {
      name: '422 (not a not-found status by default)',
      fault: { status: 422 },
      expected: { kind: 'failed', reason: 'HTTP 422', attempts: 1 },
      requests: 1,
    },
  ];

  it.each(faultCases)('handles $name', async ({ fault, expected, requests }) => {
    sim.setFaults({ flaky: fault });
    const before = sim.stats().byMember.get('flaky') ?? 0;
    const result = await client.getUserByMemberId('flaky');
    expect(result).toMatchObject(expected);
    expectSafeReason(result);
    expect((sim.stats().byMember.get('flaky') ?? 0) - before).toBe(requests);
  });

  it('names a network failure by its code only', async () => {
    sim.setFaults({ flaky: { reset: 99 } });
    const result = await client.getUserByMemberId('flaky');
    expect(result.kind).toBe('failed');
    if (result.kind === 'failed') expect(result.reason).toMatch(/^network error \([A-Z_]+\) after 3 attempts$/);
  });

  it('fails a schema-invalid body at once (the same answer would come back) with the field path, not its value', async () => {
    const result = await client.getUserByMemberId('bad-email');
    expect(result).toEqual({
      kind: 'failed',
      reason: 'malformed response: invalid user.email (invalid_type)',
      attempts: 1,
    });
    expectSafeReason(result);
  });

  it('treats configured statuses (422) as not-found', async () => {
    const lenient = clientFor(sim, { notFoundStatuses: [404, 422] });
    try {
      sim.setFaults({ legacy422: { status: 422 } });
      expect(await lenient.getUserByMemberId('legacy422')).toEqual({ kind: 'not-found', status: 422, attempts: 1 });
      expect(await lenient.getUserByMemberId('ghost')).toEqual({ kind: 'not-found', status: 404, attempts: 1 });
    } finally {
      await lenient.close();
    }
  });

  it.each(ODD_MEMBER_IDS)('sends memberId %j intact', async (memberId) => {
    const result = await client.getUserByMemberId(memberId);
    expect(result.kind).toBe('found');
    if (result.kind === 'found') expect(result.user.memberId).toBe(memberId);
    expect(sim.stats().byMember.get(memberId)).toBeGreaterThanOrEqual(1);
  });

  it('retries a timeout and then succeeds', async () => {
    const quick = clientFor(sim, { timeoutMs: 100, maxAttempts: 3 });
    try {
      sim.setFaults({ flaky: { delayMs: 400 } });
      const pending = quick.getUserByMemberId('flaky');
      // Let the first attempt arrive (and time out), then make the member answer quickly again.
      const before = sim.stats().byMember.get('flaky') ?? 0;
      while ((sim.stats().byMember.get('flaky') ?? 0) === before) await new Promise((r) => setTimeout(r, 5));
      sim.setFaults({});
      expect(await pending).toMatchObject({ kind: 'found', attempts: 2 });
    } finally {
      await quick.close();
    }
  });

  it('fails after maxAttempts timeouts', async () => {
    const quick = clientFor(sim, { timeoutMs: 50, maxAttempts: 2 });
    try {
      sim.setFaults({ flaky: { delayMs: 300 } });
      expect(await quick.getUserByMemberId('flaky')).toEqual({
        kind: 'failed',
        reason: 'timeout after 2 attempts',
        attempts: 2,
      });
    } finally {
      await quick.close();
    }
  });

  it('throws BadCredentialsError at once on 401, without the secret in the message', async () => {
    const wrong = clientFor(sim, { accessSecret: 'wrong-secret-value' });
    try {
      const before = sim.stats().byMember.get('plain') ?? 0;
      const err = await wrong.getUserByMemberId('plain').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadCredentialsError);
      expect((err as BadCredentialsError).status).toBe(401);
      expect((err as Error).message).not.toContain('wrong-secret-value');
      expect(sim.stats().byMember.get('plain')).toBe(before + 1);
    } finally {
      await wrong.close();
    }
  });

  it.each([403])('throws BadCredentialsError on %i', async (status) => {
    sim.setFaults({ flaky: { status } });
    await expect(client.getUserByMemberId('flaky')).rejects.toMatchObject({ name: 'BadCredentialsError', status });
  });

  it('stops when its signal aborts during a backoff', async () => {
    const slowRetry = clientFor(sim, { backoff: { initialMs: 5_000 }, maxAttempts: 5 });
    try {
      sim.setFaults({ flaky: { status: 503 } });
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('cancelled')), 50);
      const start = performance.now();
      await expect(slowRetry.getUserByMemberId('flaky', { signal: controller.signal })).rejects.toThrow('cancelled');
      expect(performance.now() - start).toBeLessThan(1000);
    } finally {
      await slowRetry.close();
    }
  });

  it('awaits the limiter before every attempt', async () => {
    const limiter = createRateLimiter(20); // 50 ms apart
    sim.setFaults({ flaky: { status5xx: 2 } });
    const start = performance.now();
    const result = await client.getUserByMemberId('flaky', { limiter });
    expect(result).toMatchObject({ kind: 'found', attempts: 3 });
    expect(performance.now() - start).toBeGreaterThanOrEqual(95);
  });
});

describe('Channel Talk client and 429s', () => {
  it('waits for Retry-After, holds the limiter, then succeeds', async () => {
    await withSimulator({ rateLimit: { perSecond: 1, burst: 1 } }, async (sim) => {
      const client = clientFor(sim);
      const limiter = createRateLimiter(undefined);
      try {
        expect((await client.getUserByMemberId('plain', { limiter })).kind).toBe('found');
        const start = performance.now();
        const result = await client.getUserByMemberId('plain', { limiter });
        expect(result).toMatchObject({ kind: 'found', attempts: 2 });
        expect(performance.now() - start).toBeGreaterThanOrEqual(900);
        expect(sim.stats().rateLimited).toBe(1);
      } finally {
        await client.close();
      }
    });
  });

  it('without Retry-After waits until x-ratelimit-reset, then succeeds', async () => {
    await withSimulator({ rateLimit: { perSecond: 1, burst: 1 }, retryAfter: false }, async (sim) => {
      const client = clientFor(sim, { backoff: { initialMs: 1, maxMs: 1 } });
      try {
        expect((await client.getUserByMemberId('plain')).kind).toBe('found');
        const result = await client.getUserByMemberId('plain');
        // With 1 ms backoffs the only way to succeed in two requests is to have waited for the reset.
        expect(result).toMatchObject({ kind: 'found', attempts: 2 });
        expect(sim.stats().rateLimited).toBe(1);
      } finally {
        await client.close();
      }
    });
  });

  it('fails a lookup once max429Waits is used up, without touching maxAttempts', async () => {
    await withSimulator({ rateLimit: { perSecond: 1, burst: 1 } }, async (sim) => {
      const client = clientFor(sim, { max429Waits: 0, maxAttempts: 1 });
      try {
        await client.getUserByMemberId('plain');
        expect(await client.getUserByMemberId('plain')).toEqual({
          kind: 'failed',
          reason: 'rate limited (HTTP 429) 1 times',
          attempts: 1,
        });
      } finally {
        await client.close();
      }
    });
  });
});

describe('Channel Talk client and the pacer (issue 24)', () => {
  it('feeds every answer to the pacer, which keeps the reserve: lookups wait instead of meeting a 429', async () => {
    await withSimulator({ rateLimit: { perSecond: 2, burst: 3 } }, async (sim) => {
      const pacer = createChannelPacer();
      const client = clientFor(sim, { pacer });
      try {
        expect((await client.getUserByMemberId('plain')).kind).toBe('found');
        expect(pacer.snapshot()).toMatchObject({ limit: 3, remaining: 2, rateLimited: 0, warnings: 0 });
        for (let i = 0; i < 5; i++) expect(await client.getUserByMemberId('plain')).toMatchObject({ attempts: 1 });
        expect(sim.stats().rateLimited).toBe(0);
        expect(pacer.snapshot().givingWay).toBe(true);
      } finally {
        await client.close();
      }
    });
  });

  it('with no reserve a 429 still reaches the pacer (counted, and the worker held)', async () => {
    await withSimulator({ rateLimit: { perSecond: 1, burst: 1 } }, async (sim) => {
      const pacer = createChannelPacer({ reserveFraction: 0 });
      const client = clientFor(sim, { pacer });
      try {
        await client.getUserByMemberId('plain');
        expect(await client.getUserByMemberId('plain')).toMatchObject({ kind: 'found', attempts: 2 });
        expect(pacer.snapshot()).toMatchObject({ limit: 1, rateLimited: 1 });
      } finally {
        await client.close();
      }
    });
  });

  it('while the pacer holds the worker the budget limiter grants nothing: what waited goes out spaced, not at once', async () => {
    const arrivals: number[] = [];
    const lookupUser = (memberId: string) => {
      arrivals.push(performance.now());
      return user(memberId);
    };
    await withSimulator({ lookupUser }, async (sim) => {
      const pacer = createChannelPacer({ budget: 20 });
      const client = clientFor(sim, { pacer });
      const limiter = createRateLimiter(20); // the batch's budget: 50 ms apart
      try {
        await client.getUserByMemberId('served-by-lookup', { limiter });
        // A 429 elsewhere on this worker held it for 300 ms; six lookups of the batch wait meanwhile.
        const heldAt = performance.now();
        pacer.holdUntil(Date.now() + 300);
        const lookups = Array.from({ length: 6 }, (_, i) => client.getUserByMemberId(`m-${i}`, { limiter }));
        await Promise.all(lookups);
        const after = arrivals.slice(1);
        expect(after[0]! - heldAt).toBeGreaterThanOrEqual(280);
        // Released one budget interval apart (a late timer may pair two, a stalled test process three): before, the six permits the limiter
        // granted during the hold all went out the moment it ended, a burst an empty bucket answers with 429s.
        const mostWithin25ms = Math.max(...after.map((t) => after.filter((u) => u >= t && u - t < 25).length));
        expect(mostWithin25ms).toBeLessThanOrEqual(3);
        expect(after[5]! - after[0]!).toBeGreaterThanOrEqual(200);
      } finally {
        await client.close();
      }
    });
  });

  it('grace period: a warned answer is used, not retried, and holds the worker like a 429', async () => {
    await withSimulator({ rateLimit: { perSecond: 1, burst: 1 }, grace: true, retryAfter: false }, async (sim) => {
      const pacer = createChannelPacer();
      let warnings = 0;
      const client = clientFor(sim, { pacer, onThrottleWarning: () => warnings++ });
      try {
        expect((await client.getUserByMemberId('plain')).kind).toBe('found');
        const warned = await client.getUserByMemberId('plain');
        expect(warned).toMatchObject({ kind: 'found', attempts: 1 });
        expect(warnings).toBe(1);
        expect(pacer.snapshot()).toMatchObject({ warnings: 1, givingWay: true });
        // The next request waits for x-ratelimit-reset (the next whole second at the latest).
        const start = performance.now();
        await client.getUserByMemberId('plain');
        expect(performance.now() - start).toBeGreaterThanOrEqual(1);
        expect(sim.stats().requests).toBe(3);
      } finally {
        await client.close();
      }
    });
  });
});

describe('readRateHeaders', () => {
  it.each([
    [
      'all three',
      200,
      { 'x-ratelimit-limit': '1000', 'x-ratelimit-remaining': '998', 'x-ratelimit-reset': '1' },
      { limit: 1000, remaining: 998, warned: false, rateLimited: false },
    ],
    [
      'grace warning',
      200,
      { 'x-ratelimit-limit': '20', 'x-ratelimit-remaining': '0', 'x-ratelimit-will-be-throttled': 'true' },
      { limit: 20, remaining: 0, warned: true, rateLimited: false },
    ],
    ['warning in capitals', 200, { 'x-ratelimit-will-be-throttled': 'TRUE' }, { warned: true, rateLimited: false }],
    ['warning false', 200, { 'x-ratelimit-will-be-throttled': 'false' }, { warned: false, rateLimited: false }],
    ['a 429 without headers', 429, {}, { warned: false, rateLimited: true }],
    [
      'unreadable numbers are left out',
      200,
      { 'x-ratelimit-limit': 'many', 'x-ratelimit-remaining': '' },
      { warned: false, rateLimited: false },
    ],
  ])('%s', (_name, status, headers, expected) => {
    expect(readRateHeaders(status, headers)).toEqual(expected);
  });
});

describe('rateLimitWaitMs', () => {
  const now = Date.parse('2024-11-12T06:37:00Z');
  it.each([
    ['Retry-After seconds', { 'retry-after': '2' }, 2000],
    ['Retry-After zero', { 'retry-after': '0' }, 0],
    ['Retry-After HTTP date', { 'retry-after': new Date(now + 3000).toUTCString() }, 3000],
    ['Retry-After date in the past', { 'retry-after': new Date(now - 3000).toUTCString() }, 0],
    ['Retry-After wins over reset', { 'retry-after': '1', 'x-ratelimit-reset': String(now / 1000 + 30) }, 1000],
    ['x-ratelimit-reset epoch seconds', { 'x-ratelimit-reset': String(now / 1000 + 5) }, 5000],
    ['x-ratelimit-reset epoch milliseconds', { 'x-ratelimit-reset': String(now + 4000) }, 4000],
    ['x-ratelimit-reset in the past', { 'x-ratelimit-reset': String(now / 1000 - 5) }, undefined],
    ['garbage Retry-After, no reset', { 'retry-after': 'soon' }, undefined],
    ['no hints', {}, undefined],
  ])('%s', (_label, headers, expected) => {
    expect(rateLimitWaitMs(headers, now)).toBe(expected);
  });
});

describe('createChannelClient options', () => {
  it.each([
    ['a non-http baseUrl', { baseUrl: 'ftp://example.com' }],
    ['a non-URL baseUrl', { baseUrl: 'api.channel.io' }],
    ['zero maxAttempts', { maxAttempts: 0 }],
    ['a fractional timeout', { timeoutMs: 1.5 }],
  ])('rejects %s', (_label, extra) => {
    expect(() =>
      createChannelClient({ baseUrl: 'https://api.channel.io', accessKey: 'k', accessSecret: 's', ...extra }),
    ).toThrow();
  });
});

// What the simulator never does: bodies in pieces, with a byte order mark, too long to drain, cut halfway.
describe('Channel Talk client: the HTTP exchange', () => {
  type Handler = (req: IncomingMessage, res: ServerResponse) => void;
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** A plain HTTP server on 127.0.0.1 that counts its TCP connections and the requests it saw closed early. */
  async function rawServer(handler: Handler) {
    const paths: string[] = [];
    let connections = 0;
    let cutRequests = 0;
    const server = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.on('close', () => {
        if (!res.writableFinished) cutRequests++;
      });
      handler(req, res);
    });
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    return { url, paths, connections: () => connections, cutRequests: () => cutRequests };
  }

  function rawClient(url: string, extra: Partial<ChannelClientOptions> = {}) {
    const client = createChannelClient({
      baseUrl: url,
      accessKey: KEY,
      accessSecret: SECRET,
      backoff: { initialMs: 5, maxMs: 20 },
      ...extra,
    });
    closers.push(() => client.close());
    return client;
  }

  const userBody = (memberId: string) => JSON.stringify({ user: user(memberId), online: null });
  const memberOf = (req: IncomingMessage) => decodeURIComponent((req.url ?? '').replace(/^.*\/@/, ''));
  const until = async (check: () => boolean) => {
    while (!check()) await new Promise((r) => setTimeout(r, 5));
  };

  it('reuses one keep-alive connection across found, not-found and failed answers', async () => {
    const server = await rawServer((req, res) => {
      const memberId = memberOf(req);
      if (memberId.startsWith('gone'))
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}');
      else if (memberId.startsWith('odd')) res.writeHead(400).end('bad request, and a body to drain');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(userBody(memberId));
    });
    const client = rawClient(server.url);
    const results: FetchResult[] = [];
    const memberIds = Array.from({ length: 8 }, (_, i) => [`m${i}`, `gone${i}`, `odd${i}`]).flat();
    for (const memberId of memberIds) results.push(await client.getUserByMemberId(memberId));
    expect(results.map((r) => r.kind)).toEqual(
      memberIds.map((id) => (id.startsWith('m') ? 'found' : id.startsWith('gone') ? 'not-found' : 'failed')),
    );
    expect(results[2]).toEqual({ kind: 'failed', reason: 'HTTP 400', attempts: 1 });
    // undici's pool may hand the next request to a second socket while the first is being released; what
    // matters is that 24 lookups did not need 24 connections: every body was read to its end.
    expect(server.connections()).toBeLessThanOrEqual(2);
  });

  it('reads a body sent in pieces, and one starting with a byte order mark', async () => {
    const server = await rawServer((req, res) => {
      const body = Buffer.from(userBody(memberOf(req)), 'utf8');
      const bytes = memberOf(req) === 'bom' ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]) : body;
      res.writeHead(200, { 'content-type': 'application/json' });
      // Split inside the byte order mark and inside a multi-byte character: the body is decoded whole.
      const multiByte = bytes.indexOf(Buffer.from('한'));
      const cut = [2, multiByte > 0 ? multiByte + 1 : 30, bytes.length - 3];
      res.write(bytes.subarray(0, cut[0]));
      setTimeout(() => res.write(bytes.subarray(cut[0], cut[1])), 20);
      setTimeout(() => res.write(bytes.subarray(cut[1], cut[2])), 40);
      setTimeout(() => res.end(bytes.subarray(cut[2])), 60);
    });
    const client = rawClient(server.url);
    expect(await client.getUserByMemberId('한글회원')).toEqual({ kind: 'found', user: user('한글회원'), attempts: 1 });
    expect(await client.getUserByMemberId('bom')).toEqual({ kind: 'found', user: user('bom'), attempts: 1 });
  });

  it('answers a non-2xx status whose body is too long to drain by the status, and goes on', async () => {
    const big = 'x'.repeat(300 * 1024);
    const server = await rawServer((req, res) => {
      const memberId = memberOf(req);
      if (memberId === 'declared') res.writeHead(404, { 'content-length': String(big.length) }).end(big);
      else if (memberId === 'chunked')
        res.writeHead(404).end(big); // no content-length: counted as it arrives
      else res.writeHead(200).end(userBody(memberId));
    });
    const client = rawClient(server.url);
    expect(await client.getUserByMemberId('declared')).toEqual({ kind: 'not-found', status: 404, attempts: 1 });
    expect(await client.getUserByMemberId('chunked')).toEqual({ kind: 'not-found', status: 404, attempts: 1 });
    expect(await client.getUserByMemberId('after')).toMatchObject({ kind: 'found', attempts: 1 });
  });

  it('keeps the status verdict when a 503 body breaks off, and retries', async () => {
    let calls = 0;
    const server = await rawServer((req, res) => {
      if (++calls === 1) {
        res.writeHead(503, { 'content-length': '100' });
        res.write('only ten b');
        setTimeout(() => res.destroy(), 20);
      } else res.writeHead(200).end(userBody(memberOf(req)));
    });
    const client = rawClient(server.url, { maxAttempts: 1 });
    expect(await client.getUserByMemberId('m1')).toEqual({
      kind: 'failed',
      reason: 'HTTP 503 after 1 attempts',
      attempts: 1,
    });
  });

  it('times out a 200 whose body stalls, as a retryable timeout', async () => {
    const server = await rawServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(userBody(memberOf(req)).slice(0, 20)); // and never the rest
    });
    const client = rawClient(server.url, { timeoutMs: 100, maxAttempts: 2 });
    const started = performance.now();
    expect(await client.getUserByMemberId('m1')).toEqual({
      kind: 'failed',
      reason: 'timeout after 2 attempts',
      attempts: 2,
    });
    expect(performance.now() - started).toBeLessThan(2_000);
    await until(() => server.cutRequests() === 2);
  });

  it("rejects with the signal's reason when the signal aborts mid-request, and cuts the request", async () => {
    const server = await rawServer(() => undefined); // never answers
    const client = rawClient(server.url);
    const controller = new AbortController();
    const pending = client.getUserByMemberId('m1', { signal: controller.signal });
    await until(() => server.paths.length === 1);
    controller.abort(new Error('batch paused'));
    await expect(pending).rejects.toThrow('batch paused');
    await until(() => server.cutRequests() === 1);
  });

  it('rejects at once, sending nothing, when the signal is already aborted', async () => {
    const server = await rawServer((req, res) => res.writeHead(200).end(userBody(memberOf(req))));
    const client = rawClient(server.url);
    await expect(client.getUserByMemberId('m1', { signal: AbortSignal.abort(new Error('already')) })).rejects.toThrow(
      'already',
    );
    expect(server.paths).toEqual([]);
  });

  it('many lookups share one signal: those done are untouched by its abort, those in flight end with its reason', async () => {
    const server = await rawServer((req, res) => {
      if (memberOf(req).startsWith('slow')) return; // left hanging until aborted
      setTimeout(() => res.writeHead(200).end(userBody(memberOf(req))), 5);
    });
    const client = rawClient(server.url);
    const controller = new AbortController();
    // One listener on the shared signal, not one per request in flight (Node warns past 10 on one signal).
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    const quick = await Promise.all(
      Array.from({ length: 40 }, (_, i) => client.getUserByMemberId(`m${i}`, { signal: controller.signal })),
    );
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', onWarning);
    expect(warnings).toEqual([]);
    expect(quick.every((r) => r.kind === 'found')).toBe(true);
    const slow = Array.from({ length: 3 }, (_, i) =>
      client.getUserByMemberId(`slow${i}`, { signal: controller.signal }).catch((e: unknown) => e),
    );
    await until(() => server.paths.filter((p) => p.includes('slow')).length === 3);
    controller.abort(new Error('stop'));
    expect((await Promise.all(slow)).map((e) => (e as Error).message)).toEqual(['stop', 'stop', 'stop']);
  });

  it("keeps a base URL's path and encodes the memberId as before", async () => {
    const server = await rawServer((req, res) => res.writeHead(200).end(userBody(memberOf(req))));
    const client = rawClient(`${server.url}/proxy/channel//`);
    for (const memberId of ODD_MEMBER_IDS)
      expect(await client.getUserByMemberId(memberId)).toMatchObject({ kind: 'found' });
    expect(server.paths).toEqual(ODD_MEMBER_IDS.map((id) => `/proxy/channel/open/v5/users/@${encodeURIComponent(id)}`));
  });
});
