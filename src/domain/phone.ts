// Phone numbers as the comparison sees them: one canonical string per number, so that a customer's
// local format ('010-1234-5678') and Channel Talk's E.164 ('+821012345678') compare equal.
import { Metadata, parsePhoneNumberFromString, type CountryCode, type PhoneNumber } from 'libphonenumber-js';

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
  return normalizeParsed(trimmed, validParse(trimmed, defaultRegion));
}

/** The number libphonenumber reads in non-empty trimmed text, when it is a valid one. */
function validParse(trimmed: string, defaultRegion: CountryCode): PhoneNumber | undefined {
  const parsed = parsePhoneNumberFromString(trimmed, defaultRegion);
  return parsed?.isValid() ? parsed : undefined;
}

/** normalizePhone's answer for non-empty trimmed text, given its valid parse (if any). */
function normalizeParsed(trimmed: string, valid: PhoneNumber | undefined): string {
  return valid ? valid.number : trimmed.replace(SEPARATORS, '');
}

/**
 * Whether two values are the same number: exactly `normalizePhone(a, region) === normalizePhone(b, region)`, but
 * parsing `b` only when it is needed. The repair calls it with the customer's stored value as `a` and Channel
 * Talk's as `b`, which Channel Talk serves in E.164: when `a` reads as a valid number whose E.164 is `b`'s text,
 * `b` is not parsed (libphonenumber is most of the comparison's cost, about 5 µs a parse).
 */
export function samePhoneNumber(
  a: string | null | undefined,
  b: string | null | undefined,
  region: CountryCode,
): boolean {
  const textA = a?.trim() ?? '';
  const textB = b?.trim() ?? '';
  // Normalising is deterministic, so equal text is the same number without parsing either.
  if (textA === textB) return true;
  // One empty (null) and the other not (a string): never equal.
  if (textA === '' || textB === '') return false;
  const validA = validParse(textA, region);
  if (validA && validA.number === textB && e164ReparsesToItself(validA)) return true;
  return normalizeParsed(textA, validA) === normalizeParsed(textB, validParse(textB, region));
}

/**
 * Whether normalizing the E.164 text of a valid parse gives that text back, checked without parsing it. Why it does
 * when this answers true (libphonenumber-js 1.x, `source/parse.js` and `source/helpers/`): the text is
 * '+' + callingCode + nationalNumber (`PhoneNumber.number`), digits only, so parsing it reads no extension and its
 * '+' makes it international, whatever the default region. (1) The calling code comes back the same:
 * `extractCountryCallingCode` takes the shortest leading digits that are a calling code, and calling codes are
 * prefix-free (no code begins another; test/unit/phone.test.ts checks the metadata), so it is `callingCode` again.
 * (2) The national number comes back the same: the rest of the digits go through `extractNationalNumber` under the
 * calling code's numbering plan, which changes them only when that plan's `national_prefix_for_parsing`, as
 * `^(?:pattern)`, matches their start; this function answers true only when it does not (or there is none). (3)
 * So the parse is `callingCode` and `nationalNumber` again (their lengths passed the same checks the first time):
 * valid, normalizePhone answers its `number`, the same text; not valid (another country of a shared calling code
 * judged it), or no parse at all, it answers the text without separators, and E.164 has none: the same text again.
 * When this answers false, the caller parses the text as normalizePhone does.
 */
export function e164ReparsesToItself(valid: PhoneNumber): boolean {
  const prefix = nationalPrefixPattern(valid.countryCallingCode);
  if (prefix === undefined) return false;
  return prefix === null || !prefix.test(valid.nationalNumber);
}

// Per calling code: its plan's national prefix for parsing as the parser builds it, null for none; undefined when
// the metadata does not say (then nothing is assumed).
const nationalPrefixes = new Map<string, RegExp | null | undefined>();
let metadata: Metadata | undefined;

/** How a numbering plan's national prefix for parsing reads it (not in libphonenumber-js's typings). */
interface PlanWithNationalPrefix {
  nationalPrefixForParsing?: unknown;
}

function nationalPrefixPattern(callingCode: string): RegExp | null | undefined {
  if (nationalPrefixes.has(callingCode)) return nationalPrefixes.get(callingCode);
  metadata ??= new Metadata();
  let plan: PlanWithNationalPrefix | undefined;
  try {
    // A calling code selects the plan the parser selects for it (selectNumberingPlan takes either).
    metadata.selectNumberingPlan(callingCode as CountryCode);
    plan = metadata.numberingPlan as PlanWithNationalPrefix | undefined;
  } catch {
    plan = undefined; // not what this version of the library does: assume nothing, parse as normalizePhone does
  }
  let pattern: RegExp | null | undefined;
  if (typeof plan?.nationalPrefixForParsing === 'function') {
    const source: unknown = (plan.nationalPrefixForParsing as () => unknown).call(plan);
    if (typeof source === 'string' && source !== '') pattern = new RegExp(`^(?:${source})`);
    else if (source === undefined || source === null || source === '') pattern = null;
  }
  nationalPrefixes.set(callingCode, pattern);
  return pattern;
}
