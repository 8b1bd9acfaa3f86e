// The verdicts of a verify run (input `verifyAfter`): whether an earlier run's replays really changed the customer's
// data. The only list of them. Pure: the workflow shows them in the Web UI, the activities record them.
import { COUNTER_OF, type Counters } from './counters';
import type { OutcomeKind } from './types';

/** What a verify run found for one member an earlier run replayed; one per member, in its own audit log. */
export const VERDICTS = ['repaired', 'still differs', 'still present', 'changed since', 'failed'] as const;
export type Verdict = (typeof VERDICTS)[number];

/**
 * The outcome a verdict is recorded under: what a dry run over the fresh export decides for that member, so the
 * audit stores, counters, `only`/`fromPlan` and the report work on a verify log unchanged (`"fromPlan"` over a verify
 * log replays what still differs or is still present). One verdict per outcome: the counters are the verdict counts.
 */
export const VERDICT_OUTCOMES = {
  repaired: 'unchanged',
  'still differs': 'upsert',
  'still present': 'delete',
  'changed since': 'skipped',
  failed: 'failed',
} as const satisfies Record<Verdict, OutcomeKind>;

/** A verify run's counters as verdict counts ("still differs" per field is `counters.fields`). */
export function verdictCounts(c: Counters): Record<Verdict, number> {
  const counts = {} as Record<Verdict, number>;
  for (const verdict of VERDICTS) counts[verdict] = c[COUNTER_OF[VERDICT_OUTCOMES[verdict]]];
  return counts;
}
