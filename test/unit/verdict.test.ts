import { describe, expect, it } from 'vitest';
import { verdict, type RepairRecord, type VerdictResult, type VerifyOptions } from '../../src/domain/verdict';
import type { ChannelUser, FetchResult, StoredMember } from '../../src/domain/types';
import {
  addVerifyCounts,
  countVerdict,
  runCountersOf,
  VERDICT_OF_OUTCOME,
  VERDICT_OUTCOMES,
  VERDICTS,
  verifyCountersOf,
  zeroVerifyCounters,
  type Verdict,
  type VerifyCounters,
} from '../../src/domain/verdicts';
import { OUTCOMES, type ComparedField } from '../../src/domain/types';
import type { Counters } from '../../src/domain/counters';

const PHONE = '+821012345678';
const EMAIL = 'kim.minsu@example.com';
const T = 1_733_000_000_000; // the repair's delivery
const BEFORE = T - 60_000;
const AFTER = T + 60_000;

function stored(over: Partial<StoredMember> = {}): StoredMember {
  return {
    memberId: 'm-1',
    mobileNumber: PHONE,
    email: EMAIL,
    unsubscribeEmail: false,
    unsubscribeTexting: true,
    ...over,
  };
}
function user(over: Partial<ChannelUser> = {}): ChannelUser {
  return {
    memberId: 'm-1',
    type: 'member',
    mobileNumber: PHONE,
    email: EMAIL,
    unsubscribeEmail: false,
    unsubscribeTexting: true,
    createdAt: BEFORE - 1_000_000,
    updatedAt: BEFORE,
    unsubscribeEmailUpdatedAt: BEFORE,
    unsubscribeTextingUpdatedAt: BEFORE,
    ...over,
  };
}
const found = (u: ChannelUser): FetchResult => ({ kind: 'found', user: u, attempts: 1 });
const notFound: FetchResult = { kind: 'not-found', status: 404, attempts: 1 };
const upsert = (fields: RepairRecord['fields']): RepairRecord => ({ event: 'upsert', fields, deliveredAt: T });
const del: RepairRecord = { event: 'delete', reason: 'not-found', deliveredAt: T };

type Case = [string, RepairRecord, StoredMember | undefined, FetchResult, VerifyOptions, VerdictResult];

const cases: Case[] = [
  // upserts
  ['upsert applied: now equal', upsert(['email']), stored(), found(user()), {}, { verdict: 'repaired' }],
  [
    'upsert applied, equal after phone normalisation and email case',
    upsert(['mobileNumber']),
    stored({ mobileNumber: '010-1234-5678', email: EMAIL.toUpperCase() }),
    found(user()),
    {},
    { verdict: 'repaired' },
  ],
  [
    'upsert dropped: the field still differs',
    upsert(['email']),
    stored({ email: 'old@example.com' }),
    found(user()),
    {},
    { verdict: 'still differs', fields: ['email'] },
  ],
  [
    'upsert half applied: only the dropped field differs',
    upsert(['email', 'unsubscribeTexting']),
    stored({ unsubscribeTexting: false }),
    found(user()),
    {},
    { verdict: 'still differs', fields: ['unsubscribeTexting'] },
  ],
  [
    'consent flag changed on Channel Talk after the delivery: changed since, by its own change time',
    upsert(['unsubscribeEmail']),
    stored(),
    found(user({ unsubscribeEmail: true, unsubscribeEmailUpdatedAt: AFTER })),
    {},
    {
      verdict: 'changed since',
      fields: ['unsubscribeEmail'],
      reason: 'Channel Talk changed unsubscribeEmail after the repair was delivered',
    },
  ],
  [
    'email changed on Channel Talk after the delivery (updatedAt later): changed since',
    upsert(['email']),
    stored(),
    found(user({ email: 'new@example.com', updatedAt: AFTER })),
    {},
    {
      verdict: 'changed since',
      fields: ['email'],
      reason: 'Channel Talk changed email after the repair was delivered',
    },
  ],
  [
    'a consent flag changed later, another one dropped: still differs names only the dropped one',
    upsert(['unsubscribeTexting']),
    stored({ unsubscribeTexting: false }),
    found(user({ unsubscribeEmail: true, unsubscribeEmailUpdatedAt: AFTER })),
    {},
    {
      verdict: 'still differs',
      fields: ['unsubscribeTexting'],
      reason: 'Channel Talk changed unsubscribeEmail after the repair was delivered',
    },
  ],
  [
    'a difference without a change time is a failed repair, not a new change',
    upsert(['email']),
    stored({ email: 'old@example.com' }),
    found(user({ updatedAt: undefined })),
    {},
    { verdict: 'still differs', fields: ['email'] },
  ],
  [
    'change time exactly at the delivery is not after it',
    upsert(['email']),
    stored({ email: 'old@example.com' }),
    found(user({ updatedAt: T })),
    {},
    { verdict: 'still differs', fields: ['email'] },
  ],
  [
    'clockSkewMs moves the line: a change 30 s before the delivery counts as after it with 60 s of skew',
    upsert(['email']),
    stored({ email: 'old@example.com' }),
    found(user({ updatedAt: T - 30_000 })),
    { clockSkewMs: 60_000 },
    {
      verdict: 'changed since',
      fields: ['email'],
      reason: 'Channel Talk changed email after the repair was delivered',
    },
  ],
  [
    'upserted member absent from the export: still differs, the repaired fields',
    upsert(['email', 'mobileNumber']),
    undefined,
    found(user()),
    {},
    { verdict: 'still differs', fields: ['email', 'mobileNumber'], reason: 'absent from the export' },
  ],
  [
    'upserted user deleted on Channel Talk since: changed since',
    upsert(['email']),
    stored(),
    notFound,
    {},
    { verdict: 'changed since', reason: "deleted on Channel Talk's side since the repair (not-found)" },
  ],
  [
    'upserted user unified since (configured type): changed since',
    upsert(['email']),
    undefined,
    found(user({ type: 'merged' })),
    { unifiedType: 'merged' },
    { verdict: 'changed since', reason: "deleted on Channel Talk's side since the repair (unified)" },
  ],
  [
    'lookup failed',
    upsert(['email']),
    stored(),
    { kind: 'failed', reason: 'http 503 after 5 attempts', attempts: 5 },
    {},
    { verdict: 'failed', reason: 'http 503 after 5 attempts' },
  ],
  // deletes
  ['delete applied: absent, still 404', del, undefined, notFound, {}, { verdict: 'repaired' }],
  ['delete of a unified user applied', del, undefined, found(user({ type: 'unified' })), {}, { verdict: 'repaired' }],
  [
    'delete dropped: the export still holds the member',
    del,
    stored(),
    notFound,
    {},
    { verdict: 'still present', reason: 'the export still holds a member Channel Talk has deleted (not-found)' },
  ],
  [
    'delete dropped, the user still unified',
    del,
    stored(),
    found(user({ type: 'unified' })),
    {},
    { verdict: 'still present', reason: 'the export still holds a member Channel Talk has deleted (unified)' },
  ],
  [
    'deleted member re-created on Channel Talk after the delete: changed since (present or absent)',
    del,
    stored(),
    found(user({ createdAt: AFTER, updatedAt: AFTER })),
    {},
    { verdict: 'changed since', reason: 'Channel Talk has a live user again, changed after the delete' },
  ],
  [
    'deleted member absent, Channel Talk has a live user changed after the delete: changed since',
    del,
    undefined,
    found(user({ updatedAt: AFTER })),
    {},
    { verdict: 'changed since', reason: 'Channel Talk has a live user again, changed after the delete' },
  ],
  [
    'delete not applied and Channel Talk has a live user unchanged since: still present',
    del,
    stored(),
    found(user()),
    {},
    { verdict: 'still present', reason: 'Channel Talk now has a live user, not changed since the delete' },
  ],
  [
    'deleted from the export, but Channel Talk has a live user unchanged since: still differs, its non-empty fields',
    del,
    undefined,
    found(user({ mobileNumber: null, profile: null })),
    {},
    {
      verdict: 'still differs',
      fields: ['email', 'unsubscribeTexting'],
      reason: 'deleted from the export, but Channel Talk has a live user not changed since the delete',
    },
  ],
  [
    'delete, lookup failed (absent from the export or not)',
    del,
    undefined,
    { kind: 'failed', reason: 'timeout after 5 attempts', attempts: 5 },
    {},
    { verdict: 'failed', reason: 'timeout after 5 attempts' },
  ],
];

describe('verdict', () => {
  it.each(cases)('%s', (_name, repair, row, fetched, opts, want) => {
    expect(verdict(repair, row, fetched, opts)).toEqual(want);
  });

  it('the table covers every verdict', () => {
    expect(new Set(cases.map((c) => c[5].verdict))).toEqual(new Set(VERDICTS));
  });

  it('names fields and reasons, never values', () => {
    for (const [name, repair, row, fetched, opts] of cases) {
      const text = JSON.stringify(verdict(repair, row, fetched, opts));
      for (const value of [PHONE, EMAIL, 'old@example.com', 'new@example.com']) expect(text, name).not.toContain(value);
    }
  });
});

describe('verify counters', () => {
  const fields = (over: Partial<Record<ComparedField, number>> = {}) => ({
    mobileNumber: 0,
    email: 0,
    unsubscribeEmail: 0,
    unsubscribeTexting: 0,
    ...over,
  });
  const verdicts = (over: Partial<Record<Verdict, number>> = {}) => ({
    repaired: 0,
    'still differs': 0,
    'still present': 0,
    'changed since': 0,
    failed: 0,
    ...over,
  });

  it('stores each verdict under its own outcome, and reads it back', () => {
    expect(new Set(Object.values(VERDICT_OUTCOMES)).size).toBe(VERDICTS.length);
    for (const verdict of VERDICTS) expect(VERDICT_OF_OUTCOME[VERDICT_OUTCOMES[verdict]]).toBe(verdict);
    expect(Object.keys(VERDICT_OF_OUTCOME).sort()).toEqual([...OUTCOMES].sort());
  });

  it.each<[string, Array<[Verdict, ComparedField[]?]>, VerifyCounters]>([
    ['nothing', [], { processed: 0, verdicts: verdicts(), stillDiffers: fields() }],
    [
      'still differs counts its fields',
      [
        ['still differs', ['email', 'mobileNumber']],
        ['still differs', ['email']],
      ],
      { processed: 2, verdicts: verdicts({ 'still differs': 2 }), stillDiffers: fields({ email: 2, mobileNumber: 1 }) },
    ],
    [
      "changed since names fields, but they no longer differ by the repair's fault",
      [['changed since', ['email']], ['repaired'], ['failed'], ['still present']],
      {
        processed: 4,
        verdicts: verdicts({ 'changed since': 1, repaired: 1, failed: 1, 'still present': 1 }),
        stillDiffers: fields(),
      },
    ],
  ])('countVerdict: %s', (_name, counted, expected) => {
    const into = zeroVerifyCounters();
    for (const [verdict, f] of counted) countVerdict(into, verdict, f);
    expect(into).toEqual(expected);
    const twice = zeroVerifyCounters();
    addVerifyCounts(twice, into);
    addVerifyCounts(twice, into);
    expect(twice.processed).toBe(2 * expected.processed);
    for (const v of VERDICTS) expect(twice.verdicts[v]).toBe(2 * expected.verdicts[v]);
    expect(twice.stillDiffers).toEqual(
      fields(Object.fromEntries(Object.entries(expected.stillDiffers).map(([k, n]) => [k, 2 * n]))),
    );
  });

  it.each<[string, Counters]>([
    [
      'every counter',
      {
        processed: 15,
        unchanged: 5,
        upserts: 4,
        deletes: 3,
        skipped: 2,
        failed: 1,
        fields: fields({ email: 3, unsubscribeTexting: 1 }),
      },
    ],
    [
      'counters without fields (a 1.0 batch that still differed nowhere)',
      { processed: 2, unchanged: 2, upserts: 0, deletes: 0, skipped: 0, failed: 0 },
    ],
  ])("reads release 1.0's counters of a verify run (%s), and shows them the same way back", (_name, counters) => {
    const verify = verifyCountersOf(counters);
    expect(verify.processed).toBe(counters.processed);
    expect(verify.verdicts).toEqual(
      verdicts({
        repaired: counters.unchanged,
        'still differs': counters.upserts,
        'still present': counters.deletes,
        'changed since': counters.skipped,
        failed: counters.failed,
      }),
    );
    expect(verify.stillDiffers).toEqual(fields(counters.fields));
    expect(runCountersOf(verify)).toEqual({ ...counters, fields: fields(counters.fields) });
  });
});
