// `carried` is the state a run hands to its own next run through continue-as-new (BackfillInput.carried). It holds
// the prepared paths and options, so a client that could set it would skip the preparation (input schema, path
// confinement, channel check) and point batches and the cleanup at any path. Only a run that Temporal started as
// the continue-as-new of an earlier run may take it: Temporal sets `continuedFromExecutionRunId` itself, and no
// client can. Two other kinds of run also carry a previous run id and the first run's input unchanged: a retry
// (attempt > 1, under a client-given retry policy) and a cron run; neither is a continue-as-new, so neither may take
// a `carried` either (the backfill is not meant to run under either).

/** What of WorkflowInfo tells how this run began. */
export interface RunOrigin {
  continuedFromExecutionRunId?: string;
  attempt: number;
  cronSchedule?: string;
}

export const CARRIED_FROM_CLIENT =
  'invalid workflow input: "carried" is the workflow\'s own continue-as-new state and cannot be set by a client; start the backfill without it';

/** Why this run must not take the `carried` it was given, or null when it came from the run's own continue-as-new. */
export function refuseCarried(hasCarried: boolean, origin: RunOrigin): string | null {
  if (!hasCarried) return null;
  const ownContinueAsNew =
    origin.continuedFromExecutionRunId !== undefined && origin.attempt === 1 && origin.cronSchedule === undefined;
  return ownContinueAsNew ? null : CARRIED_FROM_CLIENT;
}
