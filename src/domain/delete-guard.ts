// The delete guard's decisions, shared by the workflow (which pauses the run) and the batch activity (which holds
// its deletes back while the guard has not cleared them). Pure: it imports nothing, so workflow code may use it and
// the unit tests (test/unit/delete-guard.test.ts) run it without a server.
//
// Why: every lookup that answers 404 becomes a replayed delete, and a customer's webhook logic deletes its user.
// The credentials of another channel or a wrong CHANNEL_API_URL make *every* lookup answer 404; the guard stops
// such a run before the deletes go out, and lets them go when someone confirms them.

export interface GuardThresholds {
  maxDeleteShare: number;
  minDecisions: number;
}

/**
 * The guard's defaults, the input's (src/workflow-input.ts) and those of runs prepared before the guard: ordinary
 * repairs hold ~15% deletes; a run whose every lookup answers 404, 100%.
 */
export const DEFAULT_GUARD: GuardThresholds = { maxDeleteShare: 0.5, minDecisions: 100 };

export interface GuardCounts {
  /** Members decided: upsert, delete, unchanged, or skipped with differing fields (as the report counts). */
  decisions: number;
  deletes: number;
}

/**
 * - `undecided`: fewer than minDecisions decided: deletes are held (a mass delete would not be seen yet);
 * - `tripped`: deletes pass maxDeleteShare: the run pauses, deletes are held;
 * - `cleared`: enough decided and the share is fine (or every batch is done and too few were decided to judge);
 * - `confirmed`: someone resumed with {"confirmDeletes": true}: deletes go, whatever the share.
 */
export type GuardStatus = 'undecided' | 'tripped' | 'cleared' | 'confirmed';

/** Whether a recorded outcome is a decision (the report's rule too: src/report/summary.ts). */
export function isDecision(outcome: string, fields?: readonly string[]): boolean {
  return (
    outcome === 'upsert' ||
    outcome === 'delete' ||
    outcome === 'unchanged' ||
    (outcome === 'skipped' && (fields?.length ?? 0) > 0)
  );
}

/** Deletes pass the share, once enough are decided. Exactly the share does not pass it. */
export function guardTripped(c: GuardCounts, t: GuardThresholds): boolean {
  return c.decisions >= t.minDecisions && c.deletes / c.decisions > t.maxDeleteShare;
}

export function guardStatus(
  c: GuardCounts,
  t: GuardThresholds,
  o: { confirmed: boolean; allBatchesDone: boolean },
): GuardStatus {
  if (o.confirmed) return 'confirmed';
  if (guardTripped(c, t)) return 'tripped';
  if (c.decisions >= t.minDecisions || o.allBatchesDone) return 'cleared';
  return 'undecided';
}

/** Whether deletes held back may now be replayed. */
export const releasesDeletes = (status: GuardStatus): boolean => status === 'cleared' || status === 'confirmed';

export function guardPauseReason(c: GuardCounts): string {
  const share = c.decisions === 0 ? 0 : c.deletes / c.decisions;
  const why = c.deletes === c.decisions ? 'all of them' : `${Math.round(share * 1000) / 10}%`;
  return `delete guard: ${c.deletes} of ${c.decisions} decisions so far are deletes (${why}): check the channel and CHANNEL_API_URL, then resume with {"confirmDeletes": true}`;
}

/** What a batch is told at launch: the run's counts so far (completed batches) and whether deletes are confirmed. */
export interface BatchGuardInput extends GuardCounts {
  confirmed: boolean;
  /** When the deletes were confirmed (workflow time, ISO): stamped on every delete the audit records after it. */
  confirmedAt?: string;
}

/**
 * A batch's own view of the guard: the run's counts at launch plus the decisions this batch makes, in the order it
 * makes them. It cannot see other batches in flight, so it holds every delete until its view has enough decisions,
 * and once its view trips it holds every delete after (the workflow, which sees every batch, decides what happens
 * to what was held). Concurrent batches each hold until *their* view clears, so a run whose every lookup is a delete
 * delivers none before the workflow pauses it, however many batches and members are in flight.
 */
export class BatchGuardView {
  private readonly counts: GuardCounts;
  private tripped = false;

  constructor(
    private readonly input: BatchGuardInput,
    private readonly thresholds: GuardThresholds,
  ) {
    this.counts = { decisions: input.decisions, deletes: input.deletes };
  }

  /** Counts one decision; for a delete, returns whether to hold it (true) rather than send it. */
  decided(isDelete: boolean): boolean {
    this.counts.decisions += 1;
    if (isDelete) this.counts.deletes += 1;
    if (this.input.confirmed) return false;
    if (!this.tripped && guardTripped(this.counts, this.thresholds)) this.tripped = true;
    return isDelete && (this.tripped || this.counts.decisions < this.thresholds.minDecisions);
  }

  /** Whether a delete decided now would go: confirmed, or enough decisions in view and it never tripped. */
  releases(): boolean {
    if (this.input.confirmed) return true;
    if (this.tripped || guardTripped(this.counts, this.thresholds)) return false;
    return this.counts.decisions >= this.thresholds.minDecisions;
  }
}
