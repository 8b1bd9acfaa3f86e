// When a run's search attributes (BackfillStatus, BackfillProcessed, BackfillFailed) are set again: each upsert is a
// billed Temporal action, so not on every batch. Pure: the workflow asks it, the unit test tables it.

export type BackfillStatus = 'running' | 'paused' | 'done';

/** What the run last set, and where it is now. */
export interface SearchAttributeMoment {
  status: BackfillStatus;
  lastStatus: BackfillStatus | undefined;
  processed: number;
  lastPublishedProcessed: number;
  /** The source's rows: the real total, or only those read so far while `totalKnown` is false. */
  total: number;
  /** False while the rest of the source is still being normalised beside the batches (patch 'prepare-overlap-v1'). */
  totalKnown: boolean;
}

/** One upsert per 5% of the total, at least one member. */
export const progressStep = (total: number): number => Math.max(1, Math.floor(total / 20));

/**
 * Whether the search attributes are set now: at once on a status change and when done; otherwise once the members
 * processed since the last upsert reach 5% of the total. While the total is unknown (the source still being read) it
 * is a lower bound, one round of batches: its 5% is less than a batch, so that step would upsert after every batch;
 * there is no progress-only upsert then (`knownTotalOnly`: the workflow's patch; false gives the step as before).
 * The Web UI's current details still follow every batch; the step resumes with the real total.
 */
export function searchAttributesDue(m: SearchAttributeMoment, knownTotalOnly: () => boolean): boolean {
  if (m.status !== m.lastStatus || m.status === 'done') return true;
  if (m.processed - m.lastPublishedProcessed < progressStep(m.total)) return false;
  return m.totalKnown || !knownTotalOnly();
}
