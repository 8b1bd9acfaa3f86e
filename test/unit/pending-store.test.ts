// The pending store's contract, run against both implementations: files under the run's directory and the
// PostgreSQL table (a throwaway cluster, see test/support/postgres.ts).
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFilePendingStore, type PendingReplay, type PendingStore } from '../../src/audit/pending-store';
import { createPostgresPendingStore } from '../../src/audit/postgres-pending-store';
import { createStoreTables } from '../../src/store/postgres-schema';
import { startTestPostgres, type TestPostgres } from '../support/postgres';

let root: string;
let pg: TestPostgres;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'pending-store-test-'));
  pg = await startTestPostgres();
  await createStoreTables(pg.pool());
}, 60_000);
afterAll(async () => {
  await pg?.stop();
  await rm(root, { recursive: true, force: true });
});

const replay = (line: number): PendingReplay => ({
  line,
  memberId: `m-${line}`,
  event: 'upsert',
  webhookId: `msg_${String(line).padStart(32, '0')}`,
  payload: {
    event: 'upsert',
    type: 'user',
    entity: { memberId: `m-${line}`, email: 'personal@example.com' },
  } as unknown as PendingReplay['payload'],
  base: { line, backfill: 'wf-1' } as unknown as PendingReplay['base'],
});

const none = () => ({ pending: new Set(), settled: new Set() });
let n = 0;
const stores: [string, () => PendingStore][] = [
  ['file', () => createFilePendingStore()],
  ['postgres', () => createPostgresPendingStore(pg.pool())],
];

describe.each(stores)('%s pending store', (_name, make) => {
  const freshDir = () => path.join(root, `run-${++n}`, 'pending');

  it('lists nothing for a run that deferred nothing yet', async () => {
    expect(await make().lines(freshDir(), [1, 2, 3])).toEqual(none());
  });

  it('keeps a replay until it is settled, then keeps only a marker of it', async () => {
    const store = make();
    const dir = freshDir();
    await store.put(dir, replay(7));
    await store.put(dir, replay(12));
    expect(await store.lines(dir, [7, 12])).toEqual({ pending: new Set([7, 12]), settled: new Set() });
    expect((await store.get(dir, 7))?.memberId).toBe('m-7');

    await store.settle(dir, 7);
    expect(await store.lines(dir, [7, 12])).toEqual({ pending: new Set([12]), settled: new Set([7]) });
    expect(await store.get(dir, 7)).toBeUndefined();

    await store.settle(dir, 7); // settling twice (a retried activity) is harmless
    expect(await store.lines(dir, [7, 12])).toEqual({ pending: new Set([12]), settled: new Set([7]) });
  });

  it('answers only for the lines asked (a batch sees its own range, whatever else was deferred)', async () => {
    const store = make();
    const dir = freshDir();
    for (let line = 1; line <= 40; line++) await store.put(dir, replay(line));
    for (let line = 1; line <= 40; line += 2) await store.settle(dir, line);
    const batch = [21, 22, 23, 24, 25, 99];
    expect(await store.lines(dir, batch)).toEqual({ pending: new Set([22, 24]), settled: new Set([21, 23, 25]) });
    expect(await store.lines(dir, [])).toEqual(none());
  });

  it.each([
    ['a batch as large as what lies beside it (the directory read once)', 30],
    ['a batch much smaller than what lies beside it (line by line)', 3],
  ])('answers the same for %s', async (_case, asked) => {
    const store = make();
    const dir = freshDir();
    for (let line = 100; line < 130; line++) await store.put(dir, replay(line));
    for (let line = 100; line < 130; line += 3) await store.settle(dir, line);
    const lines = Array.from({ length: asked }, (_, i) => 100 + i * Math.floor(30 / asked));
    const expected = { pending: new Set<number>(), settled: new Set<number>() };
    for (const line of lines) ((line - 100) % 3 === 0 ? expected.settled : expected.pending).add(line);
    expect(await store.lines(dir, [...lines, 5000, 5001])).toEqual(expected);
  });

  it("keeps runs apart, and remove() deletes one run's replays and markers only", async () => {
    const store = make();
    const [a, b] = [freshDir(), freshDir()];
    await store.put(a, replay(1));
    await store.put(a, replay(2));
    await store.settle(a, 2);
    await store.put(b, replay(1));
    expect(await store.lines(b, [1, 2])).toEqual({ pending: new Set([1]), settled: new Set() });
    expect(await store.remove(a)).toBe(2);
    expect(await store.lines(a, [1, 2])).toEqual(none());
    expect(await store.get(a, 1)).toBeUndefined();
    expect((await store.get(b, 1))?.memberId).toBe('m-1');
    expect(await store.remove(a)).toBe(0); // idempotent
  });
});

describe('file pending store on disk', () => {
  it('deletes the payload (personal data) when settled and leaves an empty marker', async () => {
    const store = createFilePendingStore();
    const dir = path.join(root, 'on-disk', 'pending');
    await store.put(dir, replay(7));
    await store.put(dir, replay(12));
    await store.settle(dir, 7);
    expect(await readFile(path.join(dir, '7.settled'), 'utf8')).toBe('');
    expect((await readdir(dir)).sort()).toEqual(['12.json', '7.settled']);
  });
});

describe('postgres pending store in its table', () => {
  it('clears the payload column when settled', async () => {
    const store = createPostgresPendingStore(pg.pool());
    const dir = path.join(root, 'in-table', 'pending');
    await store.put(dir, replay(7));
    await store.settle(dir, 7);
    const rows = await pg.query('SELECT payload, settled, workflow_id FROM backfill_pending WHERE key = $1', [dir]);
    expect(rows).toEqual([{ payload: null, settled: true, workflow_id: 'wf-1' }]);
  });
});
