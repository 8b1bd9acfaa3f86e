import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFilePendingStore, type PendingReplay } from '../../src/audit/pending-store';

let dir: string;
beforeAll(async () => {
  dir = path.join(await mkdtemp(path.join(tmpdir(), 'pending-store-test-')), 'pending');
});
afterAll(async () => {
  await rm(path.dirname(dir), { recursive: true, force: true });
});

const replay = (line: number): PendingReplay => ({
  line,
  memberId: `m-${line}`,
  event: 'upsert',
  webhookId: `msg_${String(line).padStart(32, '0')}`,
  payload: { event: 'upsert', type: 'user', entity: { memberId: `m-${line}`, email: 'personal@example.com' } } as unknown as PendingReplay['payload'],
  base: { line } as unknown as PendingReplay['base'],
});

describe('file pending store', () => {
  it('lists nothing for a directory that does not exist yet', async () => {
    expect(await createFilePendingStore().lines(path.join(dir, 'none'))).toEqual({ pending: new Set(), settled: new Set() });
  });

  it('keeps a replay until it is settled, then keeps only an empty marker of it', async () => {
    const store = createFilePendingStore();
    await store.put(dir, replay(7));
    await store.put(dir, replay(12));
    expect(await store.lines(dir)).toEqual({ pending: new Set([7, 12]), settled: new Set() });
    expect((await store.get(dir, 7))?.memberId).toBe('m-7');

    await store.settle(dir, 7);
    expect(await store.lines(dir)).toEqual({ pending: new Set([12]), settled: new Set([7]) });
    expect(await store.get(dir, 7)).toBeUndefined();
    // The payload (personal data) is gone; the marker holds nothing.
    expect(await readFile(path.join(dir, '7.settled'), 'utf8')).toBe('');
    expect((await readdir(dir)).sort()).toEqual(['12.json', '7.settled']);

    await store.settle(dir, 7); // settling twice (a retried activity) is harmless
    expect(await store.lines(dir)).toEqual({ pending: new Set([12]), settled: new Set([7]) });
  });
});
