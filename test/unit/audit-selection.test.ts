import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoggedEntry } from '../../src/audit/audit-entry';
import { createFileAuditStore } from '../../src/audit/audit-store';
import { selectByOutcome, selectEntries, selectFromPlan } from '../../src/source/audit-selection';
import { SourceConfigError } from '../../src/source/errors';
import { MemberSelection } from '../../src/source/member-selection';
import type { PlannedDecision } from '../../src/domain/types';

// `only` and `fromPlan` select members from an earlier run's audit log, through the workers' audit store.

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'audit-selection-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const store = createFileAuditStore();
const entry = (line: number, e: Partial<LoggedEntry>): LoggedEntry => ({
  ts: '2024-12-01T00:00:00.000Z',
  backfill: 'bf',
  runLabel: 'bf',
  line,
  memberId: `m-${line}`,
  outcome: 'unchanged',
  dryRun: true,
  ...e,
});
const member = (memberId: string) => ({
  line: 1,
  member: { memberId, email: null, mobileNumber: null, unsubscribeEmail: null, unsubscribeTexting: null },
});

async function log(name: string, entries: LoggedEntry[]): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
  return file;
}

describe('MemberSelection', () => {
  const PLANS: Array<[name: string, planned: PlannedDecision | null]> = [
    ['no plan', null],
    ['upsert one field', { action: 'upsert', fields: ['unsubscribeTexting'] }],
    [
      'upsert every field',
      { action: 'upsert', fields: ['mobileNumber', 'email', 'unsubscribeEmail', 'unsubscribeTexting'] },
    ],
    ['delete not-found', { action: 'delete', reason: 'not-found' }],
    ['delete unified', { action: 'delete', reason: 'unified' }],
    ['delete without reason', { action: 'delete' }],
    ['upsert with a reason', { action: 'upsert', fields: ['email'], reason: 'odd' }],
  ];
  it.each(PLANS)('%s round-trips', (_name, planned) => {
    const s = new MemberSelection();
    s.add('who', planned);
    expect(s.get('who')).toEqual(planned);
    expect(s.has('who')).toBe(true);
    expect(s.get('other')).toBeUndefined();
    expect(s.has('other')).toBe(false);
  });

  it('holds many members through growth, the first plan of a memberId winning', () => {
    const s = new MemberSelection();
    for (let i = 0; i < 50_000; i++)
      s.add(`m-${i}`, i % 2 ? { action: 'delete', reason: i % 3 ? 'not-found' : 'unified' } : null);
    s.add('m-1', null);
    expect(s.size).toBe(50_000);
    for (let i = 0; i < 50_000; i += 997)
      expect(s.get(`m-${i}`)).toEqual(i % 2 ? { action: 'delete', reason: i % 3 ? 'not-found' : 'unified' } : null);
    expect(s.get('m-1')).toEqual({ action: 'delete', reason: 'not-found' });
    expect(s.has('m-50000')).toBe(false);
    // Flat: at most 2 slots of 12 bytes per member (plus the initial table).
    expect(s.byteLength).toBeLessThanOrEqual(Math.max(12 * 1024, 2 * 2 * 12 * 50_000));
  });
});

describe('selecting from an audit log', () => {
  it('only: the memberIds with the given outcomes', async () => {
    const file = await log('only.jsonl', [
      entry(2, { outcome: 'failed', dryRun: false }),
      entry(3, { outcome: 'upsert', fields: ['email'], dryRun: false }),
      entry(4, { outcome: 'skipped', memberId: undefined, dryRun: false }),
      entry(5, { outcome: 'failed', dryRun: false }),
    ]);
    const s = await selectByOutcome(store, file, ['failed']);
    expect([s.has('m-2'), s.has('m-3'), s.has('m-5')]).toEqual([true, false, true]);
    const keep = selectEntries(s);
    expect(keep(member('m-2'))).toEqual(member('m-2'));
    expect(keep(member('m-3'))).toBeUndefined();
    expect(keep({ line: 9, skip: 'bad row' })).toBeUndefined();
  });

  it('fromPlan: the planned upserts and deletes with their plan; a log that is not a dry run is refused', async () => {
    const file = await log('plan.jsonl', [
      entry(2, { outcome: 'upsert', fields: ['mobileNumber', 'unsubscribeEmail'] }),
      entry(3, { outcome: 'delete', reason: 'unified' }),
      entry(4, { outcome: 'unchanged' }),
      entry(5, { outcome: 'failed', stage: 'fetch', reason: 'HTTP 500 after 5 attempts' }),
    ]);
    const keep = selectEntries(await selectFromPlan(store, file));
    expect(keep(member('m-2'))).toEqual({
      ...member('m-2'),
      planned: { action: 'upsert', fields: ['mobileNumber', 'unsubscribeEmail'] },
    });
    expect(keep(member('m-3'))).toEqual({ ...member('m-3'), planned: { action: 'delete', reason: 'unified' } });
    expect(keep(member('m-4'))).toBeUndefined();
    expect(keep(member('m-5'))).toBeUndefined();

    const real = await log('real.jsonl', [entry(2, { outcome: 'upsert', fields: ['email'], dryRun: false })]);
    await expect(selectFromPlan(store, real)).rejects.toThrow(SourceConfigError);
    await expect(selectByOutcome(store, path.join(dir, 'missing.jsonl'), ['failed'])).rejects.toThrow(
      SourceConfigError,
    );
  });

  it('fromPlan over a verify log: still differs and still present are planned, a verdict explanation is not a delete reason', async () => {
    const file = await log('verify.jsonl', [
      entry(2, { outcome: 'upsert', verdict: 'still differs', fields: ['email'] }),
      entry(3, {
        outcome: 'delete',
        verdict: 'still present',
        reason: 'the export still holds a member Channel Talk has deleted (not-found)',
      }),
      entry(4, { outcome: 'unchanged', verdict: 'repaired' }),
      entry(5, { outcome: 'skipped', verdict: 'changed since', reason: 'Channel Talk changed email after the repair' }),
    ]);
    const keep = selectEntries(await selectFromPlan(store, file));
    expect(keep(member('m-2'))).toEqual({ ...member('m-2'), planned: { action: 'upsert', fields: ['email'] } });
    // Any delete reason today (not-found or unified) carries the plan out.
    expect(keep(member('m-3'))).toEqual({ ...member('m-3'), planned: { action: 'delete' } });
    expect(keep(member('m-4'))).toBeUndefined();
    expect(keep(member('m-5'))).toBeUndefined();
  });

  it('memory stays flat: 200 000 selected members retain a few MB of typed arrays, not a string and an object each', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const n = 200_000;
    const id = (i: number) => `customer-member-${String(i).padStart(9, '0')}-${(i * 2654435761) % 1e9}`;
    const lines: string[] = [];
    for (let i = 0; i < n; i++)
      lines.push(JSON.stringify(entry(i + 2, { memberId: id(i), outcome: 'upsert', fields: ['email'] })));
    const file = path.join(dir, 'big.jsonl');
    await writeFile(file, lines.join('\n') + '\n');
    lines.length = 0;

    gc();
    const before = process.memoryUsage();
    const selection = await selectFromPlan(store, file);
    gc();
    const after = process.memoryUsage();
    expect(selection.get(id(12_345))).toEqual({ action: 'upsert', fields: ['email'] });
    expect(selection.size).toBe(n);
    const heapMb = (after.heapUsed - before.heapUsed) / 2 ** 20;
    const totalMb = (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / 2 ** 20;
    // The Map this replaced retained ~38 MB of JS heap here; the table holds 6 MB off the heap (read buffers that
    // have not been released yet count under arrayBuffers too, hence the looser second bound).
    expect(selection.byteLength).toBeLessThanOrEqual(6 * 2 ** 20);
    expect(heapMb).toBeLessThan(4);
    expect(totalMb).toBeLessThan(20);
  });
});
