import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createChannelClient, rateLimitWaitMs, type ChannelClientOptions } from '../../src/channel/client';
import { BadCredentialsError } from '../../src/channel/errors';
import { createRateLimiter } from '../../src/channel/rate-limiter';
import {
  startChannelSimulator,
  type ChannelFault,
  type ChannelSimulator,
  type ChannelSimulatorOptions,
} from '../../src/simulator/channel-simulator';
import type { ChannelUser, FetchResult } from '../../src/types';

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

const ODD_MEMBER_IDS = ['with space', 'a/b/c', 'user@example.com', 'q?x=1&y=2', 'hash#1', '한글회원', '100%', '+82 10-1234', '😀', '..', '%41'];

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

async function withSimulator<T>(extra: Partial<ChannelSimulatorOptions>, run: (sim: ChannelSimulator) => Promise<T>): Promise<T> {
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
    { name: 'another 4xx (400)', fault: { status: 400 }, expected: { kind: 'failed', reason: 'HTTP 400', attempts: 1 }, requests: 1 },
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

  it('fails a schema-invalid body with the field path, not its value', async () => {
    const result = await client.getUserByMemberId('bad-email');
    expect(result).toEqual({
      kind: 'failed',
      reason: 'malformed response: invalid user.email (invalid_type) after 3 attempts',
      attempts: 3,
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
      expect(await quick.getUserByMemberId('flaky')).toEqual({ kind: 'failed', reason: 'timeout after 2 attempts', attempts: 2 });
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
    expect(() => createChannelClient({ baseUrl: 'https://api.channel.io', accessKey: 'k', accessSecret: 's', ...extra })).toThrow();
  });
});
