// Phone numbers as the comparison sees them: one canonical string per number, so that a customer's
// local format ('010-1234-5678') and Channel Talk's E.164 ('+821012345678') compare equal.
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';

export type { CountryCode };

// Separators people type inside numbers; dropping them lets two spellings of the same
// unparsable value still compare equal.
const SEPARATORS = /[\s\-.()]/g;

/**
 * The E.164 form of `value` ('+821012345678'), reading numbers without a country code as numbers of
 * `defaultRegion`. Empty or whitespace-only input is null. A value libphonenumber cannot read as a valid
 * number comes back trimmed and without separators, so equal garbage still compares equal.
 *
 * The default (`min`) metadata is used on purpose: it validates by length, so a number from a range newer
 * than the metadata still normalises instead of falling back and producing a spurious difference.
 */
export function normalizePhone(value: string | null | undefined, defaultRegion: CountryCode): string | null {
  const trimmed = value?.trim() ?? '';
  if (trimmed === '') return null;
  const parsed = parsePhoneNumberFromString(trimmed, defaultRegion);
  if (parsed?.isValid()) return parsed.number;
  return trimmed.replace(SEPARATORS, '');
}
