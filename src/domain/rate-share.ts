// How much of the API rate budget a batch gets when it starts. Pure and deterministic (it runs inside the
// workflow): it imports nothing.
//
// A batch activity builds its own limiter at rateLimit / share. A static share of parallelBatches wastes the
// unused slots' part of the budget whenever fewer batches than that run at once (a run with fewer batches than
// slots, and every run's tail): R=10 with 2 batches and parallelBatches 4 ran at 30% of R. Instead the share is
// the number of batches that could still run alongside this one, capped at parallelBatches:
//
//   k = batches in flight (not counting this one) + 1 + batches still to launch (redo queue + never started).
//
// Why the shares never sum above the budget: take the batches running together at any moment, n of them
// (n <= parallelBatches, the workflow never runs more). When each of them started, every other one of the n
// was either already in flight or still to launch (a batch in flight that is later cancelled goes to the redo
// queue, so it is still counted), so each got k >= n, share = min(parallelBatches, k) >= n, and
// sum(1/share) <= n * (1/n) = 1.

export interface ShareInputs {
  /** Batches the workflow runs at once at most. */
  parallelBatches: number;
  /** Batches in flight when this one starts, not counting this one. */
  inFlight: number;
  /** Batches waiting in the redo queue, after this one was taken from it if it came from there. */
  redo: number;
  /** Batches not started yet, after this one was taken if it is a new one. */
  notStarted: number;
}

/** The divisor of the rate budget for a batch starting now: at least 1, at most parallelBatches. */
export function rateShare({ parallelBatches, inFlight, redo, notStarted }: ShareInputs): number {
  const couldRunTogether = Math.max(0, inFlight) + 1 + Math.max(0, redo) + Math.max(0, notStarted);
  return Math.max(1, Math.min(parallelBatches, couldRunTogether));
}
