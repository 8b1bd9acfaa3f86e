// The bench's lean endpoint keeps what the known-answer check reads, in memory or, for runs of millions of
// members, in a spool file; both must hand back the same deliveries, and reset() must start afresh.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLeanReceiver } from '../../bench/receiver';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'bench-receiver-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const post = (url: string, memberId: string, token = 'token') =>
  fetch(`${url}?token=${token}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'webhook-id': `id-${memberId}` },
    body: JSON.stringify({ event: 'upsert', entity: { memberId } }),
  }).then((r) => r.status);

describe.each([
  ['in memory', false],
  ['spooled to a file', true],
])('the lean receiver, %s', (_, spooled) => {
  it('records every delivery with its status, and forgets them on reset', async () => {
    const receiver = await startLeanReceiver({
      token: 'token',
      ...(spooled ? { spool: path.join(dir, 'deliveries') } : {}),
    });
    try {
      expect(await post(receiver.url, 'a')).toBe(200);
      expect(await post(receiver.url, 'b', 'wrong')).toBe(401);
      await receiver.flush();
      expect(receiver.count()).toBe(2);
      expect([...receiver.deliveries()]).toEqual([
        { memberId: 'a', event: 'upsert', webhookId: 'id-a', status: 200 },
        { memberId: null, event: '', webhookId: 'id-b', status: 401 },
      ]);
      expect(receiver.acceptedTimes()).toHaveLength(1);

      receiver.reset();
      expect(await post(receiver.url, 'c')).toBe(200);
      await receiver.flush();
      expect(receiver.count()).toBe(1);
      expect([...receiver.deliveries()].map((d) => d.memberId)).toEqual(['c']);
    } finally {
      await receiver.close();
    }
  });
});
