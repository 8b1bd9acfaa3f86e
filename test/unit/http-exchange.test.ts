import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { exchange, utf8Text, type AnswerHeaders } from '../../src/http/exchange';
import { requestDeadline } from '../../src/http/request-deadline';
import { errorLabel } from '../../src/http/error-label';

// The exchange the client and the sender make for every member, over a real server on loopback: what it resolves
// or rejects with must be what undici's `request` + `body.text()` / `body.dump({ limit })` gave them.
const LIMIT = 1024;
const BOM = '\uFEFF';

/** What the server answers on each path. */
const routes: Record<string, (res: ServerResponse) => void> = {
  '/ok': (res) => res.writeHead(200, { 'content-type': 'application/json', 'x-n': '1' }).end('{"a":1}'),
  '/bom': (res) => res.writeHead(200).end(`${BOM}{"b":2}`),
  '/empty': (res) => res.writeHead(204).end(),
  '/missing': (res) => res.writeHead(404).end('not here'),
  '/long-error': (res) => res.writeHead(500).end('x'.repeat(LIMIT * 4)),
  '/cut': (res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('{"partial":');
    setTimeout(() => res.socket?.destroy(), 20);
  },
  '/slow': (res) => {
    setTimeout(() => res.writeHead(200).end('late'), 2_000).unref();
  },
  '/slow-error-body': (res) => {
    res.writeHead(503, { 'retry-after': '7' });
    res.write('partial');
    setTimeout(() => res.end(), 2_000).unref();
  },
};

let server: Server;
let origin: string;
const connections: number[] = [];
const agent = new Agent({ keepAliveTimeout: 10_000 });

beforeAll(async () => {
  server = createServer((req, res) => routes[req.url ?? '']!(res));
  server.on('connection', () => connections.push(Date.now()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await agent.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const get = (path: string, timeoutMs = 5_000, onStatus?: (s: number, h: AnswerHeaders) => void) => {
  const deadline = requestDeadline(timeoutMs, undefined);
  return exchange(
    agent,
    { origin, path, method: 'GET' },
    {
      keepBody: (s) => s >= 200 && s < 300,
      drainLimit: LIMIT,
      signal: deadline.signal,
      ...(onStatus ? { onStatus } : {}),
    },
  ).finally(() => deadline.clear());
};

describe('exchange', () => {
  const answers: Array<[string, string, { statusCode: number; text?: string }]> = [
    ['a 2xx body kept as text', '/ok', { statusCode: 200, text: '{"a":1}' }],
    ['a leading BOM dropped, as body.text()', '/bom', { statusCode: 200, text: '{"b":2}' }],
    ['no body: empty text', '/empty', { statusCode: 204, text: '' }],
    ['a body not kept: the status only', '/missing', { statusCode: 404 }],
    ['a body over the drain limit: the status only', '/long-error', { statusCode: 500 }],
  ];
  it.each(answers)('%s', async (_name, path, expected) => {
    const answer = await get(path);
    expect({ statusCode: answer.statusCode, ...(answer.text !== undefined ? { text: answer.text } : {}) }).toEqual(
      expected,
    );
  });

  it('hands over the headers as undici parses them', async () => {
    const answer = await get('/ok');
    expect(answer.headers['x-n']).toBe('1');
    expect(answer.headers['content-type']).toBe('application/json');
  });

  it('keeps the connection after a drained body, closes it after one over the limit', async () => {
    await get('/missing');
    const before = connections.length;
    await get('/missing');
    await get('/ok');
    expect(connections.length).toBe(before);
    await get('/long-error');
    await get('/ok');
    expect(connections.length).toBe(before + 1);
  });

  it('a kept body cut short rejects with the network error; the status and headers were told first', async () => {
    const told: number[] = [];
    const failure = await get('/cut', 5_000, (status) => told.push(status)).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(errorLabel(failure)).toMatch(/^UND_ERR_/);
    expect(told).toEqual([200]);
  });

  it('a deadline before the answer rejects with its reason', async () => {
    const deadline = requestDeadline(100, undefined);
    const failure = await exchange(
      agent,
      { origin, path: '/slow', method: 'GET' },
      { keepBody: () => true, drainLimit: LIMIT, signal: deadline.signal },
    ).then(
      () => undefined,
      (err: unknown) => err,
    );
    deadline.clear();
    expect(deadline.timedOut).toBe(true);
    expect((failure as Error).message).toBe('request timed out');
  });

  it('a deadline while a dropped body drains: the status stands', async () => {
    const answer = await get('/slow-error-body', 150);
    expect(answer.statusCode).toBe(503);
    expect(answer.headers['retry-after']).toBe('7');
  });

  it("a deadline already aborted (the caller's abort) rejects at once with the caller's reason", async () => {
    const caller = new AbortController();
    const deadline = requestDeadline(5_000, caller.signal);
    caller.abort(new Error('cancelled'));
    const before = connections.length;
    await expect(
      exchange(
        agent,
        { origin, path: '/long-error', method: 'GET' },
        { keepBody: () => true, drainLimit: LIMIT, signal: deadline.signal },
      ),
    ).rejects.toThrow('cancelled');
    deadline.clear();
    expect(connections.length).toBe(before);
  });
});

describe('utf8Text', () => {
  const cases: Array<[string, Buffer[], string]> = [
    ['nothing', [], ''],
    ['one chunk', [Buffer.from('héllo')], 'héllo'],
    ['a character split across chunks', [Buffer.from([0x68, 0xc3]), Buffer.from([0xa9])], 'hé'],
    ['a BOM dropped', [Buffer.from(`${BOM}x`)], 'x'],
    ['a BOM split across chunks', [Buffer.from([0xef, 0xbb]), Buffer.from([0xbf, 0x79])], 'y'],
    ['a BOM only at the start', [Buffer.from(`a${BOM}`)], `a${BOM}`],
  ];
  it.each(cases)('%s', (_name, chunks, expected) => {
    expect(
      utf8Text(
        chunks,
        chunks.reduce((n, c) => n + c.length, 0),
      ),
    ).toBe(expected);
  });
});
