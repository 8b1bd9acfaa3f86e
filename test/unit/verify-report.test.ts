import { describe, expect, it } from 'vitest';
import type { LoggedEntry } from '../../src/audit/audit-entry';
import {
  isVerifyEntry,
  LINES_SHOWN,
  renderVerifySummary,
  verifyCsv,
  VerifySummaryBuilder,
} from '../../src/report/verify-report';

const entry = (line: number, e: Partial<LoggedEntry>): LoggedEntry => ({
  ts: '2026-12-04T00:00:00.000Z',
  backfill: 'v',
  runLabel: 'v',
  line,
  memberId: `m-${line}`,
  outcome: 'unchanged',
  verdict: 'repaired',
  dryRun: true,
  exportLine: line + 1,
  ...e,
});

const LOG: LoggedEntry[] = [
  entry(2, {}),
  entry(3, { outcome: 'upsert', verdict: 'still differs', fields: ['email', 'unsubscribeTexting'] }),
  entry(4, {
    outcome: 'upsert',
    verdict: 'still differs',
    fields: ['email'],
    reason: 'absent from the export',
    exportLine: undefined,
  }),
  entry(5, {
    outcome: 'delete',
    verdict: 'still present',
    reason: 'the export still holds a member Channel Talk has deleted (not-found)',
  }),
  entry(6, {
    outcome: 'skipped',
    verdict: 'changed since',
    fields: ['email'],
    reason: 'Channel Talk changed email after the repair was delivered',
  }),
  entry(7, { outcome: 'failed', verdict: 'failed', stage: 'fetch', reason: 'http 500 after 2 attempts' }),
  entry(8, {}),
];

function summarise(log: LoggedEntry[]) {
  const builder = new VerifySummaryBuilder();
  for (const e of log) builder.add(e);
  return builder.result();
}

describe('verify report', () => {
  it('counts every verdict, still differs per field, and lists the members not repaired', () => {
    const s = summarise(LOG);
    expect(s.members).toBe(7);
    expect(s.verdicts).toEqual({ repaired: 2, 'still differs': 2, 'still present': 1, 'changed since': 1, failed: 1 });
    expect(s.stillDiffers).toEqual({ mobileNumber: 0, email: 2, unsubscribeEmail: 0, unsubscribeTexting: 1 });
    expect(s.toLookAt.map((e) => e.line)).toEqual([3, 4, 5, 6, 7]);
  });

  it('renders one screen: the counts, the fields, the lines to look at', () => {
    const text = renderVerifySummary(summarise(LOG), { source: '/d/audit.jsonl', inProgress: false });
    expect(text).toContain('members checked  7');
    expect(text).toMatch(/still differs\s+2/);
    expect(text).toMatch(/email\s+2/);
    expect(text).not.toMatch(/mobileNumber\s+0/);
    expect(text).toContain('lines to look at (5)');
    expect(text).toContain('line 4  m-4  still differs  [email]  absent from the export  (not in the export)');
    expect(text).toContain('line 7  m-7  failed  http 500 after 2 attempts  (export line 8)');
    expect(text).not.toContain('line 2 ');
  });

  it('says so when every member is repaired', () => {
    const text = renderVerifySummary(summarise([entry(2, {}), entry(3, {})]), { source: 'x', inProgress: false });
    expect(text).toContain('every member repaired');
    expect(text).not.toContain('lines to look at');
  });

  it('shows the first lines and points to --format csv for the rest', () => {
    const many = Array.from({ length: LINES_SHOWN + 5 }, (_, i) =>
      entry(i + 2, { outcome: 'delete', verdict: 'still present', reason: 'r' }),
    );
    const text = renderVerifySummary(summarise(many), { source: 'x', inProgress: true });
    expect(text).toContain('(run still going)');
    expect(text).toContain('... and 5 more: --format csv lists them all');
  });

  it('--format csv lists the lines to look at', () => {
    const csv = verifyCsv(summarise(LOG)).trim().split('\n');
    expect(csv[0]).toBe('line,memberId,verdict,fields,reason,exportLine,repairedEvent,repairedAt,attempts');
    expect(csv).toHaveLength(6);
    expect(csv[1]).toBe('3,m-3,still differs,email;unsubscribeTexting,,4,,,');
  });

  it('tells a verify log from a repair log by its verdicts', () => {
    expect(isVerifyEntry(LOG[0]!)).toBe(true);
    const { verdict: _v, ...repair } = LOG[0]!;
    expect(isVerifyEntry(repair)).toBe(false);
  });
});
