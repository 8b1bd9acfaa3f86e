import { describe, expect, it } from 'vitest';
import type { LoggedEntry } from '../../src/audit/audit-entry';
import type { AuditHeader } from '../../src/audit/audit-header';
import {
  buildHtmlModel,
  HtmlReportBuilder,
  nextSteps,
  shellWord,
  timeline,
  type HtmlReportInput,
} from '../../src/report/html-model';
import { escapeHtml, renderHtmlReport } from '../../src/report/html-report';
import { DEFAULT_OUTAGE } from '../../src/report/summary';
import { VerifySummaryBuilder } from '../../src/report/verify-report';

// The HTML report's data model (src/report/html-model.ts), built from the report's summary: what each part of the
// page says for logs of each kind, table-driven; and the page itself: self-contained, escaped, no contact data.

let seq = 0;
function entry(e: Partial<LoggedEntry> & Pick<LoggedEntry, 'line' | 'outcome'>): LoggedEntry {
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

const HEADER: AuditHeader = {
  format: 1,
  ts: '2024-12-01T00:00:00.000Z',
  backfill: 'bf-1',
  runLabel: 'bf-1',
  channel: { id: '123', name: 'Shop' },
  dryRun: false,
  source: { type: 'csv', path: "/data/it's members.csv" },
};

function input(entries: LoggedEntry[], extra: Partial<HtmlReportInput> = {}): HtmlReportInput {
  const builder = new HtmlReportBuilder(DEFAULT_OUTAGE);
  for (const e of entries) builder.add(e);
  return {
    summary: builder.summary.result(),
    facts: builder.facts(),
    auditPath: '/var/lib/webhook-backfill/bf-1/run/audit.jsonl',
    header: HEADER,
    generatedAt: '2024-12-02T00:00:00.000Z',
    ...extra,
  };
}

const REPAIR: LoggedEntry[] = [
  entry({ line: 2, outcome: 'upsert', fields: ['email', 'unsubscribeEmail'], delivered: true, event: 'upsert' }),
  entry({ line: 3, outcome: 'upsert', fields: ['email'], delivered: true, event: 'upsert' }),
  entry({ line: 4, outcome: 'delete', reason: 'not-found', delivered: true, event: 'delete' }),
  entry({ line: 5, outcome: 'unchanged' }),
  entry({ line: 6, outcome: 'failed', stage: 'replay', reason: 'HTTP 500', status: 500, fields: ['mobileNumber'] }),
  entry({ line: 7, outcome: 'failed', stage: 'fetch', reason: 'HTTP 429 after 5 attempts', attempts: 5 }),
  entry({ line: 8, outcome: 'skipped', reason: 'duplicate memberId (first seen on line 2)' }),
  // A repeated record of line 6: ignored, the first record wins.
  entry({ line: 6, outcome: 'upsert', fields: ['email'], delivered: true }),
];

describe('buildHtmlModel', () => {
  it.each<[string, LoggedEntry[], Partial<HtmlReportInput>, (m: ReturnType<typeof buildHtmlModel>) => void]>([
    [
      'outcomes and fields as bars with the log counts; the repeated record is a note',
      REPAIR,
      {},
      (m) => {
        expect(Object.fromEntries(m.outcomes.map((b) => [b.key, b.value]))).toEqual({
          'outcome-upsert': 2,
          'outcome-delete': 1,
          'outcome-unchanged': 1,
          'outcome-failed': 2,
          'outcome-skipped': 1,
        });
        expect(Object.fromEntries(m.fields.map((b) => [b.label, b.value]))).toEqual({
          mobileNumber: 1,
          email: 2,
          unsubscribeEmail: 1,
          unsubscribeTexting: 0,
        });
        expect(m.notes).toEqual([expect.stringContaining('1 repeated record')]);
      },
    ],
    [
      'deliveries: accepted, and the replay failures by reason (lookup failures are not deliveries)',
      REPAIR,
      {},
      (m) => {
        expect(m.deliveries).toEqual({
          dryRun: false,
          due: 4,
          bars: [
            { key: 'delivered', label: 'accepted by the receiver', value: 3, tone: 'good' },
            { key: 'replay-failed-0', label: 'failed: HTTP 500', value: 1, tone: 'bad' },
          ],
        });
      },
    ],
    [
      'failures: one row per failed member with its memberId, stage, status and lookups, in line order',
      REPAIR,
      {},
      (m) => {
        expect(m.failures).toEqual({
          total: 2,
          rows: [
            { line: 6, memberId: 'm-6', stage: 'replay', reason: 'HTTP 500', status: 500, attempts: null },
            {
              line: 7,
              memberId: 'm-7',
              stage: 'fetch',
              reason: 'HTTP 429 after 5 attempts',
              status: null,
              attempts: 5,
            },
          ],
        });
      },
    ],
    [
      'a repair with failures: retry them with only, prove the rest with verify',
      REPAIR,
      {},
      (m) => {
        expect(m.nextSteps.map((s) => s.command)).toEqual([
          `temporal workflow start --type backfillWebhooks --task-queue webhook-backfill --workflow-id bf-1-retry --input '{"source":{"type":"csv","path":"/data/it'\\''s members.csv"},"only":{"auditPath":"/var/lib/webhook-backfill/bf-1/run/audit.jsonl","outcomes":["failed"]}}'`,
          'webhook-backfill verify --after bf-1 --source <fresh export> --workflow-id bf-1-verify --wait',
        ]);
      },
    ],
    [
      'a dry run: a note, nothing delivered, and the plan executed with fromPlan',
      REPAIR.slice(0, 5).map((e) => ({ ...e, dryRun: true, delivered: false })),
      { header: { ...HEADER, dryRun: true, source: { type: 'mysql', table: 'shop.members' } } },
      (m) => {
        expect(m.notes).toEqual([expect.stringMatching(/^Dry run: nothing was replayed/)]);
        expect(m.deliveries.dryRun).toBe(true);
        expect(m.nextSteps).toEqual([
          {
            what: expect.stringContaining('2 upserts and 1 deletes'),
            command: `temporal workflow start --type backfillWebhooks --task-queue webhook-backfill --workflow-id bf-1-repair --input '{"source":{"type":"mysql","table":"shop.members"},"fromPlan":{"auditPath":"/var/lib/webhook-backfill/bf-1/run/audit.jsonl"}}'`,
          },
          // The plan's failed lookup: planned again once fixed, still a dry run.
          {
            what: expect.stringContaining('1 failed members'),
            command: expect.stringContaining(
              `"only":{"auditPath":"/var/lib/webhook-backfill/bf-1/run/audit.jsonl","outcomes":["failed"]},"dryRun":true}`,
            ),
          },
        ]);
      },
    ],
    [
      'the run: channel, source, kind, dates and duration from the header and the records',
      REPAIR,
      {},
      (m) => {
        const run = Object.fromEntries(m.run);
        expect(run['Channel Talk channel']).toContain('123');
        expect(run.Source).toBe("csv: /data/it's members.csv");
        expect(run.Kind).toBe('repair (replays sent)');
        expect(run.Prepared).toBe('2024-12-01T00:00:00.000Z');
        expect(run['Source rows recorded']).toBe('7');
        expect(run.Duration).toMatch(/^\d+:\d\d$/);
      },
    ],
    [
      'the delete guard: tripped in a real run, confirmed by a resume, deletes after it',
      [
        ...Array.from({ length: 3 }, (_, i) => entry({ line: 10 + i, outcome: 'unchanged' })),
        ...Array.from({ length: 4 }, (_, i) =>
          entry({
            line: 20 + i,
            outcome: 'delete',
            reason: 'not-found',
            ...(i >= 2 ? { deletesConfirmedAt: '2024-12-01T01:00:00.000Z' } : {}),
          }),
        ),
      ],
      {},
      (m) => {
        expect(m.deleteGuard).toEqual([
          expect.stringMatching(/^Deletes are 4 of 7 decisions \(57\.1%\)/),
          expect.stringMatching(/fewer than 100 decisions/),
          'Deletes were confirmed at 2024-12-01T01:00:00.000Z (resumed with {"confirmDeletes": true}); 2 deletes were recorded after the confirmation.',
        ]);
      },
    ],
    [
      'a verify run given: verdicts, still differs per field, the members to look at',
      REPAIR,
      {
        verify: (() => {
          const v = new VerifySummaryBuilder();
          v.add(entry({ line: 2, outcome: 'unchanged', verdict: 'repaired', dryRun: true }));
          v.add(entry({ line: 3, outcome: 'upsert', verdict: 'still differs', fields: ['email'], dryRun: true }));
          v.add(entry({ line: 4, outcome: 'delete', verdict: 'still present', dryRun: true }));
          return { source: '/verify/audit.jsonl', summary: v.result() };
        })(),
      },
      (m) => {
        expect(Object.fromEntries(m.verify!.bars.map((b) => [b.label, b.value]))).toEqual({
          repaired: 1,
          'still differs': 1,
          'still present': 1,
          'changed since': 0,
          failed: 0,
        });
        expect(m.verify!.stillDiffers.find((b) => b.label === 'email')!.value).toBe(1);
        expect(m.verify!.rows.map((r) => [r.line, r.memberId, r.verdict, r.fields])).toEqual([
          [3, 'm-3', 'still differs', 'email'],
          [4, 'm-4', 'still present', ''],
        ]);
      },
    ],
    [
      'members re-checked before a late replay (changed or not), and deletes the guard held',
      [
        entry({ line: 3, outcome: 'upsert', fields: ['email'], delivered: true, recheckedAt: '2024-12-01T00:05:00Z' }),
        entry({
          line: 2,
          outcome: 'delete',
          reason: 'not-found',
          delivered: true,
          recheckedAt: '2024-12-01T00:06:00Z',
          changedDuringRepair: true,
          recheck: 'upsert [email] -> delete (not-found)',
        }),
        entry({ line: 4, outcome: 'delete', reason: 'not-found', delivered: true, heldByDeleteGuard: true }),
      ],
      {},
      (m) => {
        expect(m.recheck).toEqual({
          rechecked: 2,
          changed: 1,
          rows: [
            {
              line: 2,
              memberId: 'm-2',
              recheckedAt: '2024-12-01T00:06:00Z',
              changed: true,
              how: 'upsert [email] -> delete (not-found)',
              outcome: 'delete',
            },
            {
              line: 3,
              memberId: 'm-3',
              recheckedAt: '2024-12-01T00:05:00Z',
              changed: false,
              how: '',
              outcome: 'upsert',
            },
          ],
        });
        expect(m.deleteGuard).toContain(
          '1 deletes were held back until enough decisions were in, then sent by their own replay.',
        );
      },
    ],
    [
      'an empty log: zero bars, nothing to do',
      [],
      {},
      (m) => {
        expect(m.outcomes.every((b) => b.value === 0)).toBe(true);
        expect(m.nextSteps).toEqual([]);
        expect(m.verify).toBeNull();
      },
    ],
  ])('%s', (_what, entries, extra, check) => {
    check(buildHtmlModel(input(entries, extra)));
  });

  it.each<[string, [number, number][], ReturnType<typeof timeline>]>([
    ['no records', [], { bucketSeconds: 1, start: null, counts: [] }],
    ['one second', [[1_700_000_000, 5]], { bucketSeconds: 1, start: '2023-11-14T22:13:20.000Z', counts: [5] }],
    [
      'a few seconds with a gap: one column a second',
      [
        [1_700_000_000, 2],
        [1_700_000_003, 4],
      ],
      { bucketSeconds: 1, start: '2023-11-14T22:13:20.000Z', counts: [2, 0, 0, 4] },
    ],
    [
      'an hour: at most 48 columns of 75 s, every row counted once',
      Array.from({ length: 3600 }, (_, i): [number, number] => [1_700_000_000 + i, 1]),
      { bucketSeconds: 75, start: '2023-11-14T22:13:20.000Z', counts: new Array<number>(48).fill(75) },
    ],
  ])('timeline: %s', (_what, perSecond, want) => {
    expect(timeline(perSecond)).toEqual(want);
  });

  it('the timeline of a log counts each row once, by its record time', () => {
    const m = buildHtmlModel(
      input([
        entry({ line: 2, outcome: 'unchanged', ts: '2024-12-01T00:00:00.100Z' }),
        entry({ line: 3, outcome: 'unchanged', ts: '2024-12-01T00:00:00.900Z' }),
        entry({ line: 4, outcome: 'unchanged', ts: '2024-12-01T00:00:02.000Z' }),
        entry({ line: 4, outcome: 'upsert', ts: '2024-12-01T00:00:05.000Z' }),
      ]),
    );
    expect(m.timeline).toEqual({ bucketSeconds: 1, start: '2024-12-01T00:00:00.000Z', counts: [2, 0, 1] });
  });

  it('deliveries per scope (WEBHOOK_EVENT_NAMES=scopes) as bars; a dry run has no "delivered"', () => {
    const base = input(REPAIR);
    const scoped = {
      ...base,
      summary: { ...base.summary, scopeDeliveries: [{ event: 'user.email', deliveries: 3, delivered: 2 }] },
    };
    expect(buildHtmlModel(scoped).scopes.map((b) => [b.key, b.value])).toEqual([
      ['scope-user.email-deliveries', 3],
      ['scope-user.email-delivered', 2],
    ]);
    const dry = { ...scoped, summary: { ...scoped.summary, dryRun: true } };
    expect(buildHtmlModel(dry).scopes.map((b) => b.key)).toEqual(['scope-user.email-deliveries']);
  });

  it.each([
    ['plain', 'plain'],
    ['/data/m.csv', '/data/m.csv'],
    ['two words', "'two words'"],
    ["it's", "'it'\\''s'"],
  ])('shellWord(%j) = %j', (word, quoted) => {
    expect(shellWord(word)).toBe(quoted);
  });

  it.each([
    { name: 'without the run (report --audit): no rate-limit part', pace: undefined, out: null },
    {
      name: 'with the run: its totals and the bucket as last seen',
      pace: {
        ratePerSecond: 40,
        limit: 200,
        remaining: 37,
        givingWay: true,
        rateLimited: 3,
        warnings: 2,
        waitedMs: 12_345,
      },
      out: {
        rateLimited: 3,
        warnings: 2,
        waitedSeconds: '12.3',
        lastSeen: 'Last seen: limit 200, remaining 37, the job giving way to other traffic.',
      },
    },
    {
      name: 'an API that sent no rate-limit headers',
      pace: {
        ratePerSecond: 9,
        limit: null,
        remaining: null,
        givingWay: false,
        rateLimited: 0,
        warnings: 0,
        waitedMs: 0,
      },
      out: { rateLimited: 0, warnings: 0, waitedSeconds: '0.0', lastSeen: 'Channel Talk sent no rate-limit headers.' },
    },
  ])("Channel Talk's rate limit: $name", ({ pace, out }) => {
    expect(buildHtmlModel(input(REPAIR, pace ? { channelPace: pace } : {})).rateLimit).toEqual(out);
  });

  it('nextSteps for a complete repair without failures: only the proof', () => {
    const s = input(REPAIR.slice(0, 4)).summary;
    expect(nextSteps(s, '/a.jsonl', HEADER).map((x) => x.what)).toEqual([expect.stringMatching(/^Prove the repair/)]);
  });
});

describe('renderHtmlReport', () => {
  const page = renderHtmlReport(
    buildHtmlModel(
      input([
        ...REPAIR,
        entry({
          line: 9,
          outcome: 'failed',
          stage: 'replay',
          reason: '<script>alert(1)</script>',
          memberId: '<b>m</b>',
        }),
      ]),
    ),
    '2024-12-02T00:00:00.000Z',
  );

  it('is one self-contained page: no script, no external URL, a CSP that forbids loading anything', () => {
    expect(page.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(page).not.toMatch(/<script|<link|<img|<iframe|@import|url\(/i);
    // The SVG namespace is a name, not a fetch; no other URL appears.
    expect(page.replace(/http:\/\/www\.w3\.org\/2000\/svg/g, '')).not.toMatch(/https?:\/\//);
    expect(page).toContain(`content="default-src 'none'`);
  });

  it('escapes every text from the log', () => {
    expect(page).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
    expect(page).toContain('&#60;b&#62;m&#60;/b&#62;');
    expect(escapeHtml(`a&b"c'`)).toBe('a&#38;b&#34;c&#39;');
  });

  it('carries every count as data-count, equal to the model', () => {
    const counts = Object.fromEntries(
      [...page.matchAll(/data-count="([^"]+)">(\d+)</g)].map((m) => [m[1], Number(m[2])]),
    );
    expect(counts).toMatchObject({ 'outcome-upsert': 2, 'outcome-failed': 3, delivered: 3, 'failed-total': 3, due: 5 });
    expect(page).not.toContain('id="rate-limit"');
  });

  it("shows the run's rate-limit totals when it has them (report --workflow-id)", () => {
    const pace = {
      ratePerSecond: 40,
      limit: 20,
      remaining: 4,
      givingWay: false,
      rateLimited: 7,
      warnings: 5,
      waitedMs: 1500,
    };
    const withPace = renderHtmlReport(buildHtmlModel(input(REPAIR, { channelPace: pace })), '2024-12-02T00:00:00.000Z');
    const counts = Object.fromEntries(
      [...withPace.matchAll(/data-count="([^"]+)">([\d.]+)</g)].map((m) => [m[1], Number(m[2])]),
    );
    expect(counts).toMatchObject({ 'rate-limited': 7, 'throttle-warnings': 5, 'pacer-wait-seconds': 1.5 });
    expect(withPace).toContain('Last seen: limit 20, remaining 4.');
  });
});
