// The file audit store keeps, per source line, the outcome recorded for it in one small integer (a typed array of
// millions of lines, off the JS heap): the outcome's code, one bit per compared field an upsert found different,
// whether a deferred replay recorded it, and whether Channel Talk changed the member during the repair (issue 23: a
// replay counted again after a crash must count it again). The layout is derived from OUTCOMES and COMPARED_FIELDS,
// so a new outcome or a fifth compared field moves the bits after it instead of landing on them; the store picks
// the narrowest array that holds every bit (9 bits today: 3 outcome + 4 field + deferred + changed, in 16).
import { COMPARED_FIELDS, OUTCOMES, type ComparedField, type OutcomeKind } from './types';

export interface RecordedOutcome {
  outcome: OutcomeKind;
  deferred: boolean;
  /** Upserts: the fields that differed (for the per-field counts of a plan). */
  fields?: ComparedField[];
  /** Channel Talk changed the member during the repair (a replay looked up again before it was sent). */
  changedDuringRepair?: boolean;
}

export interface OutcomeCodeLayout {
  /** Bits 0..outcomeBits-1: the outcome's index in the list, plus one (0: no record). */
  outcomeBits: number;
  /** The field bits start here, one per field in list order. */
  fieldsShift: number;
  deferredFlag: number;
  changedFlag: number;
  /** Bits a code needs, and the width of the typed array that holds them. */
  bits: number;
  width: 8 | 16 | 32;
}

/** The layout for `outcomes` and `fields`; throws when the codes would not fit 32 bits. */
export function outcomeCodeLayout(outcomes: number, fields: number): OutcomeCodeLayout {
  const outcomeBits = Math.ceil(Math.log2(outcomes + 1));
  const bits = outcomeBits + fields + 2;
  const width = ([8, 16, 32] as const).find((w) => bits <= w);
  if (!width)
    throw new Error(`audit index: ${outcomes} outcomes and ${fields} compared fields need ${bits} bits, more than 32`);
  return {
    outcomeBits,
    fieldsShift: outcomeBits,
    deferredFlag: 2 ** (outcomeBits + fields),
    changedFlag: 2 ** (outcomeBits + fields + 1),
    bits,
    width,
  };
}

export const OUTCOME_CODE_LAYOUT = outcomeCodeLayout(OUTCOMES.length, COMPARED_FIELDS.length);

/** A typed array of `size` codes as wide as the layout needs. */
export function outcomeCodeArray(size: number, layout = OUTCOME_CODE_LAYOUT): Uint8Array | Uint16Array | Uint32Array {
  return layout.width === 8
    ? new Uint8Array(size)
    : layout.width === 16
      ? new Uint16Array(size)
      : new Uint32Array(size);
}

/** One record's code; `fieldNames` and `outcomeNames` are the lists the layout was made for. */
export function encodeOutcome<F extends string, O extends string>(
  entry: { outcome: O; deferred?: boolean; fields?: readonly F[]; changedDuringRepair?: boolean },
  layout: OutcomeCodeLayout = OUTCOME_CODE_LAYOUT,
  outcomeNames: readonly O[] = OUTCOMES as unknown as readonly O[],
  fieldNames: readonly F[] = COMPARED_FIELDS as unknown as readonly F[],
): number {
  let code = outcomeNames.indexOf(entry.outcome) + 1;
  for (const field of entry.fields ?? []) {
    const bit = fieldNames.indexOf(field);
    if (bit >= 0) code += 2 ** (layout.fieldsShift + bit);
  }
  return code + (entry.deferred ? layout.deferredFlag : 0) + (entry.changedDuringRepair ? layout.changedFlag : 0);
}

/** The record a code stands for, or undefined for 0 (no record) or a code no outcome has. */
export function decodeOutcome(code: number): RecordedOutcome | undefined {
  return decodeWith(code, OUTCOME_CODE_LAYOUT, OUTCOMES, COMPARED_FIELDS);
}

export function decodeWith<F extends string, O extends string>(
  code: number,
  layout: OutcomeCodeLayout,
  outcomeNames: readonly O[],
  fieldNames: readonly F[],
): { outcome: O; deferred: boolean; fields?: F[]; changedDuringRepair?: true } | undefined {
  const outcome = outcomeNames[(code % 2 ** layout.outcomeBits) - 1];
  if (outcome === undefined) return undefined;
  const fields = fieldNames.filter((_, bit) => Math.floor(code / 2 ** (layout.fieldsShift + bit)) % 2 === 1);
  const deferred = Math.floor(code / layout.deferredFlag) % 2 === 1;
  const changed = Math.floor(code / layout.changedFlag) % 2 === 1;
  return { outcome, deferred, ...(fields.length ? { fields } : {}), ...(changed ? { changedDuringRepair: true } : {}) };
}
