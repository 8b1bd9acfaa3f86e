import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/audit/audit-entry';
import { createFileAuditStore } from '../../src/audit/audit-store';
import { SourceConfigError } from '../../src/source/errors';
import { notAbsentReason, selectForVerify } from '../../src/source/verify-selection';
import { writeGrowingWorkFile } from '../../src/source/growing-work-file';
import { prepareWorkFile, readWorkBatch } from '../../src/source/work-file';
import type { SourceEntry } from '../../src/domain/types';

// verifyAfter selects, by memberId, the replays an earlier run delivered, joined with a fresh export's rows; the
// members the export no longer holds follow it as `absent` entries. Through the real work file, read back.

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'verify-selection-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const store = createFileAuditStore();
const TS = '2024-12-01T00:00:00.000Z';
const AT = Date.parse(TS);
const entry = (line: number, e: Partial<AuditEntry>): AuditEntry => ({
  ts: TS,
  backfill: 'bf',
  runLabel: 'bf',
  line,
  memberId: `m-${line}`,
  outcome: 'unchanged',
  dryRun: false,
  ...e,
});
const nulls = { mobileNumber: null, email: null, unsubscribeEmail: null, unsubscribeTexting: null };

async function file(name: string, text: string): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, text);
  return p;
}
async function log(name: string, entries: AuditEntry[]): Promise<string> {
  return file(name, entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
}

async function workSet(auditPath: string, csv: string, name: string): Promise<SourceEntry[]> {
  const verify = await selectForVerify(store, auditPath);
  const source = await file(`${name}.csv`, csv);
  const workFile = path.join(dir, name, 'members.jsonl');
  await prepareWorkFile({ type: 'csv', path: source }, workFile, verify.select, verify.absent);
  return (await readWorkBatch(workFile, 0, 1000)).entries;
}

describe('selectForVerify', () => {
  it('keeps delivered upserts and deletes, joined by memberId with the export; absent ones follow', async () => {
    const auditPath = await log('repair.jsonl', [
      entry(2, { outcome: 'upsert', fields: ['email'], delivered: true }),
      entry(3, { outcome: 'delete', reason: 'not-found', delivered: true, ts: '2024-12-01T00:00:05.000Z' }),
      entry(4, { outcome: 'unchanged' }),
      entry(5, { outcome: 'failed', stage: 'replay', delivered: false }),
      entry(6, { outcome: 'delete', reason: 'unified', delivered: true }),
      entry(7, { outcome: 'upsert', fields: ['mobileNumber', 'unsubscribeTexting'], delivered: true }),
      entry(8, { outcome: 'skipped', reason: 'bad email' }),
    ]);
    // The fresh export: new line numbers, a member it no longer holds (m-3), a new member (m-99), a duplicate.
    const csv = [
      'memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting',
      'm-99,,,,',
      'm-7,010-1234-5678,,,true',
      'm-4,,,,',
      'm-2,,new@example.com,,',
      'm-6,,,,',
      'm-2,,other@example.com,,',
      'm-5,,,,',
    ].join('\n');
    const entries = await workSet(auditPath, csv, 'join');
    expect(entries).toEqual([
      {
        line: 7,
        member: { ...nulls, memberId: 'm-7', mobileNumber: '010-1234-5678', unsubscribeTexting: true },
        repair: { event: 'upsert', fields: ['mobileNumber', 'unsubscribeTexting'], deliveredAt: AT },
        exportLine: 3,
      },
      {
        line: 2,
        member: { ...nulls, memberId: 'm-2', email: 'new@example.com' },
        repair: { event: 'upsert', fields: ['email'], deliveredAt: AT },
        exportLine: 5,
      },
      {
        line: 6,
        member: { ...nulls, memberId: 'm-6' },
        repair: { event: 'delete', reason: 'unified', deliveredAt: AT },
        exportLine: 6,
      },
      {
        line: 3,
        member: { ...nulls, memberId: 'm-3' },
        repair: { event: 'delete', reason: 'not-found', deliveredAt: AT + 5000 },
        absent: true,
      },
    ]);
  });

  it("a selected member's unreadable row is kept (as a skip with its repair): the verdict says so", async () => {
    const auditPath = await log('bad-row.jsonl', [entry(2, { outcome: 'upsert', fields: ['email'], delivered: true })]);
    const csv = ['memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting', 'm-2,,,maybe,'].join('\n');
    const [only, ...rest] = await workSet(auditPath, csv, 'bad-row');
    expect(rest).toEqual([]);
    expect(only).toMatchObject({
      line: 2,
      memberId: 'm-2',
      exportLine: 2,
      repair: { event: 'upsert', fields: ['email'], deliveredAt: AT },
    });
    expect('skip' in only! && typeof only.skip).toBe('string');
  });

  it('an export whose end is a quoted field never closed: read beside the batches, its unread members are bad rows', async () => {
    const auditPath = await log('unclosed.jsonl', [
      entry(2, { outcome: 'upsert', fields: ['email'], delivered: true }),
      entry(3, { outcome: 'delete', reason: 'not-found', delivered: true }),
      entry(4, { outcome: 'upsert', fields: ['email'], delivered: true }),
    ]);
    // m-2 is read; m-4's row opens a quote the file never closes; m-3 is not before that end, which may hold it.
    const csv = ['memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting', 'm-2,,,,', 'm-4,,"cut@exa'].join(
      '\n',
    );
    const source = await file('unclosed.csv', csv);
    const verify = await selectForVerify(store, auditPath);
    const workFile = path.join(dir, 'unclosed', 'members.jsonl');
    const spec = { type: 'csv', path: source } as const;
    const grown = await writeGrowingWorkFile({
      spec,
      workFile,
      batchSize: 10,
      select: verify.select,
      after: verify.absent,
    });
    expect(grown).toMatchObject({ rows: 3, members: 1, skipped: 2 });
    const skip =
      "the export's end is unreadable from line 3 on and may hold it (quoted field never closed: the rest of the file is one bad record (truncated or corrupt file))";
    expect((await readWorkBatch(workFile, 0, 1000)).entries).toEqual([
      {
        line: 2,
        member: { ...nulls, memberId: 'm-2' },
        repair: { event: 'upsert', fields: ['email'], deliveredAt: AT },
        exportLine: 2,
      },
      { line: 3, memberId: 'm-3', skip, repair: { event: 'delete', reason: 'not-found', deliveredAt: AT } },
      { line: 4, memberId: 'm-4', skip, repair: { event: 'upsert', fields: ['email'], deliveredAt: AT } },
    ]);
    // Read whole before the first lookup, the same export still stops the run.
    const whole = await selectForVerify(store, auditPath);
    await expect(
      prepareWorkFile(spec, path.join(dir, 'unclosed-whole', 'members.jsonl'), whole.select, whole.absent),
    ).rejects.toThrow(/line 3 is never closed/);
  });

  // A row between good rows whose memberId cannot be read (not valid JSON, a CSV row of the wrong width): whose it is
  // cannot be known, so a member the export's other rows do not hold is a bad row naming it, never `absent` (a
  // delete would be called repaired on no evidence). A row read with an empty or missing memberId names no member
  // (customers' tables hold such rows; the repair skipped them too): the member it lacks is absent as ever.
  const header = 'memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting';
  const jsonl = (middle: string) => ['{"memberId":"m-2"}', middle, '{"memberId":"m-4"}'];
  const middleRowCases = [
    { name: 'a CSV row of too few fields', ext: 'csv', rows: [header, 'm-2,,,,', 'lost@example.com', 'm-4,,,,'] },
    { name: 'a CSV row of too many fields', ext: 'csv', rows: [header, 'm-2,,,,', ',,,,,m-3', 'm-4,,,,'] },
    { name: 'a JSONL line not JSON', ext: 'jsonl', rows: jsonl('{"memberId":"m-') },
    { name: 'a JSONL line not an object', ext: 'jsonl', rows: jsonl('["m-3"]') },
    { name: 'a JSONL id number too large to keep', ext: 'jsonl', rows: jsonl('{"memberId":12345678901234567890}') },
    { name: 'an empty memberId cell', ext: 'csv', rows: [header, 'm-2,,,,', ',,lost@example.com,,', 'm-4,,,,'] },
    { name: 'a blank memberId cell', ext: 'csv', rows: [header, 'm-2,,,,', '  ,,,true,', 'm-4,,,,'] },
    { name: 'a JSONL line without memberId', ext: 'jsonl', rows: jsonl('{"email":"lost@example.com"}') },
    { name: 'a JSONL line with a null memberId', ext: 'jsonl', rows: jsonl('{"memberId":null}') },
  ] as const;
  for (const c of middleRowCases) {
    for (const growing of [false, true]) {
      const unreadable = !c.name.includes('memberId');
      it(`${c.name} in the middle of the export (${growing ? 'read beside the batches' : 'read whole'}): the member not found is ${unreadable ? 'a bad row naming it' : 'absent'}`, async () => {
        const auditPath = await log(`middle-${c.name}-${growing}.jsonl`, [
          entry(2, { outcome: 'upsert', fields: ['email'], delivered: true }),
          entry(3, { outcome: 'delete', reason: 'not-found', delivered: true }),
          entry(4, { outcome: 'delete', reason: 'unified', delivered: true }),
        ]);
        const verify = await selectForVerify(store, auditPath);
        const name = `middle-${c.name.replace(/\W+/g, '-')}-${growing}`;
        const spec = { type: c.ext, path: await file(`${name}.${c.ext}`, c.rows.join('\n') + '\n') } as const;
        const workFile = path.join(dir, name, 'members.jsonl');
        const summary = growing
          ? await writeGrowingWorkFile({ spec, workFile, batchSize: 2, select: verify.select, after: verify.absent })
          : await prepareWorkFile(spec, workFile, verify.select, verify.absent);
        const entries = (await readWorkBatch(workFile, 0, 1000)).entries;
        const line = c.ext === 'csv' ? 3 : 2;
        expect(entries.slice(0, 2)).toMatchObject([
          { line: 2, member: { memberId: 'm-2' }, exportLine: line - 1 },
          { line: 4, member: { memberId: 'm-4' }, exportLine: line + 1 },
        ]);
        const repair = { event: 'delete', reason: 'not-found', deliveredAt: AT };
        if (!unreadable) {
          expect(summary).toMatchObject({ rows: 3, members: 3, skipped: 0 });
          expect(entries[2]).toEqual({ line: 3, member: { ...nulls, memberId: 'm-3' }, repair, absent: true });
          return;
        }
        expect(summary).toMatchObject({ rows: 3, members: 2, skipped: 1 });
        const [m3] = entries.slice(2);
        expect(m3).toMatchObject({ line: 3, memberId: 'm-3', repair });
        expect(m3).not.toHaveProperty('absent');
        expect('skip' in m3! && m3.skip).toMatch(
          new RegExp(`^the export's line ${line} \\(.+\\) cannot be read and may be its row$`),
        );
      });
    }
  }

  it('unreadable rows are named by line and problem, the first three, the rest counted', () => {
    const row = (line: number, skip = 'not valid JSON') => ({ line, skip });
    const cases = [
      { rows: { named: [], count: 0 }, unread: undefined, reason: undefined },
      {
        rows: { named: [row(5)], count: 1, last: 5 },
        unread: undefined,
        reason: "the export's line 5 (not valid JSON) cannot be read and may be its row",
      },
      {
        rows: { named: [row(5), row(9, 'invalid UTF-8')], count: 2, last: 9 },
        unread: undefined,
        reason: "the export's lines 5 (not valid JSON), 9 (invalid UTF-8) cannot be read and one may be its row",
      },
      {
        rows: { named: [row(5), row(6), row(7)], count: 10, last: 40 },
        unread: undefined,
        reason:
          "the export's lines 5 (not valid JSON), 6 (not valid JSON), 7 (not valid JSON) and 7 more cannot be read and one may be its row",
      },
      // The unreadable end is the last row read: named once, by its own reason.
      {
        rows: { named: [row(8, 'cut')], count: 1, last: 8 },
        unread: row(8, 'cut'),
        reason: "the export's end is unreadable from line 8 on and may hold it (cut)",
      },
      {
        rows: { named: [row(5), row(8, 'cut')], count: 2, last: 8 },
        unread: row(8, 'cut'),
        reason:
          "the export's end is unreadable from line 8 on and may hold it (cut); the export's line 5 (not valid JSON) cannot be read and may be its row",
      },
    ];
    for (const c of cases) expect(notAbsentReason(c.rows, c.unread)).toBe(c.reason);
  });

  it('an unreadable row changes nothing when every replayed member is in the export', async () => {
    const auditPath = await log('unread-all-found.jsonl', [
      entry(2, { outcome: 'upsert', fields: ['email'], delivered: true }),
    ]);
    const entries = await workSet(auditPath, [header, ',,,', 'm-2,,,,'].join('\n'), 'unread-all-found');
    expect(entries).toEqual([
      {
        line: 2,
        member: { ...nulls, memberId: 'm-2' },
        repair: { event: 'upsert', fields: ['email'], deliveredAt: AT },
        exportLine: 3,
      },
    ]);
  });

  it('refuses the audit log of a dry run: it replayed nothing', async () => {
    const auditPath = await log('dry.jsonl', [entry(2, { outcome: 'upsert', fields: ['email'], dryRun: true })]);
    await expect(selectForVerify(store, auditPath)).rejects.toThrow(SourceConfigError);
    await expect(selectForVerify(store, auditPath)).rejects.toThrow(/recorded by a dry run/);
  });

  it('a missing audit log stops the run naming it', async () => {
    await expect(selectForVerify(store, path.join(dir, 'nope.jsonl'))).rejects.toThrow(/does not exist/);
  });
});
