// A run's counters and the one rule that maps a recorded outcome to its counter: the batch tallies its members with
// it, the workflow its deferred replays, the report's outcome labels and a verify run's stored verdicts read it. Pure.
import type { ComparedField, OutcomeKind } from './types';

export interface Counters {
  processed: number;
  upserts: number;
  deletes: number;
  unchanged: number;
  failed: number;
  skipped: number;
  /** Upserts (decided, in a dry run) per differing field: the plan's per-field counts. */
  fields?: FieldCounts;
  /**
   * Members Channel Talk changed during the repair (issue 23): looked up again before a replay that waited, their
   * decision or values had changed. Beside the outcomes, not one of them (each is also counted by what was sent).
   */
  changedDuringRepair?: number;
}

/** Upserts per differing field: one count per compared field (src/domain/types.ts COMPARED_FIELDS). */
export type FieldCounts = Record<ComparedField, number>;

/** The counter each outcome is counted in. */
export const COUNTER_OF = {
  upsert: 'upserts',
  delete: 'deletes',
  unchanged: 'unchanged',
  failed: 'failed',
  skipped: 'skipped',
} as const satisfies Record<OutcomeKind, keyof Counters>;

export const zeroFields = (): FieldCounts => ({
  mobileNumber: 0,
  email: 0,
  unsubscribeEmail: 0,
  unsubscribeTexting: 0,
});

export const zeroCounters = (): Counters => ({
  processed: 0,
  upserts: 0,
  deletes: 0,
  unchanged: 0,
  failed: 0,
  skipped: 0,
  fields: zeroFields(),
});

export function addCounts(into: Counters, from: Counters): void {
  into.processed += from.processed;
  into.upserts += from.upserts;
  into.deletes += from.deletes;
  into.unchanged += from.unchanged;
  into.failed += from.failed;
  into.skipped += from.skipped;
  if (from.changedDuringRepair) into.changedDuringRepair = (into.changedDuringRepair ?? 0) + from.changedDuringRepair;
  if (from.fields) {
    const fields = (into.fields ??= zeroFields());
    for (const key of Object.keys(fields) as (keyof FieldCounts)[]) fields[key] += from.fields[key] ?? 0;
  }
}

/** Counts one member's recorded outcome: processed, its outcome's counter, and an upsert's differing fields. */
export function countRecorded(into: Counters, outcome: OutcomeKind, fields?: readonly ComparedField[]): void {
  into.processed += 1;
  into[COUNTER_OF[outcome]] += 1;
  if (outcome === 'upsert' && fields) {
    const counts = (into.fields ??= zeroFields());
    for (const field of fields) counts[field] += 1;
  }
}
