// Deletes the delete guard held back in a batch wait for the workflow to release them, which it does as soon as
// the run has enough decisions: for the first batches of a run, right after they end. Their replays then look each
// member up again (the lookup is older than REPLAY_RECHECK_AFTER_MS, issue 23). In a run of at most
// parallelBatches batches those lookups all came after the last batch ended, through the replays' own limiter
// (rate / parallelBatches per worker, activities/run-limiters.ts): the run's last second at half its budget. That
// was what kept `npm run bench -- --rate 100 --burst 10 --workers 2 --n 3000` at 97-98% of the budget (99.8%
// without the re-lookups; BENCHMARKS.md).
//
// So a batch whose own view of the guard would now let a delete go looks its held deletes up again itself, right
// before it ends, with its own permits (its share of the budget, like its other lookups), and stores the fresh
// decision for the replay: released right after, the replay finds it fresh and sends it without looking up again.
// Nothing is sent or recorded here; a member that needs no replay any more (or whose lookup failed) is left as it
// was and its replay looks it up again, as before.
import type { PendingStore } from '../src/audit/pending-store';
import type { RateLimiter } from '../src/channel/rate-limiter';
import { runPool } from '../src/run-pool';
import type { DeferredReplay } from '../workflows/definitions';
import { recheckReplay, type RecheckDeps } from './recheck-replay';

export interface RefreshHeldDeps {
  pending: PendingStore;
  recheck: RecheckDeps;
  /** The batch's own limiter: these lookups are part of its share. */
  limiter: RateLimiter;
  concurrency: number;
  /** Writes go through the batch's store gate (activities/store-outage.ts). */
  persist<T>(write: () => Promise<T>): Promise<T>;
  signal: AbortSignal;
}

/** Looks the held deletes of `deferred` up again; returns how many got a fresh decision stored. */
export async function refreshHeldDeletes(
  deps: RefreshHeldDeps,
  deferred: readonly DeferredReplay[],
  paths: { pendingDir: string; auditPath: string },
): Promise<number> {
  const recheck: RecheckDeps = { ...deps.recheck, limiter: () => deps.limiter };
  let refreshed = 0;
  await runPool(
    deferred.filter((d) => d.held),
    deps.concurrency,
    async (d) => {
      if (deps.signal.aborted) return;
      const stored = await deps.pending.get(paths.pendingDir, d.line);
      if (!stored) return;
      let checked;
      try {
        checked = await recheckReplay(recheck, stored, paths.auditPath, deps.signal);
      } catch {
        // Refused credentials, an abort, a failed request: the replay looks it up again later, as before.
        return;
      }
      if (checked.kind !== 'send' || !checked.rechecked) return;
      await deps.persist(() => deps.pending.put(paths.pendingDir, checked.replay));
      refreshed++;
    },
  );
  return refreshed;
}
