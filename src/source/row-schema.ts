import { z } from 'zod';
import type { SourceEntry, StoredMember } from '../types';

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

const nullableBoolean = (field: string) =>
  z.preprocess(normaliseBooleanInput, z.boolean({ error: `${field}: invalid boolean` }).nullable());

// Contact values are kept verbatim (normalising phone numbers is the comparison's job); only an empty
// cell or a missing key means "nothing stored".
const nullableText = (field: string) =>
  z
    .string({ error: `${field}: expected a string` })
    .nullish()
    .transform((value) => (value === undefined || value === '' ? null : value));

/**
 * memberId is trimmed and otherwise kept exactly (spaces, '/', '@', '?', '#', non-ASCII are legal).
 * A JSON integer is accepted as its decimal form because database exports often emit numeric ids.
 */
export const memberIdSchema = z.preprocess(
  (value) =>
    value === undefined || value === null
      ? ''
      : typeof value === 'number' && Number.isSafeInteger(value)
        ? String(value)
        : value,
  z
    .string({ error: 'memberId: expected a string' })
    .trim()
    .min(1, { error: 'empty memberId' })
    .refine((id) => [...id].length <= MEMBER_ID_MAX_CHARS, {
      error: `memberId longer than ${MEMBER_ID_MAX_CHARS} characters`,
    }),
);

/** One source row (CSV cells by column name, or a JSONL object); unknown keys are dropped. */
export const storedMemberSchema = z.object({
  memberId: memberIdSchema,
  mobileNumber: nullableText('mobileNumber'),
  email: nullableText('email'),
  unsubscribeEmail: nullableBoolean('unsubscribeEmail'),
  unsubscribeTexting: nullableBoolean('unsubscribeTexting'),
});

export type RowResult = { ok: true; member: StoredMember } | { ok: false; reason: string; memberId?: string };

/**
 * Validates one row. The reason lists every problem ("unsubscribeEmail: invalid boolean; empty
 * memberId") and never the offending values, which may be personal data.
 */
export function parseStoredMember(raw: Record<string, unknown>): RowResult {
  const parsed = storedMemberSchema.safeParse(raw);
  if (parsed.success) return { ok: true, member: parsed.data };
  const reason = [...new Set(parsed.error.issues.map((issue) => issue.message))].join('; ');
  const memberId = memberIdSchema.safeParse(raw.memberId);
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
