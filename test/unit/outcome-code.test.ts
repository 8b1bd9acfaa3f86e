// Issue 22 item 4: the audit index's code layout is derived from the outcome list and COMPARED_FIELDS, so a fifth
// compared field does not land on the deferred bit (it did with the fixed 0x80 flag and 4-bit field mask).
import { describe, expect, it } from 'vitest';
import {
  OUTCOME_CODE_LAYOUT,
  decodeOutcome,
  decodeWith,
  encodeOutcome,
  outcomeCodeArray,
  outcomeCodeLayout,
} from '../../src/domain/outcome-code';
import { COMPARED_FIELDS, OUTCOMES } from '../../src/domain/types';

/** Every subset of `items`. */
const subsets = <T>(items: readonly T[]): T[][] =>
  items.reduce<T[][]>((all, item) => [...all, ...all.map((s) => [...s, item])], [[]]);

describe('outcomeCodeLayout', () => {
  it.each([
    // outcomes, fields -> outcome bits, bits, width
    [3, 3, 2, 7, 8],
    [5, 4, 3, 9, 16],
    [5, 5, 3, 10, 16],
    [8, 4, 4, 10, 16],
    [6, 11, 3, 16, 16],
    [6, 12, 3, 17, 32],
  ])(
    '%i outcomes, %i fields: %i outcome bits, %i bits in a %i-bit array',
    (outcomes, fields, outcomeBits, bits, width) => {
      expect(outcomeCodeLayout(outcomes, fields)).toMatchObject({ outcomeBits, bits, width });
    },
  );

  it('refuses a layout that does not fit 32 bits, naming the counts', () => {
    expect(() => outcomeCodeLayout(5, 28)).toThrow('5 outcomes and 28 compared fields need 33 bits, more than 32');
  });

  it("today's layout (with the changed-during-the-repair bit) takes two bytes a line", () => {
    expect(OUTCOME_CODE_LAYOUT).toMatchObject({ bits: 9, width: 16 });
    expect(outcomeCodeArray(4)).toBeInstanceOf(Uint16Array);
  });
});

describe('every record round-trips', () => {
  const roundTrip = (outcomes: readonly string[], fields: readonly string[]) => {
    const layout = outcomeCodeLayout(outcomes.length, fields.length);
    const codes = new Set<number>();
    for (const outcome of outcomes)
      for (const deferred of [false, true])
        for (const changed of [false, true])
          for (const subset of subsets(fields)) {
            const entry = { outcome, deferred, fields: subset, changedDuringRepair: changed };
            const code = encodeOutcome(entry, layout, outcomes, fields);
            expect(code).toBeLessThan(2 ** layout.width);
            codes.add(code);
            expect(decodeWith(code, layout, outcomes, fields)).toEqual({
              outcome,
              deferred,
              ...(subset.length ? { fields: subset } : {}),
              ...(changed ? { changedDuringRepair: true } : {}),
            });
          }
    // Distinct records, distinct codes: no bit shared between fields, outcome and the two flags.
    expect(codes.size).toBe(outcomes.length * 4 * 2 ** fields.length);
    expect(outcomeCodeArray(1, layout).BYTES_PER_ELEMENT * 8).toBe(layout.width);
  };

  it("today's outcomes and fields", () => {
    roundTrip(OUTCOMES, COMPARED_FIELDS);
    expect(decodeOutcome(0)).toBeUndefined();
  });

  it('a fifth compared field (the recipe in ARCHITECTURE.md) keeps the deferred bit apart', () => {
    roundTrip(OUTCOMES, [...COMPARED_FIELDS, 'name']);
  });

  it('an eighth outcome moves the field bits', () => {
    roundTrip([...OUTCOMES, 'a', 'b', 'c'], COMPARED_FIELDS);
  });
});
