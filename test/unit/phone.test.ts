import { describe, expect, it } from 'vitest';
import { getCountries, getExampleNumber, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import examples from 'libphonenumber-js/mobile/examples';
import metadata from 'libphonenumber-js/min/metadata';
import { e164ReparsesToItself, normalizePhone, samePhoneNumber } from '../../src/domain/phone';

// samePhoneNumber skips parsing Channel Talk's value when the stored one's E.164 is its text; it must answer exactly
// what comparing both normalizePhone forms answers (the rule decide.ts held before, and normalizePhone's tests in
// decide.test.ts).
const fullComparison = (a: string | null, b: string | null, region: CountryCode) =>
  normalizePhone(a, region) === normalizePhone(b, region);

describe('samePhoneNumber', () => {
  const cases: Array<[string, string | null, string | null, CountryCode, boolean]> = [
    ['both null', null, null, 'KR', true],
    ['null and whitespace', null, '  ', 'KR', true],
    ['null and a number', null, '+821012345678', 'KR', false],
    ['a number and empty', '010-1234-5678', '', 'KR', false],
    ['same text', '+821012345678', '+821012345678', 'KR', true],
    ['same text but for spaces around', ' 010-1234-5678 ', '010-1234-5678', 'KR', true],
    ['local against its E.164 (the fast path)', '010-1234-5678', '+821012345678', 'KR', true],
    ['digits only against its E.164', '01012345678', '+821012345678', 'KR', true],
    ['local against another number', '010-1234-5678', '+821012345679', 'KR', false],
    ['local against its E.164 written with spaces', '010-1234-5678', '+82 10-1234-5678', 'KR', true],
    ['local against its E.164 with the trunk 0', '010-1234-5678', '+82 010-1234-5678', 'KR', true],
    ['E.164 stored, local at Channel Talk', '+821012345678', '010-1234-5678', 'KR', true],
    ['local read in another region differs', '010-1234-5678', '+821012345678', 'US', false],
    ['US local against its E.164', '(415) 555-2671', '+14155552671', 'US', true],
    [
      'Argentine mobile (national prefix pattern matches its E.164): full comparison',
      '011 15-2345-6789',
      '+5491123456789',
      'AR',
      true,
    ],
    ['Argentine mobile against another number', '011 15-2345-6789', '+5491123456788', 'AR', false],
    ['unparsable stored against its text without separators', '12-3', '123', 'KR', true],
    ['unparsable stored against other text', 'n/a', 'N/A', 'KR', false],
    ['all separators against null', '--', null, 'KR', false],
  ];
  it.each(cases)('%s', (_name, a, b, region, expected) => {
    expect(samePhoneNumber(a, b, region)).toBe(expected);
    expect(fullComparison(a, b, region)).toBe(expected);
  });

  it("answers as the full comparison for every country's example number, local and E.164, equal and not", () => {
    let compared = 0;
    for (const country of getCountries()) {
      const example = getExampleNumber(country, examples);
      if (!example) continue;
      const other = parsePhoneNumberFromString(`${example.number.slice(0, -1)}${(+example.number.slice(-1) + 1) % 10}`);
      for (const stored of [example.format('NATIONAL'), example.nationalNumber, example.number]) {
        for (const channel of [example.number, example.format('INTERNATIONAL'), other?.number ?? null, null]) {
          expect(samePhoneNumber(stored, channel, country), `${country} ${stored} ${channel}`).toBe(
            fullComparison(stored, channel, country),
          );
          compared += 1;
        }
      }
    }
    expect(compared).toBeGreaterThan(2_000);
  });
});

describe('e164ReparsesToItself', () => {
  const cases: Array<[string, string, CountryCode, boolean]> = [
    ['Korean mobile: no national prefix to strip from 10…', '010-1234-5678', 'KR', true],
    ['US number: the plan strips a leading 1, the national number starts with 4', '(415) 555-2671', 'US', true],
    ['Argentine mobile: the plan could read 9 11… as a prefix', '011 15-2345-6789', 'AR', false],
  ];
  it.each(cases)('%s', (_name, text, region, expected) => {
    const parsed = parsePhoneNumberFromString(text, region);
    expect(parsed?.isValid()).toBe(true);
    expect(e164ReparsesToItself(parsed!)).toBe(expected);
  });

  it('holds what it claims: wherever it answers true, normalizing the E.164 gives it back', () => {
    let claimed = 0;
    for (const country of getCountries()) {
      const example = getExampleNumber(country, examples);
      if (!example) continue;
      for (const text of [example.format('NATIONAL'), example.number]) {
        const parsed = parsePhoneNumberFromString(text, country);
        if (!parsed?.isValid() || !e164ReparsesToItself(parsed)) continue;
        expect(normalizePhone(parsed.number, country), `${country} ${text}`).toBe(parsed.number);
        expect(normalizePhone(parsed.number, 'KR'), `${country} ${text}`).toBe(parsed.number);
        claimed += 1;
      }
    }
    expect(claimed).toBeGreaterThan(400);
  });

  it('rests on calling codes being prefix-free in the metadata (no code begins another)', () => {
    const codes = Object.keys(metadata.country_calling_codes);
    expect(codes.length).toBeGreaterThan(200);
    const prefixed = codes.filter((code) => codes.some((other) => other !== code && other.startsWith(code)));
    expect(prefixed).toEqual([]);
  });
});
