// A run continues as new only once the whole source is read (the next run starts with the real totals), so while
// a long source is still being normalised beside the batches its history keeps growing past maxHistoryEvents. A
// slow source (a 10M-row PostgreSQL store under load: normalised in 8.5 minutes) took one run to 10,485 events, and
// a slower one (a remote database) would take it toward Temporal's hard limit of 51,200, where the server ends the
// run. Past twice the threshold, at most HOLD_AT_MOST, the run starts nothing new until the normaliser is done.

/** Events at which a run still reading its source stops starting batches: below Temporal's 10,240 warning. */
export const HOLD_AT_MOST = 9_000;

/** Whether the run must start no batch or replay until the normaliser ends. */
export function holdsForNormaliser(historyLength: number, maxHistoryEvents: number, normalising: boolean): boolean {
  return normalising && historyLength >= Math.min(2 * maxHistoryEvents, HOLD_AT_MOST);
}
