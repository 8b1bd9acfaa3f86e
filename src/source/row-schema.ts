import { z } from 'zod';
import { MEMBER_COLUMNS, type MemberColumn, type SourceEntry, type StoredMember } from '../domain/types';

/** Channel Talk memberIds are short identifiers; a longer value is a mis-mapped column, not an id. */
export const MEMBER_ID_MAX_CHARS = 256;

// Spellings customers' exports use for booleans (SQL, spreadsheets, ORMs), compared case-insensitively.
const BOOLEAN_WORDS: ReadonlyMap<string, boolean> = new Map([
  ['true', true],
  ['1', true],
  ['yes', true],
  ['false', false],
  ['0', false],
  ['no', false],
]);

/**
 * Maps a raw cell to a boolean, null, or itself when unrecognised (so z.boolean() rejects it with the
 * field's message). JSON 0/1 numbers are accepted as well: MySQL exports tinyint flags that way.
 */
function normaliseBooleanInput(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (typeof value === 'number' && (value === 0 || value === 1)) return value === 1;
  if (typeof value !== 'string') return value;
  const word = value.trim().toLowerCase();
  if (word === '') return null;
  return BOOLEAN_WORDS.get(word) ?? value;
}

/** An empty cell or a missing key means "nothing stored"; contact values are otherwise kept verbatim. */
function normaliseTextInput(value: unknown): unknown {
  return value === undefined || value === '' ? null : value;
}

/** A JSON integer memberId is taken as its decimal form: database exports often emit numeric ids. */
function normaliseMemberIdInput(value: unknown): unknown {
  if (value === undefined || value === null) return '';
  return typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
}

/**
 * memberId is trimmed and otherwise kept exactly (spaces, '/', '@', '?', '#', non-ASCII are legal). Its length is
 * counted in characters; a string of at most that many UTF-16 units needs no counting.
 */
const MEMBER_ID_PROBLEMS = {
  type: 'memberId: expected a string',
  empty: 'empty memberId',
  long: `memberId longer than ${MEMBER_ID_MAX_CHARS} characters`,
};
const memberIdSchema = z
  .string({ error: MEMBER_ID_PROBLEMS.type })
  .trim()
  .min(1, { error: MEMBER_ID_PROBLEMS.empty })
  .refine((id) => id.length <= MEMBER_ID_MAX_CHARS || [...id].length <= MEMBER_ID_MAX_CHARS, {
    error: MEMBER_ID_PROBLEMS.long,
  });
// A memberId of the wrong type (a fraction, an integer too large to keep exactly, an object) may still be some member's
// id written badly, so such a row is not one that names no member.
const memberIdProblems: ReadonlySet<string> = new Set([MEMBER_ID_PROBLEMS.empty, MEMBER_ID_PROBLEMS.long]);

/**
 * Whether a bad row's reason (one of rowEntry's) says the row was read and its memberId is missing or no id: a row
 * that names no member, unlike a record that could not be read as a row at all (its memberId unknown).
 */
export const namesNoMember = (reason: string): boolean => reason.split('; ').some((r) => memberIdProblems.has(r));

// Normalising phone numbers is the comparison's job, not the source's.
const nullableText = (field: string) => z.string({ error: `${field}: expected a string` }).nullable();
const nullableBoolean = (field: string) => z.boolean({ error: `${field}: invalid boolean` }).nullable();

/**
 * Each column of a source row: how a raw cell or JSON value is brought to its type where the spelling is known,
 * then the schema that checks it. The spellings are mapped in plain functions before zod, not in z.preprocess or
 * .transform steps: those pipes cost about 1.4 µs a row, most of preparing a million-row CSV, while zod checks
 * plain types in a few dozen nanoseconds. Anything unrecognised is passed on as it is, for the schema to reject
 * with the field's message.
 */
const COLUMNS = {
  memberId: { normalise: normaliseMemberIdInput, schema: memberIdSchema },
  mobileNumber: { normalise: normaliseTextInput, schema: nullableText('mobileNumber') },
  email: { normalise: normaliseTextInput, schema: nullableText('email') },
  unsubscribeEmail: { normalise: normaliseBooleanInput, schema: nullableBoolean('unsubscribeEmail') },
  unsubscribeTexting: { normalise: normaliseBooleanInput, schema: nullableBoolean('unsubscribeTexting') },
} satisfies Record<MemberColumn, { normalise: (value: unknown) => unknown; schema: z.ZodType }>;

/** One source row with its values normalised (see COLUMNS); unknown keys are dropped. */
export const storedMemberSchema = z.object(
  Object.fromEntries(MEMBER_COLUMNS.map((column) => [column, COLUMNS[column].schema])) as {
    [K in MemberColumn]: (typeof COLUMNS)[K]['schema'];
  },
);

// Compiled once, as this module loads: every row of a source passes here (ten million of them beside the batches, on
// the worker's cores), and a valid row is checked and copied by one generated function instead of zod walking the
// schema. A refused row falls back to zod's runtime parser, so its issues, and the reason built from them, are
// exactly the plain schema's (test/unit/row-schema.test.ts compares the two). A unit test checks zod can compile it.
const storedMemberCheck = z.compile(storedMemberSchema);

/** A raw row brought to the types the schema checks (see COLUMNS), every column present. */
export function normaliseRow(raw: Record<string, unknown>): Record<MemberColumn, unknown> {
  const row = {} as Record<MemberColumn, unknown>;
  for (const column of MEMBER_COLUMNS) row[column] = COLUMNS[column].normalise(raw[column]);
  return row;
}

export type RowResult = { ok: true; member: StoredMember } | { ok: false; reason: string; memberId?: string };

/**
 * Validates one row. The reason lists every problem ("unsubscribeEmail: invalid boolean; empty
 * memberId") and never the offending values, which may be personal data.
 */
export function parseStoredMember(raw: Record<string, unknown>): RowResult {
  const row = normaliseRow(raw);
  const parsed = storedMemberCheck.safeParse(row);
  if (parsed.success) return { ok: true, member: parsed.data };
  const reason = [...new Set(parsed.error.issues.map((issue) => issue.message))].join('; ');
  const memberId = memberIdSchema.safeParse(row.memberId);
  return memberId.success ? { ok: false, reason, memberId: memberId.data } : { ok: false, reason };
}

/** A source row as the batch sees it: the member to check, or why the row is skipped (its memberId when known). */
export function rowEntry(line: number, raw: Record<string, unknown>): SourceEntry {
  const result = parseStoredMember(raw);
  if (result.ok) return { line, member: result.member };
  return result.memberId === undefined
    ? { line, skip: result.reason }
    : { line, memberId: result.memberId, skip: result.reason };
}
