import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadChannelUsers, startChannelSimulator, type ChannelSimulator } from '../../dev/simulator/channel-simulator';
import type { ChannelUser } from '../../src/domain/types';

const KEY = 'sim-key';
const SECRET = 'sim-secret';
const AUTH = { 'x-access-key': KEY, 'x-access-secret': SECRET };

const alice: ChannelUser = {
  id: 'u-alice',
  memberId: 'alice',
  type: 'member',
  email: 'alice@example.com',
  mobileNumber: '+821012345678',
  unsubscribeEmail: false,
  unsubscribeTexting: true,
  profile: { name: 'Alice', email: 'alice@example.com' },
  customField: { nested: [1, 2, 3] },
};

function userPath(memberId: string): string {
  return `/open/v5/users/@${encodeURIComponent(memberId)}`;
}

async function get(sim: ChannelSimulator, path: string, headers: Record<string, string> = AUTH) {
  const res = await fetch(sim.url + path, { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe('channel simulator', () => {
  let sim: ChannelSimulator;
  beforeAll(async () => {
    sim = await startChannelSimulator({ users: [alice], accessKey: KEY, accessSecret: SECRET });
  });
  afterAll(() => sim.close());
  afterEach(() => {
    sim.setFaults({});
    sim.setRateLimit(undefined);
    sim.setCredentials(KEY, SECRET);
  });

  it('listens on a loopback URL with an OS-chosen port', () => {
    expect(sim.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(sim.url).not.toMatch(/:0$/);
  });

  it('serves a user in the real response shape, unknown fields included', async () => {
    const res = await get(sim, userPath('alice'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(JSON.parse(res.text)).toEqual({ user: alice, online: null });
  });

  it.each([
    ['an absent member', userPath('nobody'), 404, 'notFoundError'],
    ['an unknown route', '/open/v5/users/alice', 404, 'notFoundError'],
    ['another API', '/open/v5/groups', 404, 'notFoundError'],
    ['a broken escape', '/open/v5/users/@%E0%A4%A', 400, 'badRequestError'],
  ])('answers %s with %i', async (_label, path, status, type) => {
    const res = await get(sim, path);
    expect(res.status).toBe(status);
    expect(JSON.parse(res.text).type).toBe(type);
  });

  it.each([
    ['no credentials', {}],
    ['a wrong secret', { 'x-access-key': KEY, 'x-access-secret': 'nope' }],
    ['a wrong key', { 'x-access-key': 'nope', 'x-access-secret': SECRET }],
  ])('answers 401 to %s', async (_label, headers) => {
    const before = sim.stats().unauthorized;
    const res = await get(sim, userPath('alice'), headers);
    expect(res.status).toBe(401);
    expect(sim.stats().unauthorized).toBe(before + 1);
  });

  it('lets credentials be revoked and restored mid-run', async () => {
    sim.setCredentials('rotated', 'rotated-secret');
    expect((await get(sim, userPath('alice'))).status).toBe(401);
    sim.setCredentials(KEY, SECRET);
    expect((await get(sim, userPath('alice'))).status).toBe(200);
  });

  it('consumes faults in order: reset, then 503, then malformed, then normal', async () => {
    sim.setFaults({ alice: { reset: 1, status5xx: 2, malformed: 1 } });
    await expect(get(sim, userPath('alice'))).rejects.toThrow();
    expect((await get(sim, userPath('alice'))).status).toBe(503);
    expect((await get(sim, userPath('alice'))).status).toBe(503);
    const malformed = await get(sim, userPath('alice'));
    expect(malformed.status).toBe(200);
    expect(() => JSON.parse(malformed.text)).toThrow();
    expect((await get(sim, userPath('alice'))).status).toBe(200);
  });

  it('answers a fixed status forever', async () => {
    sim.setFaults({ alice: { status: 500 } });
    for (let i = 0; i < 3; i++) expect((await get(sim, userPath('alice'))).status).toBe(500);
  });

  it('delays every answer for a member with delayMs', async () => {
    sim.setFaults({ alice: { delayMs: 150 } });
    const start = performance.now();
    expect((await get(sim, userPath('alice'))).status).toBe(200);
    expect(performance.now() - start).toBeGreaterThanOrEqual(140);
  });

  it('counts requests per member and by outcome', async () => {
    const before = sim.stats();
    await get(sim, userPath('alice'));
    await get(sim, userPath('nobody'));
    sim.setFaults({ alice: { status5xx: 1 } });
    await get(sim, userPath('alice'));
    const after = sim.stats();
    expect(after.requests - before.requests).toBe(3);
    expect(after.ok - before.ok).toBe(1);
    expect(after.notFound - before.notFound).toBe(1);
    expect(after.faults - before.faults).toBe(1);
    expect(after.byMember.get('alice')! - (before.byMember.get('alice') ?? 0)).toBe(2);
  });

  it('rate limits with a token bucket and the x-ratelimit-* and Retry-After headers', async () => {
    sim.setRateLimit({ perSecond: 2, burst: 2 });
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await get(sim, userPath('alice')));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 429]);
    for (const a of answers) {
      expect(a.headers.get('x-ratelimit-limit')).toBe('2');
      expect(Number(a.headers.get('x-ratelimit-remaining'))).toBeGreaterThanOrEqual(0);
      expect(Number(a.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000));
    }
    const retryAfter = answers[2]!.headers.get('retry-after');
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(answers[0]!.headers.get('retry-after')).toBeNull();
  });

  it('omits Retry-After when configured to', async () => {
    const quiet = await startChannelSimulator({
      users: [alice],
      accessKey: KEY,
      accessSecret: SECRET,
      rateLimit: { perSecond: 1 },
      retryAfter: false,
    });
    try {
      expect((await get(quiet, userPath('alice'))).status).toBe(200);
      const limited = await get(quiet, userPath('alice'));
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBeNull();
      expect(limited.headers.get('x-ratelimit-reset')).toMatch(/^\d+$/);
      expect(quiet.stats().rateLimited).toBe(1);
    } finally {
      await quiet.close();
    }
  });

  it('grace period: over-limit calls succeed with x-ratelimit-will-be-throttled: true', async () => {
    const graced = await startChannelSimulator({
      users: [alice],
      accessKey: KEY,
      accessSecret: SECRET,
      rateLimit: { perSecond: 1, burst: 2 },
      grace: true,
    });
    try {
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(await get(graced, userPath('alice')));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
      expect(answers.map((a) => a.headers.get('x-ratelimit-will-be-throttled'))).toEqual([null, null, 'true']);
      expect(answers[2]!.headers.get('x-ratelimit-remaining')).toBe('0');
      expect(graced.stats()).toMatchObject({ ok: 3, rateLimited: 0, throttleWarnings: 1 });
      graced.setGrace(false);
      expect((await get(graced, userPath('alice'))).status).toBe(429);
    } finally {
      await graced.close();
    }
  });

  it("other credentials of the channel share the bucket and are counted apart from the job's", async () => {
    const shared = await startChannelSimulator({
      users: [alice],
      accessKey: KEY,
      accessSecret: SECRET,
      rateLimit: { perSecond: 1, burst: 2 },
      otherCredentials: [{ accessKey: 'prod-key', accessSecret: 'prod-secret' }],
    });
    try {
      const production = () =>
        fetch(`${shared.url}${userPath('someone')}`, {
          headers: { 'x-access-key': 'prod-key', 'x-access-secret': 'prod-secret' },
        });
      expect((await production()).status).toBe(200);
      expect((await get(shared, userPath('alice'))).status).toBe(200);
      const refused = await production();
      expect(refused.status).toBe(429);
      expect(refused.headers.get('x-ratelimit-limit')).toBe('2');
      const s = shared.stats();
      expect(s).toMatchObject({ requests: 1, ok: 1, rateLimited: 0 });
      expect(s.others).toEqual({ requests: 2, ok: 1, rateLimited: 1, throttleWarnings: 0 });
    } finally {
      await shared.close();
    }
  });

  it('tracks the most admitted requests in one second (429s excluded)', async () => {
    const limited = await startChannelSimulator({
      users: [alice],
      accessKey: KEY,
      accessSecret: SECRET,
      rateLimit: { perSecond: 5, burst: 5 },
    });
    try {
      const statuses = await Promise.all(
        Array.from({ length: 12 }, () => get(limited, userPath('alice')).then((r) => r.status)),
      );
      const admitted = statuses.filter((s) => s === 200).length;
      expect(admitted).toBeGreaterThanOrEqual(5);
      expect(admitted).toBeLessThan(12);
      const s = limited.stats();
      expect(s.rateLimited).toBe(12 - admitted);
      expect(s.maxPerSecond).toBeGreaterThanOrEqual(3);
      expect(s.maxPerSecond).toBeLessThanOrEqual(admitted);
    } finally {
      await limited.close();
    }
  });

  it('closes promptly even with a delayed answer in flight', async () => {
    const slow = await startChannelSimulator({
      users: [alice],
      accessKey: KEY,
      accessSecret: SECRET,
      faults: { alice: { delayMs: 10_000 } },
    });
    const pending = get(slow, userPath('alice')).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 50));
    const start = performance.now();
    await slow.close();
    expect(performance.now() - start).toBeLessThan(1000);
    expect(await pending).toBeInstanceOf(Error);
  });
});

describe('loadChannelUsers', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'channel-users-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reads {"users":[...]} and keeps unknown fields', async () => {
    const file = join(dir, 'ok.json');
    await writeFile(file, JSON.stringify({ users: [alice, { memberId: 'bob', type: 'unified' }] }));
    const users = await loadChannelUsers(file);
    expect(users).toEqual([alice, { memberId: 'bob', type: 'unified' }]);
  });

  it.each([
    ['not JSON', '{"users": [', /not valid JSON/],
    ['no users array', '{"people": []}', /users \(invalid_type\)/],
    ['a user without memberId', '{"users": [{"email": "x@example.com"}]}', /users\.0\.memberId/],
    [
      'a wrongly typed field',
      '{"users": [{"memberId": "m", "unsubscribeEmail": "yes"}]}',
      /users\.0\.unsubscribeEmail/,
    ],
  ])('rejects a file with %s, without quoting its content', async (_label, content, message) => {
    const file = join(dir, 'bad.json');
    await writeFile(file, content);
    const err = await loadChannelUsers(file).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err?.message).toMatch(message);
    expect(err?.message).not.toContain('x@example.com');
    expect(err?.message).not.toContain('yes');
  });
});
