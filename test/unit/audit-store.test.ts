import { appendFile, mkdir, mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loggedEntry, type AuditEntry, type LoggedEntry, type VerdictEntry } from '../../src/audit/audit-entry';
import {
  AuditLogNotFoundError,
  createFileAuditStore,
  newReadStats,
  type AuditStore,
} from '../../src/audit/audit-store';
import type { OutcomeKind } from '../../src/domain/types';
import { VERDICT_OUTCOMES, VERDICTS, type Verdict } from '../../src/domain/verdicts';
import type { RunWait } from '../../src/audit/run-wait';
import { createPostgresAuditStore } from '../../src/audit/postgres-audit-store';
import { startTestPostgres, type TestPostgres } from '../support/postgres';
import { postgresAuditEntries } from '../support/stores';

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'audit-'));
  file = path.join(dir, 'nested', 'audit.jsonl');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const entry = (line: number, outcome: OutcomeKind, extra: Partial<AuditEntry> = {}): AuditEntry => ({
  ts: '2026-01-01T00:00:00.000Z',
  backfill: 'b',
  runLabel: 'b',
  line,
  memberId: `m-${line}`,
  outcome,
  dryRun: false,
  ...extra,
});

async function lines(): Promise<AuditEntry[]> {
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEntry);
}

describe('file audit store', () => {
  it('records each line once: later appends of a recorded line are dropped (first wins)', async () => {
    const store = createFileAuditStore();
    await store.append(file, [entry(2, 'upsert'), entry(3, 'unchanged')]);
    await store.append(file, [entry(2, 'failed'), entry(4, 'delete'), entry(4, 'failed')]);
    const written = await lines();
    expect(written.map((e) => [e.line, e.outcome])).toEqual([
      [2, 'upsert'],
      [3, 'unchanged'],
      [4, 'delete'],
    ]);
    const found = await store.lookup(file, [2, 3, 4, 5]);
    expect(Object.fromEntries(found)).toEqual({
      2: { outcome: 'upsert', deferred: false },
      3: { outcome: 'unchanged', deferred: false },
      4: { outcome: 'delete', deferred: false },
    });
  });

  it('sees what another process (another store instance) appended', async () => {
    const a = createFileAuditStore();
    const b = createFileAuditStore();
    await a.append(file, [entry(10, 'upsert')]);
    expect((await b.lookup(file, [10])).get(10)?.outcome).toBe('upsert');
    await b.append(file, [entry(10, 'failed'), entry(11, 'skipped')]);
    expect((await a.lookup(file, [11])).get(11)?.outcome).toBe('skipped');
    expect((await lines()).length).toBe(2);
  });

  it('flags lines recorded by a deferred replay', async () => {
    const store = createFileAuditStore();
    await store.append(file, [entry(7, 'delete', { deferred: true })]);
    expect((await store.lookup(file, [7])).get(7)).toEqual({ outcome: 'delete', deferred: true });
  });

  it('concurrent appends share writes and lose nothing', async () => {
    const store = createFileAuditStore();
    await Promise.all(
      Array.from({ length: 500 }, (_, i) => store.append(file, [entry(i + 2, i % 2 ? 'upsert' : 'unchanged')])),
    );
    const written = await lines();
    expect(written).toHaveLength(500);
    expect(new Set(written.map((e) => e.line)).size).toBe(500);
  });

  it('a write that fails (a full disk) fails every caller whose entries it carried: none resolves unrecorded', async () => {
    // /dev/full answers every write with ENOSPC: the log on a disk with no room left, without needing root.
    await mkdir(path.dirname(file), { recursive: true });
    await symlink('/dev/full', file);
    const store = createFileAuditStore();
    const batch = [entry(2, 'upsert'), entry(3, 'unchanged')];
    const replay = [entry(4, 'delete', { deferred: true })];
    // The batch's write runs first and carries the replay's entry too (one write for all that is queued).
    const settled = await Promise.allSettled([store.append(file, batch), store.append(file, replay)]);
    expect(settled.map((s) => s.status === 'rejected' && (s.reason as NodeJS.ErrnoException).code)).toEqual([
      'ENOSPC',
      'ENOSPC',
    ]);
    // Room again: each caller retries its own entries (as the store gate does) and every one is recorded, once.
    await unlink(file);
    await Promise.all([store.append(file, batch), store.append(file, replay)]);
    expect((await lines()).map((e) => e.line)).toEqual([2, 3, 4]);
    expect((await createFileAuditStore().lookup(file, [4])).get(4)).toEqual({ outcome: 'delete', deferred: true });
  });

  it('survives a torn last line from a crash mid-write: the torn record counts as not recorded', async () => {
    const store = createFileAuditStore();
    await store.append(file, [entry(2, 'upsert')]);
    await appendFile(file, '{"line":3,"outcome":"unch');
    const fresh = createFileAuditStore();
    expect((await fresh.lookup(file, [2, 3])).has(3)).toBe(false);
    await fresh.append(file, [entry(3, 'unchanged')]);
    expect((await createFileAuditStore().lookup(file, [3])).get(3)?.outcome).toBe('unchanged');
    const text = await readFile(file, 'utf8');
    expect(text.split('\n').filter((l) => l.startsWith('{"ts"'))).toHaveLength(2);
  });

  it('ignores lines that are not audit entries and grows its index for large line numbers', async () => {
    await writeFile(file.replace('nested/', ''), '');
    const store = createFileAuditStore();
    await store.append(file, [entry(1_000_000, 'skipped')]);
    await appendFile(file, 'not json\n{"no":"line"}\n');
    expect((await store.lookup(file, [1_000_000, 5])).get(1_000_000)?.outcome).toBe('skipped');
  });

  it('indexes its own writes as a reader of the file would: a torn line they complete counts first', async () => {
    const store = createFileAuditStore();
    await store.append(file, [entry(2, 'upsert')]);
    // A whole entry whose line feed was lost in a crash: only the next write's line feed completes it.
    await appendFile(file, JSON.stringify(entry(3, 'delete')));
    expect((await store.lookup(file, [3])).has(3)).toBe(false);
    await store.append(file, [entry(3, 'failed'), entry(4, 'unchanged', { fields: ['email'] })]);
    const expected = {
      2: { outcome: 'upsert', deferred: false },
      3: { outcome: 'delete', deferred: false },
      4: { outcome: 'unchanged', deferred: false, fields: ['email'] },
    };
    expect(Object.fromEntries(await store.lookup(file, [2, 3, 4]))).toEqual(expected);
    expect(Object.fromEntries(await createFileAuditStore().lookup(file, [2, 3, 4]))).toEqual(expected);
    // The entry for line 3 was still written (the store could not know), and first wins for everyone.
    expect((await lines()).map((e) => [e.line, e.outcome])).toEqual([
      [2, 'upsert'],
      [3, 'delete'],
      [3, 'failed'],
      [4, 'unchanged'],
    ]);
  });

  it('after its own writes answers exactly as a fresh reader of the file does', async () => {
    const store = createFileAuditStore();
    const outcomes: OutcomeKind[] = ['upsert', 'delete', 'unchanged', 'failed', 'skipped'];
    for (let batch = 0; batch < 4; batch++) {
      await store.append(
        file,
        Array.from({ length: 50 }, (_, i) => {
          const line = 2 + ((batch * 37 + i * 3) % 120); // overlapping lines: later ones are dropped
          return entry(line, outcomes[(batch + i) % 5]!, {
            deferred: i % 7 === 0,
            ...(i % 2 ? { fields: ['mobileNumber', 'unsubscribeTexting'] } : {}),
          });
        }),
      );
    }
    const all = Array.from({ length: 125 }, (_, i) => i);
    expect(Object.fromEntries(await store.lookup(file, all))).toEqual(
      Object.fromEntries(await createFileAuditStore().lookup(file, all)),
    );
  });
});

async function drain(store: AuditStore, log: string, stats = newReadStats()): Promise<AuditEntry[]> {
  const read: AuditEntry[] = [];
  for await (const e of store.entries(log, stats)) read.push(e);
  return read;
}

describe('file audit store: entries()', () => {
  it('streams the whole records in file order, the first record of a line winning', async () => {
    const store = createFileAuditStore();
    const full = entry(9, 'upsert', {
      fields: ['email'],
      event: 'upsert',
      delivered: true,
      webhookId: 'msg_9',
      status: 202,
      attempts: 1,
      updatedAt: 1_730_400_000_000,
    });
    await store.append(file, [full, entry(3, 'unchanged')]);
    // Another process's late records of lines already recorded (the store itself never writes these).
    await appendFile(
      file,
      `${JSON.stringify(entry(9, 'failed'))}
${JSON.stringify(entry(3, 'delete'))}
${JSON.stringify(entry(5, 'skipped'))}
`,
    );
    const stats = newReadStats();
    const read = await drain(store, file, stats);
    expect(read).toEqual([full, entry(3, 'unchanged'), entry(5, 'skipped')]);
    expect(stats).toEqual({ entries: 3, repeated: 2, unreadable: 0 });
  });

  it('skips a torn line (a crash mid-write) and lines that are not records; the line is not claimed by them', async () => {
    const store = createFileAuditStore();
    await store.append(file, [entry(2, 'upsert')]);
    await appendFile(file, '{"line":3,"outcome":"unch'); // torn: its member was not recorded
    await store.append(file, [entry(3, 'failed'), entry(4, 'delete')]);
    await appendFile(file, 'not json\r\n{"line":4,"outcome":"maybe"}\n\n{"no":"line"}\n');
    const stats = newReadStats();
    expect((await drain(createFileAuditStore(), file, stats)).map((e) => [e.line, e.outcome])).toEqual([
      [2, 'upsert'],
      [3, 'failed'],
      [4, 'delete'],
    ]);
    expect(stats).toEqual({ entries: 3, repeated: 0, unreadable: 4 });
    // What entries() yields agrees with what the workers' index says was recorded.
    expect(
      Object.fromEntries([...(await store.lookup(file, [2, 3, 4]))].map(([line, r]) => [line, r.outcome])),
    ).toEqual({ 2: 'upsert', 3: 'failed', 4: 'delete' });
  });

  it('a missing log, or a directory, is an AuditLogNotFoundError naming it', async () => {
    const store = createFileAuditStore();
    const missing = path.join(dir, 'nope.jsonl');
    await expect(drain(store, missing)).rejects.toThrow(new AuditLogNotFoundError(missing, 'no such file'));
    await expect(drain(store, missing)).rejects.toBeInstanceOf(AuditLogNotFoundError);
    await expect(drain(store, dir)).rejects.toThrow(`cannot read the audit log ${dir}: it is a directory`);
  });

  it('reads a large log record by record, and can be stopped early', async () => {
    const store = createFileAuditStore();
    const n = 20_000;
    await store.append(
      file,
      Array.from({ length: n }, (_, i) => entry(i + 2, i % 4 ? 'unchanged' : 'failed')),
    );
    let count = 0;
    let failed = 0;
    for await (const e of store.entries(file)) {
      count += 1;
      if (e.outcome === 'failed') failed += 1;
    }
    expect([count, failed]).toEqual([n, n / 4]);
    const first: AuditEntry[] = [];
    for await (const e of store.entries(file)) {
      first.push(e);
      if (first.length === 3) break;
    }
    expect(first.map((e) => e.line)).toEqual([2, 3, 4]);
  });
});

// The contract the activities rely on, on both stores (BACKFILL_STORE=file|postgres); the file-only behaviours
// (torn lines, the on-disk index) are above, the PostgreSQL-only ones in test/integration/postgres.test.ts.
let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
}, 60_000);
afterAll(async () => {
  await pg?.stop();
});
let tables = 0;
const makers: [string, () => AuditStore][] = [
  ['file', () => createFileAuditStore()],
  ['postgres', () => createPostgresAuditStore(pg.pool(), { table: `audit_contract_${++tables}` })],
];

describe.each(makers)('%s audit store: shared contract', (_kind, make) => {
  it('first record of a line wins, across calls and within one', async () => {
    const store = make();
    await store.append(file, [entry(2, 'upsert', { fields: ['email'] }), entry(3, 'unchanged')]);
    await store.append(file, [entry(2, 'failed'), entry(4, 'delete'), entry(4, 'failed')]);
    expect(Object.fromEntries(await store.lookup(file, [2, 3, 4, 5]))).toEqual({
      2: { outcome: 'upsert', deferred: false, fields: ['email'] },
      3: { outcome: 'unchanged', deferred: false },
      4: { outcome: 'delete', deferred: false },
    });
    const streamed: AuditEntry[] = [];
    for await (const e of store.entries(file)) streamed.push(e);
    expect(streamed.map((e) => [e.line, e.outcome])).toEqual([
      [2, 'upsert'],
      [3, 'unchanged'],
      [4, 'delete'],
    ]);
  });

  // A verify run records verdicts, not outcomes; its log stores each under its verdict's outcome, exactly as
  // release 1.0 wrote it (the line below is one of its lines), so 1.0's logs and this release's read the same.
  it("stores a verdict under its outcome, as release 1.0's verify log holds it", async () => {
    const store = make();
    const verdictEntry = (line: number, verdict: Verdict, extra: Partial<VerdictEntry> = {}): VerdictEntry => ({
      ts: '2026-01-01T00:00:00.000Z',
      backfill: 'v',
      runLabel: 'v',
      line,
      memberId: `m-${line}`,
      dryRun: true,
      repairedEvent: 'upsert',
      repairedAt: '2025-12-31T00:00:00.000Z',
      exportLine: line + 1,
      attempts: 1,
      verdict,
      ...extra,
    });
    const written = VERDICTS.map((v, i) => verdictEntry(i + 2, v, v === 'still differs' ? { fields: ['email'] } : {}));
    await store.append(file, written);
    const found = await store.lookup(
      file,
      written.map((e) => e.line),
    );
    for (const e of written) {
      const outcome = VERDICT_OUTCOMES[e.verdict];
      expect(found.get(e.line)).toEqual({
        outcome,
        deferred: false,
        ...(outcome === 'upsert' ? { fields: ['email'] } : {}),
      });
    }
    const streamed: LoggedEntry[] = [];
    for await (const e of store.entries(file)) streamed.push(e);
    expect(streamed).toEqual(written.map((e) => ({ ...e, outcome: VERDICT_OUTCOMES[e.verdict] })));
    // Release 1.0 wrote a verify line with its outcome after who and what: the same text.
    const of10 =
      '{"ts":"2026-01-01T00:00:00.000Z","backfill":"v","runLabel":"v","line":3,"memberId":"m-3","outcome":"upsert","dryRun":true,"repairedEvent":"upsert","repairedAt":"2025-12-31T00:00:00.000Z","exportLine":4,"attempts":1,"verdict":"still differs","fields":["email"]}';
    expect(JSON.stringify(loggedEntry(written[1]!))).toBe(of10);
  });

  it('keeps logs apart by key and flags deferred records', async () => {
    const store = make();
    const other = path.join(dir, 'other', 'audit.jsonl');
    await store.append(file, [entry(7, 'delete', { deferred: true })]);
    await store.append(other, [entry(7, 'upsert')]);
    expect((await store.lookup(file, [7])).get(7)).toEqual({ outcome: 'delete', deferred: true });
    expect((await store.lookup(other, [7])).get(7)).toEqual({ outcome: 'upsert', deferred: false });
  });

  it('flags members Channel Talk changed during the repair (a replay counted again after a crash stays exact)', async () => {
    const store = make();
    await store.append(file, [
      entry(8, 'unchanged', { deferred: true, changedDuringRepair: true }),
      entry(9, 'upsert', { deferred: true, fields: ['email', 'unsubscribeTexting'], changedDuringRepair: true }),
    ]);
    const found = await store.lookup(file, [8, 9]);
    expect(found.get(8)).toEqual({ outcome: 'unchanged', deferred: true, changedDuringRepair: true });
    expect(found.get(9)).toEqual({
      outcome: 'upsert',
      deferred: true,
      fields: ['email', 'unsubscribeTexting'],
      changedDuringRepair: true,
    });
  });

  it('keeps the waits for the receiver and the store beside the records: read once per wait, never a record', async () => {
    const store = make();
    const receiver: RunWait = {
      kind: 'receiver-unavailable',
      since: '2026-01-01T00:00:00.000Z',
      until: '2026-01-01T00:05:00.000Z',
      ended: 'answered',
      waitingReplays: 40,
      batchesLeft: 12,
    };
    const storeWait: RunWait = {
      kind: 'store-unavailable',
      since: '2026-01-01T00:07:00.000Z',
      until: '2026-01-01T00:07:10.000Z',
      ended: 'back',
      batch: 3,
    };
    await store.append(file, [entry(2, 'upsert')]);
    await store.recordWait(file, receiver);
    await store.recordWait(file, storeWait);
    await store.recordWait(file, receiver); // an activity retried: the same wait again
    await store.append(file, [entry(3, 'unchanged')]);
    const stats = newReadStats();
    const streamed: AuditEntry[] = [];
    for await (const e of store.entries(file, stats)) streamed.push(e);
    expect(streamed.map((e) => e.line)).toEqual([2, 3]);
    expect(stats).toEqual({ entries: 2, repeated: 0, unreadable: 0, waits: [receiver, storeWait] });
    // The workers' index is not fooled by them either.
    expect([...(await store.lookup(file, [1, 2, 3, 4])).keys()]).toEqual([2, 3]);
  });

  it('concurrent appends lose nothing and record each line once', async () => {
    const store = make();
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => store.append(file, [entry((i % 150) + 2, i < 150 ? 'upsert' : 'failed')])),
    );
    const found = await store.lookup(
      file,
      Array.from({ length: 150 }, (_, i) => i + 2),
    );
    expect(found.size).toBe(150);
  });
});

// The tests poll a PostgreSQL audit log (waitFor, every 100 ms) through postgresAuditEntries: a new pool per read
// kept one connection open for pg's 10 s idle timeout, 44 at once in shared-nothing.test (SQLSTATE 53300 once, when
// the cluster allowed 60). Every read now goes through the database's one shared pool.
it('postgresAuditEntries, polled, holds no more connections than one pool', async () => {
  const url = await pg.createDatabase('polled_audit');
  const writer = pg.pool('polled_audit');
  await createPostgresAuditStore(writer).append(file, [entry(2, 'upsert'), entry(3, 'unchanged')]);
  await writer.end();
  for (let read = 0; read < 20; read++) expect(await postgresAuditEntries(pg, url, file)).toHaveLength(2);
  const [open] = await pg.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'polled_audit'`);
  expect(open!.n).toBeLessThanOrEqual(4);
});
