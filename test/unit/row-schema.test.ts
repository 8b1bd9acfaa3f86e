import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { SeededRng } from '../../dev/seeded-rng';
import type { StoredMember } from '../../src/domain/types';
import {
  MEMBER_ID_MAX_CHARS,
  normaliseRow,
  parseStoredMember,
  rowEntry,
  storedMemberSchema,
} from '../../src/source/row-schema';

// The source row check (src/source/row-schema.ts): what every row of a source becomes, or why it is skipped. The
// check is zod's compiled form of the row schema; these tables pin what it accepts, the normalised member, and the
// reason of a refusal (each field named once, never a value), and a generated comparison holds it to zod's runtime
// parser of the same schema.

const VALID = { memberId: 'm-1', mobileNumber: '+821012345678', email: 'a@example.com' };
const member = (over: Partial<StoredMember>): StoredMember => ({
  memberId: 'm-1',
  mobileNumber: '+821012345678',
  email: 'a@example.com',
  unsubscribeEmail: null,
  unsubscribeTexting: null,
  ...over,
});
const SMILE = '\u{1F600}'; // one character, two UTF-16 units

const ACCEPTED: Array<[name: string, raw: Record<string, unknown>, member: StoredMember]> = [
  ['a plain row', VALID, member({})],
  ['memberId trimmed (spaces, tab, newline)', { ...VALID, memberId: ' \tm-1\n' }, member({})],
  ['memberId trimmed of Unicode spaces', { ...VALID, memberId: '\u00a0m-1\u3000' }, member({})],
  [
    'memberId with inner spaces and symbols kept',
    { ...VALID, memberId: 'a b/c@d?e#f' },
    member({ memberId: 'a b/c@d?e#f' }),
  ],
  ['memberId non-ASCII kept', { ...VALID, memberId: '회원 1' }, member({ memberId: '회원 1' })],
  ['memberId a JSON integer', { ...VALID, memberId: 12345 }, member({ memberId: '12345' })],
  ['memberId a JSON zero', { ...VALID, memberId: 0 }, member({ memberId: '0' })],
  ['memberId of the longest length', { ...VALID, memberId: 'x'.repeat(256) }, member({ memberId: 'x'.repeat(256) })],
  [
    'memberId of the longest length in characters of two units',
    { ...VALID, memberId: SMILE.repeat(256) },
    member({ memberId: SMILE.repeat(256) }),
  ],
  [
    'memberId longest after trimming',
    { ...VALID, memberId: ` ${'x'.repeat(256)} ` },
    member({ memberId: 'x'.repeat(256) }),
  ],
  ['contacts kept verbatim', { ...VALID, mobileNumber: ' 010-1234 ' }, member({ mobileNumber: ' 010-1234 ' })],
  ['empty contacts are null', { ...VALID, mobileNumber: '', email: '' }, member({ mobileNumber: null, email: null })],
  ['missing contacts are null', { memberId: 'm-1' }, member({ mobileNumber: null, email: null })],
  [
    'null contacts are null',
    { ...VALID, mobileNumber: null, email: null },
    member({ mobileNumber: null, email: null }),
  ],
  ['a blank contact is kept', { ...VALID, email: ' ' }, member({ email: ' ' })],
  ...(
    [
      ['true', true],
      [' TRUE ', true],
      ['1', true],
      ['Yes', true],
      ['false', false],
      ['0', false],
      [' no ', false],
      [1, true],
      [0, false],
      [true, true],
      [false, false],
      ['', null],
      ['  ', null],
      [null, null],
    ] as const
  ).map(([cell, flag]): [string, Record<string, unknown>, StoredMember] => [
    `the flags ${JSON.stringify(cell)}`,
    { ...VALID, unsubscribeEmail: cell, unsubscribeTexting: cell },
    member({ unsubscribeEmail: flag, unsubscribeTexting: flag }),
  ]),
  ['unknown keys dropped', { ...VALID, name: 'Kim', unsubscribeEmail: 'yes' }, member({ unsubscribeEmail: true })],
];

/** [case, row, reason, memberId the skip keeps (when it is one)] */
const REFUSED: Array<[name: string, raw: Record<string, unknown>, reason: string, memberId?: string]> = [
  ['memberId missing', { email: 'a@example.com' }, 'empty memberId'],
  ['memberId null', { ...VALID, memberId: null }, 'empty memberId'],
  ['memberId empty', { ...VALID, memberId: '' }, 'empty memberId'],
  ['memberId blank', { ...VALID, memberId: ' \t ' }, 'empty memberId'],
  ['memberId one over the longest', { ...VALID, memberId: 'x'.repeat(257) }, 'memberId longer than 256 characters'],
  [
    'memberId one character over, in two-unit characters',
    { ...VALID, memberId: SMILE.repeat(257) },
    'memberId longer than 256 characters',
  ],
  ['memberId a fraction', { ...VALID, memberId: 1.5 }, 'memberId: expected a string'],
  ['memberId an unsafe integer', { ...VALID, memberId: 2 ** 60 }, 'memberId: expected a string'],
  ['memberId a boolean', { ...VALID, memberId: true }, 'memberId: expected a string'],
  ['memberId an object', { ...VALID, memberId: { id: 'm-1' } }, 'memberId: expected a string'],
  ['mobileNumber a number', { ...VALID, mobileNumber: 1012345678 }, 'mobileNumber: expected a string', 'm-1'],
  ['email an object', { ...VALID, memberId: ' m-1 ', email: { a: 1 } }, 'email: expected a string', 'm-1'],
  ['unsubscribeEmail a word', { ...VALID, unsubscribeEmail: 'maybe' }, 'unsubscribeEmail: invalid boolean', 'm-1'],
  ['unsubscribeTexting 2', { ...VALID, unsubscribeTexting: 2 }, 'unsubscribeTexting: invalid boolean', 'm-1'],
  [
    'unsubscribeTexting an array',
    { ...VALID, unsubscribeTexting: ['y'] },
    'unsubscribeTexting: invalid boolean',
    'm-1',
  ],
  [
    'every field wrong: each named once, in column order',
    { memberId: '', mobileNumber: 1, email: false, unsubscribeEmail: 'x', unsubscribeTexting: 'y' },
    'empty memberId; mobileNumber: expected a string; email: expected a string; unsubscribeEmail: invalid boolean; unsubscribeTexting: invalid boolean',
  ],
];

describe('source row check: accepted rows and their normalised member', () => {
  it.each(ACCEPTED)('%s', (_name, raw, expected) => {
    const result = parseStoredMember(raw);
    expect(result).toEqual({ ok: true, member: expected });
    // Exactly the member's columns, in their order, and no more (unknown keys are not carried into the work set).
    expect(result.ok && Object.keys(result.member)).toEqual(Object.keys(expected));
    expect(rowEntry(9, raw)).toEqual({ line: 9, member: expected });
  });
});

describe('source row check: refused rows name the field, never the value', () => {
  it.each(REFUSED)('%s', (_name, raw, reason, memberId) => {
    expect(parseStoredMember(raw)).toEqual(
      memberId === undefined ? { ok: false, reason } : { ok: false, reason, memberId },
    );
    expect(rowEntry(9, raw)).toEqual(
      memberId === undefined ? { line: 9, skip: reason } : { line: 9, memberId, skip: reason },
    );
    for (const value of Object.values(raw))
      if (typeof value === 'string' && value.trim().length > 2) expect(reason).not.toContain(value.trim());
  });
});

// Values of every kind each column may meet in a CSV cell, a JSON line or a database row.
const LONG = MEMBER_ID_MAX_CHARS;
const CELLS: Record<string, unknown[]> = {
  memberId: [
    'm1',
    ' m1 ',
    '\u00a0id\u3000',
    '',
    '   ',
    'a/b@c?d#e',
    '\ud800',
    'x'.repeat(LONG),
    'x'.repeat(LONG + 1),
    SMILE.repeat(LONG),
    SMILE.repeat(LONG + 1),
    'x'.repeat(LONG - 1) + SMILE,
    42,
    0,
    -7,
    2 ** 60,
    1.5,
    NaN,
    null,
    undefined,
    true,
    {},
    ['m'],
  ],
  mobileNumber: ['010', '', ' ', null, undefined, 0, 12, true, {}, ['x']],
  email: ['a@example.com', '', null, undefined, 1, false, { a: 1 }],
  unsubscribeEmail: [
    'true',
    ' YES ',
    '1',
    '0',
    'no',
    '',
    ' ',
    'maybe',
    0,
    1,
    2,
    true,
    false,
    null,
    undefined,
    {},
    ['1'],
  ],
  unsubscribeTexting: ['false', 'No', 'y', '', 1, 0, -1, true, null, undefined, []],
};

/** Rows of random cells, most of them accepted (each cell of the kinds a valid row holds, now and then any). */
function generatedRows(count: number): Array<Record<string, unknown>> {
  const rng = new SeededRng(26);
  const accepted = (column: string, cell: unknown) => parseStoredMember({ ...VALID, [column]: cell }).ok;
  const good = Object.fromEntries(
    Object.entries(CELLS).map(([column, cells]) => [column, cells.filter((cell) => accepted(column, cell))]),
  );
  const cellOf = (cells: unknown[]) => cells[rng.int(0, cells.length - 1)];
  return Array.from({ length: count }, () => {
    const raw: Record<string, unknown> = {};
    for (const [column, cells] of Object.entries(CELLS)) {
      const cell = cellOf(rng.chance(0.8) ? (good[column] ?? cells) : cells);
      if (cell !== undefined || rng.chance(0.5)) raw[column] = cell;
    }
    if (rng.chance(0.1)) raw.extra = cellOf(CELLS.email ?? []);
    return raw;
  });
}

/** What zod's runtime parser of the row schema says of a normalised row: its output, or each issue's path, code, message. */
function runtimeVerdict(schema: z.ZodType, row: unknown): unknown {
  const parsed = schema.safeParse(row);
  return parsed.success
    ? { output: parsed.data }
    : { issues: parsed.error.issues.map(({ path, code, message }) => ({ path, code, message })) };
}

describe("source row check: the compiled check and zod's runtime parser alike", () => {
  const rows = generatedRows(20_000);
  const show = (raw: Record<string, unknown>) => JSON.stringify(raw, (_k, v: unknown) => (Number.isNaN(v) ? 'NaN' : v));

  it('the generated rows hold accepted rows and refusals of every kind', () => {
    const results = rows.map((raw) => parseStoredMember(raw));
    expect(results.filter((r) => r.ok).length).toBeGreaterThan(5_000);
    const reasons = new Set(results.flatMap((r) => (r.ok ? [] : r.reason.split('; '))));
    expect([...reasons].sort()).toEqual([
      'email: expected a string',
      'empty memberId',
      'memberId longer than 256 characters',
      'memberId: expected a string',
      'mobileNumber: expected a string',
      'unsubscribeEmail: invalid boolean',
      'unsubscribeTexting: invalid boolean',
    ]);
  });

  it('every generated row: accepted or refused as the runtime parser does, the same member, the same reason', () => {
    const differences = rows.flatMap((raw) => {
      const parsed = storedMemberSchema.safeParse(normaliseRow(raw));
      const expected = parsed.success
        ? { ok: true, member: parsed.data }
        : { ok: false, reason: [...new Set(parsed.error.issues.map((issue) => issue.message))].join('; ') };
      const { memberId: _kept, ...actual } = { memberId: undefined, ...parseStoredMember(raw) };
      // JSON, not toEqual: the member's keys must come in the same order too (the work file is written from it).
      return JSON.stringify(actual) === JSON.stringify(expected) ? [] : [`${show(raw)}: ${JSON.stringify(actual)}`];
    });
    expect(differences.slice(0, 5)).toEqual([]);
  });

  it('every generated row, normalised: the compiled schema gives the same output or the same issues', () => {
    const compiled = z.compile(storedMemberSchema, { strict: true });
    const differences = rows.flatMap((raw) => {
      const row = normaliseRow(raw);
      const [a, b] = [runtimeVerdict(storedMemberSchema, row), runtimeVerdict(compiled, row)];
      return JSON.stringify(a) === JSON.stringify(b) ? [] : [`${show(raw)}: ${JSON.stringify(b)}`];
    });
    expect(differences.slice(0, 5)).toEqual([]);
  });

  it('zod compiles the row schema (one it could not compile would quietly keep the slower runtime parser)', () => {
    expect(() => z.compile(storedMemberSchema, { strict: true })).not.toThrow();
  });
});
