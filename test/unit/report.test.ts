import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/audit/audit-entry';
import { createFileAuditStore, parseAuditRecord, type AuditReadStats } from '../../src/audit/audit-store';
import { AuditFileError, asAuditFileErrors } from '../../src/report/audit-file';
import { CSV_HEADER, csvCell, csvRow, exportAudit } from '../../src/report/export';
import { LineSet } from '../../src/report/line-set';
import { renderSummary } from '../../src/report/render';
import { fieldChangeTime } from '../../src/domain/decide';
import {
  DEFAULT_OUTAGE,
  MAX_LINES_PER_GROUP,
  generalizeReason,
  memberPhase,
  phaseOf,
  summarize,
  SummaryBuilder,
  type OutagePhase,
} from '../../src/report/summary';
import type { ComparedField } from '../../src/domain/types';

/** An audit log as `webhook-backfill report` reads a file: the file store's records, its errors as AuditFileError. */
const readAuditFile = (file: string, stats?: AuditReadStats) =>
  asAuditFileErrors(createFileAuditStore().entries(file, stats));

const KST = (local: string) => Date.parse(`${local}+09:00`);
const START = KST('2024-11-01T00:40:00');
const END = KST('2024-11-12T15:37:00');
const BEFORE = KST('2024-06-01T12:00:00');
const INSIDE = KST('2024-11-05T09:00:00');
const AFTER = KST('2024-11-20T09:00:00');

let seq = 0;
function entry(e: Partial<AuditEntry> & Pick<AuditEntry, 'line' | 'outcome'>): AuditEntry {
  seq += 1;
  return {
    ts: `2024-12-01T00:00:${String(seq % 60).padStart(2, '0')}.000Z`,
    backfill: 'bf-1',
    runLabel: 'bf-1',
    memberId: `m-${e.line}`,
    dryRun: false,
    ...e,
  };
}

describe('the outage window', () => {
  it('defaults to 2024-11-01 00:40 .. 2024-11-12 15:37 KST', () => {
    expect(DEFAULT_OUTAGE).toEqual({ start: START, end: END });
    expect(new Date(DEFAULT_OUTAGE.start).toISOString()).toBe('2024-10-31T15:40:00.000Z');
    expect(new Date(DEFAULT_OUTAGE.end).toISOString()).toBe('2024-11-12T06:37:00.000Z');
  });

  it.each<[string, number | undefined, OutagePhase]>([
    ['long before', BEFORE, 'before'],
    ['a millisecond before the start', START - 1, 'before'],
    ['at the start (included)', START, 'inside'],
    ['in the middle', INSIDE, 'inside'],
    ['at the end (included)', END, 'inside'],
    ['a millisecond after the end', END + 1, 'after'],
    ['after', AFTER, 'after'],
    ['no time', undefined, 'unknown'],
    ['not a number', Number.NaN, 'unknown'],
  ])('%s → %s', (_what, time, phase) => {
    expect(phaseOf(time)).toBe(phase);
  });

  it('takes a custom window', () => {
    const window = { start: Date.parse('2024-06-01T00:00:00Z'), end: Date.parse('2024-06-30T00:00:00Z') };
    expect(phaseOf(BEFORE, window)).toBe('inside');
    expect(phaseOf(INSIDE, window)).toBe('after');
  });

  // The report reads an entry's change times as the decision reads a user's (src/domain/change-time.ts).
  const times = { updatedAt: 30, unsubscribeEmailUpdatedAt: 10, unsubscribeTextingUpdatedAt: 20 };
  it.each<[string, Record<string, unknown>, ComparedField, number | undefined]>([
    ['email uses updatedAt', times, 'email', 30],
    ['mobileNumber uses updatedAt', times, 'mobileNumber', 30],
    ['unsubscribeEmail uses its own time', times, 'unsubscribeEmail', 10],
    ['unsubscribeTexting uses its own time', times, 'unsubscribeTexting', 20],
    ['a consent flag without its own time falls back to updatedAt', { updatedAt: 30 }, 'unsubscribeTexting', 30],
    ['nothing known', {}, 'email', undefined],
    // A log written before change times were read finite only holds null where Channel Talk sent 1e999.
    [
      'a consent flag whose time was written as null falls back to updatedAt',
      { ...times, unsubscribeEmailUpdatedAt: null },
      'unsubscribeEmail',
      30,
    ],
    ['updatedAt written as null is no time', { updatedAt: null }, 'email', undefined],
  ])('%s', (_what, t, field, expected) => {
    expect(fieldChangeTime(t, field)).toBe(expected);
  });

  it.each<[string, { phase: OutagePhase; time: number | undefined }[], OutagePhase]>([
    [
      'any field inside wins',
      [
        { phase: 'before', time: 1 },
        { phase: 'inside', time: 2 },
        { phase: 'after', time: 3 },
      ],
      'inside',
    ],
    [
      'all before',
      [
        { phase: 'before', time: 1 },
        { phase: 'before', time: 2 },
      ],
      'before',
    ],
    [
      'the latest change decides otherwise',
      [
        { phase: 'before', time: 1 },
        { phase: 'after', time: 3 },
      ],
      'after',
    ],
    [
      'unknown fields do not hide known ones',
      [
        { phase: 'unknown', time: undefined },
        { phase: 'before', time: 1 },
      ],
      'before',
    ],
    ['nothing known', [{ phase: 'unknown', time: undefined }], 'unknown'],
  ])('member phase: %s', (_what, phases, expected) => {
    expect(memberPhase(phases)).toBe(expected);
  });
});

describe('reasons', () => {
  it.each([
    ['duplicate memberId (first seen on line 12)', 'duplicate memberId (first seen on line N)'],
    [
      'invalid boolean in unsubscribeEmail; duplicate memberId (first seen on line 7)',
      'invalid boolean in unsubscribeEmail; duplicate memberId (first seen on line N)',
    ],
    ['HTTP 500 after 5 attempts', 'HTTP 500 after 5 attempts'],
    ['replay rejected: HTTP 400', 'replay rejected: HTTP 400'],
  ])('%s → %s', (reason, general) => {
    expect(generalizeReason(reason)).toBe(general);
  });
});

describe('summarize', () => {
  const entries: AuditEntry[] = [
    entry({ line: 2, outcome: 'unchanged', updatedAt: INSIDE }),
    entry({ line: 3, outcome: 'upsert', fields: ['email'], delivered: true, status: 200, updatedAt: INSIDE }),
    entry({
      line: 4,
      outcome: 'upsert',
      fields: ['mobileNumber', 'unsubscribeEmail'],
      delivered: true,
      updatedAt: AFTER,
      unsubscribeEmailUpdatedAt: BEFORE,
    }),
    entry({
      line: 5,
      outcome: 'upsert',
      fields: ['unsubscribeTexting'],
      delivered: true,
      updatedAt: INSIDE,
      unsubscribeTextingUpdatedAt: BEFORE,
    }),
    entry({ line: 6, outcome: 'upsert', fields: ['email'], delivered: true }),
    entry({ line: 7, outcome: 'delete', reason: 'not-found', delivered: true }),
    entry({ line: 8, outcome: 'delete', reason: 'unified', delivered: true, updatedAt: INSIDE }),
    entry({ line: 9, outcome: 'delete', reason: 'not-found', delivered: true }),
    entry({ line: 10, outcome: 'failed', stage: 'fetch', reason: 'HTTP 500 after 5 attempts', attempts: 5 }),
    entry({
      line: 11,
      outcome: 'failed',
      stage: 'replay',
      reason: 'replay rejected: HTTP 400',
      status: 400,
      fields: ['unsubscribeTexting'],
      delivered: false,
      unsubscribeTextingUpdatedAt: INSIDE,
    }),
    entry({ line: 12, outcome: 'skipped', reason: 'invalid boolean in unsubscribeEmail' }),
    entry({ line: 13, outcome: 'skipped', reason: 'duplicate memberId (first seen on line 3)' }),
    entry({ line: 14, outcome: 'skipped', reason: 'duplicate memberId (first seen on line 4)' }),
    entry({ line: 15, outcome: 'failed', stage: 'fetch', reason: 'HTTP 500 after 5 attempts' }),
    entry({ line: 16, outcome: 'upsert', fields: ['email', 'mobileNumber'], delivered: true, updatedAt: BEFORE }),
    // A repeated record of a recorded line (a crash between append and acknowledgement): the first wins.
    entry({ line: 10, outcome: 'unchanged' }),
  ];
  const s = summarize(entries);

  it('counts each source line once, the first record winning', () => {
    expect(s.rows).toBe(15);
    expect(s.repeated).toBe(1);
    expect(s.outcomes).toEqual({ upsert: 5, delete: 3, unchanged: 1, failed: 3, skipped: 3 });
    expect(s.delivered).toBe(8);
    expect(s.backfill).toBe('bf-1');
    expect(s.dryRun).toBe(false);
  });

  it('counts members differing per field, failed replays included', () => {
    expect(s.differingMembers).toBe(6);
    expect(s.differingFields).toEqual({ email: 3, mobileNumber: 2, unsubscribeEmail: 1, unsubscribeTexting: 2 });
  });

  it('counts deletes per reason', () => {
    expect(s.deletes).toEqual({ 'not-found': 2, unified: 1 });
  });

  it('groups failures by stage and reason, with their lines', () => {
    expect(s.failures).toEqual([
      { stage: 'fetch', reason: 'HTTP 500 after 5 attempts', count: 2, lines: [10, 15] },
      { stage: 'replay', reason: 'replay rejected: HTTP 400', count: 1, lines: [11] },
    ]);
  });

  it('groups skips by reason, per-row numbers generalised', () => {
    expect(s.skipped).toEqual([
      { reason: 'duplicate memberId (first seen on line N)', count: 2, lines: [13, 14] },
      { reason: 'invalid boolean in unsubscribeEmail', count: 1, lines: [12] },
    ]);
  });

  it("tells from Channel Talk's change times which differences arose inside the outage", () => {
    // line 3: email inside. line 4: mobileNumber after (updatedAt), unsubscribeEmail before → after.
    // line 5: unsubscribeTexting by its own time, before. line 6: no times. line 11: inside. line 16: before.
    expect(s.outage.members).toEqual({ inside: 2, before: 2, after: 1, unknown: 1 });
    expect(s.outage.fields).toEqual({
      email: { inside: 1, before: 1, after: 0, unknown: 1 },
      mobileNumber: { inside: 0, before: 1, after: 1, unknown: 0 },
      unsubscribeEmail: { inside: 0, before: 1, after: 0, unknown: 0 },
      unsubscribeTexting: { inside: 1, before: 1, after: 0, unknown: 0 },
    });
    expect(s.outage.start).toBe('2024-10-31T15:40:00.000Z');
  });

  it('moves with the window', () => {
    const wide = summarize(entries, { start: BEFORE - 1, end: AFTER + 1 });
    expect(wide.outage.members).toEqual({ inside: 5, before: 0, after: 0, unknown: 1 });
    expect(wide.outage.start).toBe(new Date(BEFORE - 1).toISOString());
  });

  it.each<[string, boolean[], boolean | null]>([
    ['all dry', [true, true], true],
    ['all real', [false, false], false],
    ['mixed', [true, false], null],
    ['empty', [], null],
  ])('dryRun: %s', (_what, flags, expected) => {
    expect(summarize(flags.map((dryRun, i) => entry({ line: i + 2, outcome: 'unchanged', dryRun }))).dryRun).toBe(
      expected,
    );
  });

  it('keeps counts exact but line lists bounded', () => {
    const builder = new SummaryBuilder();
    const n = MAX_LINES_PER_GROUP + 500;
    for (let line = n + 1; line >= 2; line--)
      builder.add(entry({ line, outcome: 'failed', stage: 'fetch', reason: 'timeout after 5 attempts' }));
    const [group] = builder.result().failures;
    expect(group!.count).toBe(n);
    expect(group!.lines).toHaveLength(MAX_LINES_PER_GROUP);
    expect(group!.lines).toEqual([...group!.lines].sort((a, b) => a - b));
  });

  it('renders the summary as text', () => {
    const text = renderSummary(s, { source: '/data/audit.jsonl', unreadable: 2 });
    expect(text).toContain('Audit of bf-1: 15 rows (/data/audit.jsonl)');
    expect(text).toMatch(/upserts\s+5\n/);
    expect(text).toContain('Replays delivered (accepted by the receiver): 8 of 8 upserts and deletes');
    expect(text).toMatch(/Members differing, per field: 6 \(of them 1 whose replay failed\)/);
    expect(text).toMatch(/email\s+3\n/);
    expect(text).toMatch(/not-found\s+2\n/);
    expect(text).toMatch(/fetch: HTTP 500 after 5 attempts\s+2 {2}lines 10, 15\n/);
    expect(text).toMatch(/duplicate memberId \(first seen on line N\)\s+2 {2}lines 13, 14\n/);
    expect(text).toMatch(/changed inside the window.*\s+2\n/);
    expect(text).toMatch(/changed before it.*\s+2\n/);
    expect(text).toMatch(/unsubscribeTexting\s+1\s+1\s+0\s+0\n/);
    expect(text).toContain('1 repeated records');
    expect(text).toContain('2 lines that are not audit records');
    expect(text).not.toMatch(/@|\+82/); // no contact data can appear: only names, counts, lines
  });

  it('counts per registered webhook: routed upserts and deletes, delivered, failed, and the skipped ones (table)', () => {
    const crm = { id: 'wh-crm', name: 'CRM' };
    const wh = { id: 'wh-wh', name: 'Warehouse' };
    const old = { id: 'wh-old', name: 'Old', skipped: 'api-version' as const };
    const blocked = { id: 'wh-blk', skipped: 'blocked' as const };
    const rows: Array<[Partial<AuditEntry> & Pick<AuditEntry, 'line' | 'outcome'>]> = [
      [
        {
          line: 2,
          outcome: 'upsert',
          event: 'upsert',
          delivered: true,
          fields: ['email'],
          webhooks: [crm, wh, blocked],
        },
      ],
      [
        {
          line: 3,
          outcome: 'upsert',
          event: 'upsert',
          delivered: true,
          fields: ['unsubscribeEmail'],
          webhooks: [crm, old],
        },
      ],
      [{ line: 4, outcome: 'delete', event: 'delete', delivered: true, reason: 'not-found', webhooks: [wh, blocked] }],
      [
        {
          line: 5,
          outcome: 'failed',
          stage: 'replay',
          event: 'delete',
          delivered: false,
          reason: 'replay rejected',
          webhooks: [wh],
        },
      ],
      [{ line: 6, outcome: 'unchanged' }],
      [{ line: 2, outcome: 'upsert', event: 'upsert', delivered: true, webhooks: [crm] }], // a repeat: ignored
    ];
    const got = summarize(rows.map(([e]) => entry(e)));
    expect(got.webhooks).toEqual([
      {
        id: 'wh-blk',
        name: null,
        upserts: 0,
        deletes: 0,
        delivered: 0,
        failed: 0,
        skippedBlocked: 2,
        skippedApiVersion: 0,
      },
      {
        id: 'wh-crm',
        name: 'CRM',
        upserts: 2,
        deletes: 0,
        delivered: 2,
        failed: 0,
        skippedBlocked: 0,
        skippedApiVersion: 0,
      },
      {
        id: 'wh-old',
        name: 'Old',
        upserts: 0,
        deletes: 0,
        delivered: 0,
        failed: 0,
        skippedBlocked: 0,
        skippedApiVersion: 1,
      },
      {
        id: 'wh-wh',
        name: 'Warehouse',
        upserts: 1,
        deletes: 2,
        delivered: 2,
        failed: 1,
        skippedBlocked: 0,
        skippedApiVersion: 0,
      },
    ]);
    expect(renderSummary(got)).toMatch(/wh-wh \(Warehouse\)\s+1\s+2\s+2\s+1\s+0\s+0\n/);
    // Dry run: the same counts, labelled as what a real run would send; no section without channel webhooks.
    const dry = summarize(rows.slice(0, 2).map(([e]) => entry({ ...e, dryRun: true, delivered: false })));
    expect(dry.webhooks.find((w) => w.id === 'wh-crm')).toMatchObject({ upserts: 2, delivered: 0 });
    expect(renderSummary(dry)).toContain('Per registered webhook (what a real run would send):');
    expect(renderSummary(summarize([entry({ line: 2, outcome: 'unchanged' })]))).not.toContain(
      'Per registered webhook',
    );
  });

  it('counts deliveries per scope (WEBHOOK_EVENT_NAMES=scopes): made, and of members recorded delivered', () => {
    const C = 'member.upserted.contact';
    const S = 'member.upserted.subscription';
    const D = 'member.deleted';
    const rows: Array<Partial<AuditEntry> & Pick<AuditEntry, 'line' | 'outcome'>> = [
      {
        line: 2,
        outcome: 'upsert',
        event: 'upsert',
        delivered: true,
        fields: ['email', 'unsubscribeEmail'],
        deliveries: [
          { event: C, webhookId: 'msg_c2', endpoints: 1 },
          { event: S, webhookId: 'msg_s2', endpoints: 2 },
        ],
      },
      {
        line: 3,
        outcome: 'failed',
        stage: 'replay',
        event: 'upsert',
        delivered: false,
        fields: ['email'],
        deliveries: [{ event: C, webhookId: 'msg_c3', endpoints: 1 }],
      },
      {
        line: 4,
        outcome: 'delete',
        event: 'delete',
        delivered: true,
        reason: 'not-found',
        deliveries: [{ event: D, webhookId: 'msg_d4', endpoints: 1 }],
      },
      { line: 5, outcome: 'unchanged' },
    ];
    const got = summarize(rows.map((e) => entry(e)));
    expect(got.scopeDeliveries).toEqual([
      { event: D, deliveries: 1, delivered: 1 },
      { event: C, deliveries: 2, delivered: 1 },
      { event: S, deliveries: 2, delivered: 2 },
    ]);
    // One outcome per member all the same.
    expect(got.outcomes).toMatchObject({ upsert: 1, failed: 1, delete: 1, unchanged: 1 });
    const text = renderSummary(got);
    expect(text).toContain('Deliveries per scope (WEBHOOK_EVENT_NAMES=scopes):');
    expect(text).toMatch(/member\.upserted\.contact\s+2\s+1\n/);
    const dry = renderSummary(summarize(rows.map((e) => entry({ ...e, dryRun: true, delivered: false }))));
    expect(dry).toContain('Deliveries per scope (WEBHOOK_EVENT_NAMES=scopes) (what a real run would send):');
    expect(dry).toMatch(/member\.upserted\.subscription\s+2\n/);
    // The notice naming records none, and the report has no such section.
    expect(renderSummary(summarize([entry({ line: 2, outcome: 'upsert', event: 'upsert' })]))).not.toContain(
      'Deliveries per scope',
    );
  });

  it('says when the lines of a reason are cut short', () => {
    const many = summarize(
      Array.from({ length: 25 }, (_, i) => entry({ line: i + 2, outcome: 'skipped', reason: 'not valid JSON' })),
    );
    expect(renderSummary(many)).toContain(
      'lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, … and 5 more',
    );
  });
});

describe('LineSet', () => {
  it('adds each line once and grows', () => {
    const set = new LineSet();
    expect(set.add(1)).toBe(true);
    expect(set.add(1)).toBe(false);
    expect(set.add(1_000_000)).toBe(true);
    expect(set.has(1_000_000)).toBe(true);
    expect(set.has(999_999)).toBe(false);
    expect(() => set.add(-1)).toThrow(RangeError);
  });
});

describe('export', () => {
  it.each<[unknown, string]>([
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    [undefined, ''],
    [null, ''],
    [404, '404'],
    [false, 'false'],
    [['email', 'mobileNumber'], 'email;mobileNumber'],
  ])('csvCell(%j) = %j', (value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });

  it('writes a CSV row per entry, change times in ISO 8601', () => {
    const e = entry({
      line: 4,
      memberId: 'team/a,"b"',
      outcome: 'upsert',
      fields: ['mobileNumber', 'email'],
      delivered: true,
      status: 200,
      webhookId: 'msg_x',
      attempts: 1,
      updatedAt: START,
    });
    const cells = csvRow(e);
    expect(cells.startsWith('4,"team/a,""b""",upsert,mobileNumber;email,,,')).toBe(true);
    expect(cells).toContain(',2024-10-31T15:40:00.000Z,');
    expect(CSV_HEADER.split(',')).toHaveLength(cells.split(',').length - 1); // the memberId holds one quoted comma
  });

  it('writes what a replay went through: the delete guard, the re-check, the webhooks and scopes it went to', () => {
    const e = entry({
      line: 7,
      memberId: 'm-7',
      outcome: 'delete',
      reason: 'not-found',
      delivered: true,
      heldByDeleteGuard: true,
      deletesConfirmedAt: '2024-11-13T01:00:00.000Z',
      recheckedAt: '2024-11-13T01:00:05.000Z',
      changedDuringRepair: true,
      recheck: 'upsert [email] -> delete (not-found)',
      webhooks: [
        { id: 'wh-1', name: 'CRM' },
        { id: 'wh-2', skipped: 'blocked' },
      ],
      deliveries: [{ event: 'user.deleted', webhookId: 'msg_d', endpoints: 2 }],
    });
    const row = Object.fromEntries(CSV_HEADER.split(',').map((column, i) => [column, csvRow(e).split(',')[i]]));
    expect(row).toMatchObject({
      heldByDeleteGuard: 'true',
      deletesConfirmedAt: '2024-11-13T01:00:00.000Z',
      recheckedAt: '2024-11-13T01:00:05.000Z',
      changedDuringRepair: 'true',
      recheck: 'upsert [email] -> delete (not-found)',
      webhooks: 'CRM (wh-1);wh-2 skipped: blocked',
      deliveries: 'user.deleted msg_d x2',
    });
    // The columns before these keep their places.
    expect(CSV_HEADER.startsWith('line,memberId,outcome,fields,reason,stage,event,delivered,status,webhookId,')).toBe(
      true,
    );
  });

  it.each(['csv', 'json'] as const)('streams %s in chunks', async (format) => {
    const entries = Array.from({ length: 2000 }, (_, i) => entry({ line: i + 2, outcome: 'unchanged' }));
    const chunks: string[] = [];
    const count = await exportAudit(entries, format, async (chunk) => {
      chunks.push(chunk);
    });
    expect(count).toBe(2000);
    expect(chunks.length).toBeGreaterThan(1);
    const text = chunks.join('');
    if (format === 'json')
      expect((JSON.parse(text) as AuditEntry[]).map((e) => e.line)).toEqual(entries.map((e) => e.line));
    else expect(text.trimEnd().split('\n')).toHaveLength(2001);
  });

  it('writes an empty JSON array for an empty log', async () => {
    let text = '';
    await exportAudit([], 'json', async (chunk) => {
      text += chunk;
    });
    expect(JSON.parse(text)).toEqual([]);
  });
});

describe('reading an audit file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'report-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each<[string, boolean]>([
    ['{"line":2,"outcome":"upsert","dryRun":false}', true],
    ['{"line":2,"outcome":"maybe","dryRun":false}', false],
    ['{"line":0,"outcome":"upsert"}', false],
    ['{"line":"2","outcome":"upsert"}', false],
    ['{"line":2,"outcome":"ups', false],
    ['[1,2]', false],
  ])('parseAuditRecord(%s) is a record: %s', (text, ok) => {
    expect(parseAuditRecord(text) !== undefined).toBe(ok);
  });

  it('keeps the first record of a line and skips torn ones', async () => {
    const file = path.join(dir, 'audit.jsonl');
    const lines = [
      JSON.stringify(entry({ line: 2, outcome: 'upsert', fields: ['email'] })),
      '{"line":3,"outcome":"unch', // torn by a crash
      '',
      JSON.stringify(entry({ line: 3, outcome: 'unchanged' })),
      JSON.stringify(entry({ line: 2, outcome: 'failed' })),
      JSON.stringify(entry({ line: 4, outcome: 'skipped', reason: 'not valid JSON' })),
    ];
    await writeFile(file, `${lines.join('\r\n')}\n`);
    const stats: AuditReadStats = { entries: 0, repeated: 0, unreadable: 0 };
    const read: AuditEntry[] = [];
    for await (const e of readAuditFile(file, stats)) read.push(e);
    expect(read.map((e) => [e.line, e.outcome])).toEqual([
      [2, 'upsert'],
      [3, 'unchanged'],
      [4, 'skipped'],
    ]);
    expect(stats).toEqual({ entries: 3, repeated: 1, unreadable: 1 });
  });

  it('fails with one clear error for a missing file or a directory', async () => {
    const drain = async (file: string) => {
      for await (const _ of readAuditFile(file)) void _;
    };
    await expect(drain(path.join(dir, 'nope.jsonl'))).rejects.toThrow(
      new AuditFileError(`cannot read the audit log ${path.join(dir, 'nope.jsonl')}: no such file`),
    );
    await expect(drain(dir)).rejects.toThrow(/is a directory/);
  });

  it('streams: an entry is yielded before the writer has finished (so a huge log is never held whole)', async () => {
    const fifo = path.join(dir, 'audit.fifo');
    execFileSync('mkfifo', [fifo]);
    const iterator = readAuditFile(fifo)[Symbol.asyncIterator]();
    const writer = createWriteStream(fifo);
    writer.write(`${JSON.stringify(entry({ line: 2, outcome: 'upsert', fields: ['email'] }))}\n`);
    const first = await iterator.next();
    expect(first.value).toMatchObject({ line: 2, outcome: 'upsert' });
    expect(writer.writableFinished).toBe(false);
    writer.end(`${JSON.stringify(entry({ line: 3, outcome: 'unchanged' }))}\n`);
    const second = await iterator.next();
    expect(second.value).toMatchObject({ line: 3 });
    expect((await iterator.next()).done).toBe(true);
  });

  it('summarises a large log from the stream', async () => {
    const file = path.join(dir, 'big.jsonl');
    const out = createWriteStream(file);
    const n = 100_000;
    for (let line = 2; line < n + 2; line++) {
      const e =
        line % 10 === 0
          ? entry({ line, outcome: 'upsert', fields: ['email'], updatedAt: INSIDE })
          : entry({ line, outcome: 'unchanged' });
      if (!out.write(`${JSON.stringify(e)}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
    }
    await new Promise((r) => out.end(r));
    const builder = new SummaryBuilder();
    for await (const e of readAuditFile(file)) builder.add(e);
    const s = builder.result();
    expect(s.rows).toBe(n);
    expect(s.outcomes.upsert).toBe(n / 10);
    expect(s.outage.members.inside).toBe(n / 10);
  });
});

describe('the report of issue 9: delete guard and onlyChangedSince', () => {
  const decisions = (outcomes: Array<'upsert' | 'delete' | 'unchanged' | 'failed'>) =>
    outcomes.map((outcome, i) =>
      entry({
        line: i + 2,
        outcome,
        ...(outcome === 'upsert' ? { fields: ['email'] as ComparedField[], updatedAt: INSIDE } : {}),
        dryRun: true,
      }),
    );

  it.each<
    [
      string,
      Array<'upsert' | 'delete' | 'unchanged' | 'failed'>,
      { maxDeleteShare: number; minDecisions: number } | undefined,
      { share: number; wouldTripAt: number | null; decisions: number; deletes: number },
    ]
  >([
    [
      'every lookup a 404, default thresholds: trips at decision 100',
      Array(150).fill('delete'),
      undefined,
      { share: 1, wouldTripAt: 100, decisions: 150, deletes: 150 },
    ],
    [
      '15% deletes (the examples): never trips',
      [...Array(85).fill('unchanged'), ...Array(15).fill('delete'), ...Array(100).fill('upsert')],
      undefined,
      { share: 15 / 200, wouldTripAt: null, decisions: 200, deletes: 15 },
    ],
    [
      'deletes first, then many others: trips early although the final share is low',
      [...Array(100).fill('delete'), ...Array(900).fill('unchanged')],
      undefined,
      { share: 0.1, wouldTripAt: 100, decisions: 1000, deletes: 100 },
    ],
    [
      'fewer decisions than the minimum: never trips',
      Array(99).fill('delete'),
      undefined,
      { share: 1, wouldTripAt: null, decisions: 99, deletes: 99 },
    ],
    [
      'failed lookups are not decisions',
      [...Array(60).fill('failed'), ...Array(40).fill('delete')],
      undefined,
      { share: 1, wouldTripAt: null, decisions: 40, deletes: 40 },
    ],
    [
      'given thresholds: 3 of 10 > 0.25',
      [...Array(7).fill('unchanged'), ...Array(3).fill('delete')],
      { maxDeleteShare: 0.25, minDecisions: 10 },
      { share: 0.3, wouldTripAt: 10, decisions: 10, deletes: 3 },
    ],
    [
      'exactly the share does not pass it',
      [...Array(5).fill('unchanged'), ...Array(5).fill('delete')],
      { maxDeleteShare: 0.5, minDecisions: 10 },
      { share: 0.5, wouldTripAt: null, decisions: 10, deletes: 5 },
    ],
  ])('%s', (_name, outcomes, guard, expected) => {
    const s = summarize(decisions(outcomes), DEFAULT_OUTAGE, guard ? { guard } : {});
    expect(s.deleteGuard).toEqual({
      ...(guard ?? { maxDeleteShare: 0.5, minDecisions: 100 }),
      ...expected,
      confirmed: null,
    });
  });

  it('shows a confirmation of deletes past the guard (the stamp on each delete recorded after it)', () => {
    const entries = [
      entry({ line: 2, outcome: 'delete', reason: 'not-found', dryRun: false }),
      entry({
        line: 3,
        outcome: 'delete',
        reason: 'not-found',
        dryRun: false,
        deletesConfirmedAt: '2024-11-20T01:00:00.000Z',
      }),
      entry({
        line: 4,
        outcome: 'delete',
        reason: 'not-found',
        dryRun: false,
        deletesConfirmedAt: '2024-11-20T01:00:00.000Z',
      }),
      entry({ line: 5, outcome: 'unchanged', dryRun: false }),
    ];
    const s = summarize(entries);
    expect(s.deleteGuard.confirmed).toEqual({ at: '2024-11-20T01:00:00.000Z', deletes: 2 });
    expect(renderSummary(s)).toContain(
      'deletes confirmed at 2024-11-20T01:00:00.000Z (resume with {"confirmDeletes": true}): 2 deletes recorded after the confirmation',
    );
    expect(renderSummary(summarize(entries.slice(0, 1)))).not.toContain('deletes confirmed');
  });

  it('counts what onlyChangedSince would skip (default: the outage start; or the time given)', () => {
    const entries = [
      entry({ line: 2, outcome: 'upsert', fields: ['email'], updatedAt: BEFORE }),
      entry({ line: 3, outcome: 'upsert', fields: ['email'], updatedAt: INSIDE }),
      entry({
        line: 4,
        outcome: 'upsert',
        fields: ['unsubscribeEmail'],
        updatedAt: INSIDE,
        unsubscribeEmailUpdatedAt: BEFORE,
      }),
      entry({
        line: 5,
        outcome: 'upsert',
        fields: ['email', 'unsubscribeEmail'],
        updatedAt: INSIDE,
        unsubscribeEmailUpdatedAt: BEFORE,
      }),
      entry({ line: 6, outcome: 'upsert', fields: ['email'] }),
      entry({ line: 7, outcome: 'delete', reason: 'not-found' }),
    ];
    const s = summarize(entries);
    expect(s.onlyChangedSince).toEqual({ since: new Date(START).toISOString(), wouldSkip: 2 });
    expect(summarize(entries, DEFAULT_OUTAGE, { onlyChangedSince: AFTER }).onlyChangedSince.wouldSkip).toBe(4);
    const text = renderSummary(s);
    expect(text).toContain(`onlyChangedSince ${new Date(START).toISOString()} would skip 2 of the 5 differing members`);
    expect(text).toContain(
      'Delete guard (maxDeleteShare 0.5, deleteGuardMinDecisions 100): 1 of 6 decisions are deletes (16.7%)',
    );
    expect(text).toContain('a real run would not pause: fewer than 100 decisions');
  });

  it('says when a real run would pause', () => {
    const text = renderSummary(summarize(decisions(Array(120).fill('delete'))));
    expect(text).toContain('120 of 120 decisions are deletes (100.0%)');
    expect(text).toContain('a real run would pause at decision 100');
  });
});

describe('members changed on Channel Talk during the repair (issue 23)', () => {
  const entries: AuditEntry[] = [
    entry({ line: 2, outcome: 'upsert', fields: ['email'], delivered: true }),
    entry({
      line: 3,
      outcome: 'delete',
      reason: 'not-found',
      delivered: true,
      deferred: true,
      changedDuringRepair: true,
    }),
    entry({ line: 4, outcome: 'unchanged', deferred: true, changedDuringRepair: true }),
  ];

  it('counts them beside the outcomes, each also under the outcome finally recorded', () => {
    const s = summarize(entries);
    expect(s.changedDuringRepair).toBe(2);
    expect(s.outcomes).toMatchObject({ upsert: 1, delete: 1, unchanged: 1 });
    expect(renderSummary(s)).toMatch(/changed on Channel Talk during the repair\s+2\n/);
  });

  it('a log without any says nothing of them; a dry run explains the rule', () => {
    expect(renderSummary(summarize(entries.slice(0, 1)))).not.toContain('during the repair');
    const dry = summarize([entry({ line: 2, outcome: 'upsert', fields: ['email'], dryRun: true })]);
    expect(renderSummary(dry)).toContain('looks a member up again right before any replay that waited');
  });
});
