import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelResponseSchema, logWorkerChannel } from '../../src/channel/channel-info';
import { createChannelClient, type ChannelClient } from '../../src/channel/client';
import { startChannelSimulator, type ChannelSimulator } from '../../dev/simulator/channel-simulator';

// GET /open/v5/channel: the preflight that tells which channel the credentials open (issue 9), against the
// simulator over loopback, plus a raw server for answers the simulator never gives.

const KEY = 'k-channel-info';
const SECRET = 's-channel-info-secret';
let sim: ChannelSimulator;

beforeAll(async () => {
  sim = await startChannelSimulator({
    users: [],
    accessKey: KEY,
    accessSecret: SECRET,
    channel: { id: 'ch-77', name: 'Acme Store' },
  });
});
afterAll(async () => {
  await sim?.close();
});

function client(over: Partial<Parameters<typeof createChannelClient>[0]> = {}): ChannelClient {
  return createChannelClient({
    baseUrl: sim.url,
    accessKey: KEY,
    accessSecret: SECRET,
    backoff: { initialMs: 1, maxMs: 5 },
    ...over,
  });
}

describe('getChannel against the simulator', () => {
  it('answers the configured channel, behind the credentials check', async () => {
    const c = client();
    try {
      expect(await c.getChannel()).toEqual({ kind: 'found', channel: { id: 'ch-77', name: 'Acme Store' } });
    } finally {
      await c.close();
    }
  });

  it('refused credentials are bad-credentials (401)', async () => {
    const c = client({ accessSecret: 'wrong' });
    try {
      expect(await c.getChannel()).toEqual({ kind: 'bad-credentials', status: 401 });
    } finally {
      await c.close();
    }
  });

  it('a base URL with a path the API does not have answers 404: not-found, even when lookups treat 422 as not found too', async () => {
    const c = client({ baseUrl: `${sim.url}/v1`, notFoundStatuses: [404, 422] });
    try {
      expect(await c.getChannel()).toEqual({ kind: 'not-found', status: 404 });
      expect(sim.stats().byMember.size).toBe(0);
    } finally {
      await c.close();
    }
  });

  it('nothing listening: a retryable failure after the configured attempts', async () => {
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const c = client({ baseUrl: `http://127.0.0.1:${port}`, maxAttempts: 2 });
    try {
      const result = await c.getChannel();
      expect(result).toMatchObject({ kind: 'failed', retryable: true });
      expect((result as { reason: string }).reason).toMatch(/^network error \(ECONNREFUSED\) after 2 attempts$/);
    } finally {
      await c.close();
    }
  });
});

describe('the answer is read tolerantly: only the id is required', () => {
  let server: http.Server;
  let url: string;
  let body = '';
  let status = 200;
  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it.each<[string, number, unknown, unknown]>([
    ['name null', 200, { channel: { id: 'c1', name: null } }, { kind: 'found', channel: { id: 'c1', name: null } }],
    [
      'name missing, other fields kept out',
      200,
      { channel: { id: 'c1', homepageUrl: 'x', country: 'KR' } },
      { kind: 'found', channel: { id: 'c1', name: null } },
    ],
    [
      'a numeric id',
      200,
      { channel: { id: 12345, name: 'N' } },
      { kind: 'found', channel: { id: '12345', name: 'N' } },
    ],
    [
      'no id: malformed, retried',
      200,
      { channel: { name: 'N' } },
      {
        kind: 'failed',
        retryable: true,
        reason: 'malformed channel response: invalid channel.id (invalid_union) after 2 attempts',
      },
    ],
    [
      'no channel object',
      200,
      { id: 'c1' },
      {
        kind: 'failed',
        retryable: true,
        reason: 'malformed channel response: invalid channel (invalid_type) after 2 attempts',
      },
    ],
    ['403', 403, {}, { kind: 'bad-credentials', status: 403 }],
    ['400: not retried', 400, {}, { kind: 'failed', retryable: false, reason: 'HTTP 400' }],
  ])('%s', async (_name, s, b, expected) => {
    status = s;
    body = JSON.stringify(b);
    const c = createChannelClient({
      baseUrl: url,
      accessKey: KEY,
      accessSecret: SECRET,
      maxAttempts: 2,
      backoff: { initialMs: 1, maxMs: 2 },
    });
    try {
      expect(await c.getChannel()).toEqual(expected);
    } finally {
      await c.close();
    }
  });

  it('the schema ignores unknown fields', () => {
    expect(channelResponseSchema.parse({ channel: { id: 'a', extra: 1 }, other: true }).channel.id).toBe('a');
  });
});

describe("the worker's start-up line", () => {
  function recorder() {
    const lines: Array<{ level: 'info' | 'warn'; message: string; meta?: Record<string, unknown> }> = [];
    return {
      lines,
      info: (message: string, meta?: Record<string, unknown>) =>
        lines.push({ level: 'info', message, ...(meta ? { meta } : {}) }),
      warn: (message: string, meta?: Record<string, unknown>) =>
        lines.push({ level: 'warn', message, ...(meta ? { meta } : {}) }),
    };
  }

  it('names the channel', async () => {
    const log = recorder();
    const c = client();
    try {
      await logWorkerChannel(c, log);
    } finally {
      await c.close();
    }
    expect(log.lines).toEqual([
      {
        level: 'info',
        message: 'worker credentials open channel "Acme Store" (id ch-77)',
        meta: { channelId: 'ch-77', channelName: 'Acme Store' },
      },
    ]);
  });

  it('a refusal is a warning naming the variables, never their values', async () => {
    const log = recorder();
    const c = client({ accessSecret: 'not-the-secret-xyz' });
    try {
      await logWorkerChannel(c, log);
    } finally {
      await c.close();
    }
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]!.level).toBe('warn');
    expect(log.lines[0]!.message).toMatch(/CHANNEL_ACCESS_KEY \/ CHANNEL_ACCESS_SECRET \(HTTP 401\)/);
    expect(JSON.stringify(log.lines)).not.toContain('not-the-secret-xyz');
    expect(JSON.stringify(log.lines)).not.toContain(KEY);
  });
});
