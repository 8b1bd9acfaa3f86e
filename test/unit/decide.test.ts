import { describe, expect, it } from 'vitest';
import { compareMember, decide, type DecideOptions } from '../../src/domain/decide';
import { normalizePhone } from '../../src/domain/phone';
import type { ChannelUser, ComparedField, Decision, FetchResult, StoredMember } from '../../src/domain/types';

const PHONE = '+821012345678';
const EMAIL = 'kim.minsu@example.com';

/** A stored row that matches `user()` exactly. */
function stored(over: Partial<StoredMember> = {}): StoredMember {
  return {
    memberId: 'm-1',
    mobileNumber: PHONE,
    email: EMAIL,
    unsubscribeEmail: false,
    unsubscribeTexting: false,
    ...over,
  };
}

function user(over: Partial<ChannelUser> = {}): ChannelUser {
  return {
    id: '6731a2b3c4d5e6f7a8b9c0d1',
    memberId: 'm-1',
    type: 'member',
    mobileNumber: PHONE,
    email: EMAIL,
    unsubscribeEmail: false,
    unsubscribeTexting: false,
    profile: { name: 'Kim', mobileNumber: PHONE, email: EMAIL },
    ...over,
  };
}

const found = (u: ChannelUser): FetchResult => ({ kind: 'found', user: u, attempts: 1 });

describe('normalizePhone', () => {
  const cases: Array<[string, string | null | undefined, 'KR' | 'US', string | null]> = [
    ['null', null, 'KR', null],
    ['undefined', undefined, 'KR', null],
    ['empty', '', 'KR', null],
    ['whitespace only', '  \t ', 'KR', null],
    ['local with dashes', '010-1234-5678', 'KR', PHONE],
    ['local digits only', '01012345678', 'KR', PHONE],
    ['local with spaces', ' 010 1234 5678 ', 'KR', PHONE],
    ['local with dots', '010.1234.5678', 'KR', PHONE],
    ['local with parentheses', '(010) 1234-5678', 'KR', PHONE],
    ['+82 with spaces and dashes', '+82 10-1234-5678', 'KR', PHONE],
    ['+82 keeping the trunk 0', '+82 010-1234-5678', 'KR', PHONE],
    ['already E.164', PHONE, 'KR', PHONE],
    ['E.164 read with another default region', PHONE, 'US', PHONE],
    ['US local with US region', '(415) 555-2671', 'US', '+14155552671'],
    ['US international with KR region', '+1 415-555-2671', 'KR', '+14155552671'],
    ['unparsable keeps trimmed digits without separators', ' 12-3 ', 'KR', '123'],
    ['unparsable text stays text', 'n/a', 'KR', 'n/a'],
  ];
  it.each(cases)('%s', (_name, input, region, expected) => {
    expect(normalizePhone(input, region)).toBe(expected);
  });
});

describe('decide: lookup outcomes', () => {
  const cases: Array<[string, FetchResult, DecideOptions, Decision]> = [
    [
      '404 means deleted',
      { kind: 'not-found', status: 404, attempts: 1 },
      {},
      { action: 'delete', reason: 'not-found' },
    ],
    [
      'failed lookup carries its reason',
      { kind: 'failed', reason: 'http 503 after 5 attempts', attempts: 5 },
      {},
      { action: 'failed', reason: 'http 503 after 5 attempts' },
    ],
    ['unified user is deleted', found(user({ type: 'unified' })), {}, { action: 'delete', reason: 'unified' }],
    [
      'unified beats differences',
      found(
        user({ type: 'unified', email: 'other@example.com', mobileNumber: '+821099998888', unsubscribeEmail: true }),
      ),
      {},
      { action: 'delete', reason: 'unified' },
    ],
    [
      'custom unifiedType is honoured',
      found(user({ type: 'merged' })),
      { unifiedType: 'merged' },
      { action: 'delete', reason: 'unified' },
    ],
    [
      '"unified" is not special under a custom unifiedType',
      found(user({ type: 'unified' })),
      { unifiedType: 'merged' },
      { action: 'unchanged' },
    ],
    ['type comparison is exact', found(user({ type: 'Unified' })), {}, { action: 'unchanged' }],
    [
      'lead compares like a member',
      found(user({ type: 'lead', email: 'new@example.com' })),
      {},
      { action: 'upsert', fields: ['email'] },
    ],
    ['missing type compares normally', found(user({ type: undefined })), {}, { action: 'unchanged' }],
    ['all equal', found(user()), {}, { action: 'unchanged' }],
  ];
  it.each(cases)('%s', (_name, fetched, opts, expected) => {
    expect(decide(stored(), fetched, opts)).toEqual(expected);
  });
});

describe('decide: field comparison', () => {
  // [name, stored overrides, user overrides, fields expected to differ, options]
  const cases: Array<[string, Partial<StoredMember>, Partial<ChannelUser>, ComparedField[], DecideOptions?]> = [
    // mobileNumber
    ['local phone equals E.164', { mobileNumber: '010-1234-5678' }, {}, []],
    ['digits-only phone equals E.164', { mobileNumber: '01012345678' }, {}, []],
    ['+82 10... equals E.164', { mobileNumber: '+82 10-1234-5678' }, {}, []],
    ['spaces and dots are ignored', { mobileNumber: ' 010 1234.5678 ' }, {}, []],
    ['different number differs', { mobileNumber: '010-1111-2222' }, {}, ['mobileNumber']],
    ['phone only in profile (top-level missing)', { mobileNumber: '010-1234-5678' }, { mobileNumber: undefined }, []],
    ['phone only in profile (top-level empty)', { mobileNumber: '010-1234-5678' }, { mobileNumber: '' }, []],
    ['phone only in profile (top-level null)', { mobileNumber: '010-1234-5678' }, { mobileNumber: null }, []],
    [
      'top-level phone wins over profile',
      { mobileNumber: '010-1234-5678' },
      { profile: { mobileNumber: '+821099998888', email: EMAIL } },
      [],
    ],
    [
      'phone missing everywhere at Channel Talk differs from a stored phone',
      {},
      { mobileNumber: undefined, profile: { email: EMAIL } },
      ['mobileNumber'],
    ],
    ['phone added at Channel Talk differs from an empty stored one', { mobileNumber: null }, {}, ['mobileNumber']],
    ['null phone equals missing phone', { mobileNumber: null }, { mobileNumber: undefined, profile: null }, []],
    ['empty stored phone equals null', { mobileNumber: '' }, { mobileNumber: null, profile: {} }, []],
    [
      'whitespace-only stored phone equals empty',
      { mobileNumber: '   ' },
      { mobileNumber: '', profile: { mobileNumber: '' } },
      [],
    ],
    ['both unparsable but equal', { mobileNumber: '12-3' }, { mobileNumber: '123', profile: null }, []],
    [
      'both unparsable and different',
      { mobileNumber: '12-3' },
      { mobileNumber: '124', profile: null },
      ['mobileNumber'],
    ],
    [
      'US local equals E.164 with US region',
      { mobileNumber: '(415) 555-2671' },
      { mobileNumber: '+14155552671' },
      [],
      { defaultRegion: 'US' },
    ],
    [
      'US local does not equal E.164 with KR region',
      { mobileNumber: '(415) 555-2671' },
      { mobileNumber: '+14155552671' },
      ['mobileNumber'],
    ],
    [
      'KR local does not equal KR E.164 with US region',
      { mobileNumber: '010-1234-5678' },
      {},
      ['mobileNumber'],
      { defaultRegion: 'US' },
    ],
    // email
    ['email case is ignored', { email: 'Kim.Minsu@EXAMPLE.com' }, {}, []],
    ['email surrounding whitespace is ignored', { email: `  ${EMAIL}\t` }, {}, []],
    ['channel email case is ignored too', {}, { email: 'KIM.MINSU@example.COM' }, []],
    ['different email differs', { email: 'kim.minsu@example.org' }, {}, ['email']],
    ['email only in profile', {}, { email: undefined }, []],
    ['email only in profile (top-level empty)', {}, { email: '  ' }, []],
    ['email removed at Channel Talk differs', {}, { email: null, profile: {} }, ['email']],
    ['null email equals missing email', { email: null }, { email: undefined, profile: null }, []],
    ['empty email equals null email', { email: '' }, { email: null, profile: { email: null } }, []],
    [
      'whitespace-only email equals missing email',
      { email: '   ' },
      { email: undefined, profile: { mobileNumber: PHONE } },
      [],
    ],
    // unsubscribe flags
    ['unsubscribeEmail null equals false', { unsubscribeEmail: null }, {}, []],
    ['unsubscribeEmail false equals missing', {}, { unsubscribeEmail: undefined }, []],
    ['unsubscribeEmail null equals null', { unsubscribeEmail: null }, { unsubscribeEmail: null }, []],
    ['unsubscribeEmail true vs false differs', { unsubscribeEmail: true }, {}, ['unsubscribeEmail']],
    [
      'unsubscribeEmail true vs missing differs',
      { unsubscribeEmail: true },
      { unsubscribeEmail: undefined },
      ['unsubscribeEmail'],
    ],
    [
      'unsubscribeEmail null vs true differs',
      { unsubscribeEmail: null },
      { unsubscribeEmail: true },
      ['unsubscribeEmail'],
    ],
    ['unsubscribeTexting null equals false', { unsubscribeTexting: null }, {}, []],
    ['unsubscribeTexting false equals missing', {}, { unsubscribeTexting: undefined }, []],
    ['unsubscribeTexting false vs true differs', {}, { unsubscribeTexting: true }, ['unsubscribeTexting']],
    [
      'both true is equal',
      { unsubscribeTexting: true, unsubscribeEmail: true },
      { unsubscribeTexting: true, unsubscribeEmail: true },
      [],
    ],
    // several at once, reported in COMPARED_FIELDS order
    [
      'all four differ',
      { mobileNumber: '010-9999-0000', email: 'old@example.com', unsubscribeEmail: true, unsubscribeTexting: null },
      { unsubscribeTexting: true },
      ['mobileNumber', 'email', 'unsubscribeEmail', 'unsubscribeTexting'],
    ],
    [
      'texting and email differ',
      { email: 'old@example.com' },
      { unsubscribeTexting: true },
      ['email', 'unsubscribeTexting'],
    ],
  ];

  it.each(cases)('%s', (_name, storedOver, userOver, fields, opts) => {
    const s = stored(storedOver);
    const u = user(userOver);
    expect(compareMember(s, u, opts)).toEqual(fields);
    const expected: Decision = fields.length > 0 ? { action: 'upsert', fields } : { action: 'unchanged' };
    expect(decide(s, found(u), opts)).toEqual(expected);
  });
});

describe('decisions never carry personal data', () => {
  const values = ['010-1111-2222', '+821099998888', '1111', '9999', 'old@example.com', 'new@example.org', 'example'];
  const fetches: FetchResult[] = [
    found(
      user({
        mobileNumber: '+821099998888',
        email: 'new@example.org',
        unsubscribeEmail: true,
        unsubscribeTexting: true,
      }),
    ),
    found(user({ type: 'unified', mobileNumber: '+821099998888', email: 'new@example.org' })),
    { kind: 'not-found', status: 404, attempts: 1 },
    found(user({ mobileNumber: '+821099998888', email: 'new@example.org' })),
  ];
  it.each(fetches.map((f, i) => [i, f] as const))('case %i', (_i, fetched) => {
    const decision = decide(stored({ mobileNumber: '010-1111-2222', email: 'old@example.com' }), fetched);
    const json = JSON.stringify(decision);
    for (const v of values) expect(json).not.toContain(v);
    expect(json).not.toContain('@');
    expect(json).not.toMatch(/\d{3,}/);
  });
});

describe('decide with onlyChangedSince', () => {
  const SINCE_TEXT = '2024-11-01T00:40:00+09:00';
  const since = Date.parse(SINCE_TEXT);
  const opts: DecideOptions = { onlyChangedSince: { time: since, text: SINCE_TEXT } };
  const before = since - 60_000;
  const inside = since + 60_000;
  const reason = `differs since before ${SINCE_TEXT}: not hidden by the outage`;
  const cases: Array<[string, Partial<StoredMember>, Partial<ChannelUser>, Decision]> = [
    [
      'email changed before: skipped',
      { email: 'old@example.com' },
      { updatedAt: before },
      { action: 'skipped', fields: ['email'], reason },
    ],
    [
      'email changed inside: upsert',
      { email: 'old@example.com' },
      { updatedAt: inside },
      { action: 'upsert', fields: ['email'] },
    ],
    [
      'exactly at the start: upsert (not before)',
      { email: 'old@example.com' },
      { updatedAt: since },
      { action: 'upsert', fields: ['email'] },
    ],
    ['no change time: upsert (cannot tell)', { email: 'old@example.com' }, {}, { action: 'upsert', fields: ['email'] }],
    [
      'consent flag uses its own time (before), though updatedAt is inside',
      { unsubscribeEmail: true },
      { updatedAt: inside, unsubscribeEmailUpdatedAt: before },
      { action: 'skipped', fields: ['unsubscribeEmail'], reason },
    ],
    [
      'consent flag changed inside though updatedAt says before: upsert',
      { unsubscribeTexting: true },
      { updatedAt: before, unsubscribeTextingUpdatedAt: inside },
      { action: 'upsert', fields: ['unsubscribeTexting'] },
    ],
    [
      'consent flag without its own time falls back to updatedAt',
      { unsubscribeTexting: true },
      { updatedAt: before },
      { action: 'skipped', fields: ['unsubscribeTexting'], reason },
    ],
    [
      'one field before, one inside: upsert of both',
      { email: 'old@example.com', unsubscribeEmail: true },
      { updatedAt: inside, unsubscribeEmailUpdatedAt: before },
      { action: 'upsert', fields: ['email', 'unsubscribeEmail'] },
    ],
    ['unchanged stays unchanged', {}, { updatedAt: before }, { action: 'unchanged' }],
    [
      'unified stays a delete',
      { email: 'old@example.com' },
      { type: 'unified', updatedAt: before },
      { action: 'delete', reason: 'unified' },
    ],
  ];
  it.each(cases)('%s', (_name, s, u, expected) => {
    expect(decide(stored(s), found(user(u)), opts)).toEqual(expected);
  });

  it('a 404 is a delete whatever the option', () => {
    expect(decide(stored(), { kind: 'not-found', status: 404, attempts: 1 }, opts)).toEqual({
      action: 'delete',
      reason: 'not-found',
    });
  });

  it('without the option the same difference is an upsert', () => {
    expect(decide(stored({ email: 'old@example.com' }), found(user({ updatedAt: before })))).toEqual({
      action: 'upsert',
      fields: ['email'],
    });
  });
});
