// The verdicts of a verify run (input `verifyAfter`): whether an earlier run's replays really changed the customer's
// data, and a verify run's counters. The only list of them. Pure: the workflow counts and shows them, the activities
// record them.
import { COUNTER_OF, zeroCounters, zeroFields, type Counters, type FieldCounts } from './counters';
import type { ComparedField, OutcomeKind } from './types';

/** What a verify run found for one member an earlier run replayed; one per member, in its own audit log. */
export const VERDICTS = ['repaired', 'still differs', 'still present', 'changed since', 'failed'] as const;
export type Verdict = (typeof VERDICTS)[number];

/** How many members got each verdict. */
export type VerdictCounts = Record<Verdict, number>;

/** A verify run's counters: members checked, the count of each verdict, and "still differs" per field. */
export interface VerifyCounters {
  processed: number;
  verdicts: VerdictCounts;
  stillDiffers: FieldCounts;
}

/**
 * The outcome a verdict is stored under (the audit stores index each line by an outcome code): what a dry run over
 * the fresh export decides for that member, so `only`/`fromPlan` work on a verify log unchanged (`"fromPlan"` over
 * a verify log replays what still differs or is still present). One verdict per outcome, so it reads back.
 */
export const VERDICT_OUTCOMES = {
  repaired: 'unchanged',
  'still differs': 'upsert',
  'still present': 'delete',
  'changed since': 'skipped',
  failed: 'failed',
} as const satisfies Record<Verdict, OutcomeKind>;

/** The verdict a verify log's line stored under `outcome` holds (VERDICT_OUTCOMES read backwards). */
export const VERDICT_OF_OUTCOME = Object.fromEntries(VERDICTS.map((v) => [VERDICT_OUTCOMES[v], v])) as Record<
  OutcomeKind,
  Verdict
>;

export const zeroVerdicts = (): VerdictCounts => ({
  repaired: 0,
  'still differs': 0,
  'still present': 0,
  'changed since': 0,
  failed: 0,
});

export const zeroVerifyCounters = (): VerifyCounters => ({
  processed: 0,
  verdicts: zeroVerdicts(),
  stillDiffers: zeroFields(),
});

/** Counts one member's verdict, and the fields that still differ. */
export function countVerdict(into: VerifyCounters, verdict: Verdict, fields?: readonly ComparedField[]): void {
  into.processed += 1;
  into.verdicts[verdict] += 1;
  if (verdict === 'still differs') for (const field of fields ?? []) into.stillDiffers[field] += 1;
}

export function addVerifyCounts(into: VerifyCounters, from: VerifyCounters): void {
  into.processed += from.processed;
  for (const verdict of VERDICTS) into.verdicts[verdict] += from.verdicts[verdict];
  for (const field of Object.keys(into.stillDiffers) as ComparedField[])
    into.stillDiffers[field] += from.stillDiffers[field] ?? 0;
}

/**
 * A verify run's counters from the run counters release 1.0 kept for it (each verdict counted under its outcome,
 * "still differs" per field as the upserts' fields): what a 1.0 verify batch returned, and a 1.0 run carried.
 */
export function verifyCountersOf(c: Counters): VerifyCounters {
  const verdicts = zeroVerdicts();
  for (const verdict of VERDICTS) verdicts[verdict] = c[COUNTER_OF[VERDICT_OUTCOMES[verdict]]];
  return { processed: c.processed, verdicts, stillDiffers: { ...zeroFields(), ...c.fields } };
}

/**
 * The run counters a verify run's progress and result show beside `verify` (each verdict under its outcome), as
 * they always have: the inverse of verifyCountersOf.
 */
export function runCountersOf(v: VerifyCounters): Counters {
  const c = zeroCounters();
  c.processed = v.processed;
  for (const verdict of VERDICTS) c[COUNTER_OF[VERDICT_OUTCOMES[verdict]]] = v.verdicts[verdict];
  c.fields = { ...v.stillDiffers };
  return c;
}
