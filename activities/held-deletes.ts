// Deletes the delete guard held back in a batch are the deletes of the batch's first decisions (those of the run's
// first batches: each judges by the run's counts at its start plus its own). A batch whose own view of the guard
// has cleared by its end would send any delete it decided now, so it sends the ones it held too, right before it
// ends, with its own permits and quick retries: first looked up again when their lookup is older than
// REPLAY_RECHECK_AFTER_MS (issue 23), then sent and recorded like any member of the batch. Before, each went to a
// replay activity of its own once the workflow released it (about 57 activities in a run of the defaults, 13 at
// 10 lookups/s with one `keepSent` heartbeat each): 12-15% of a 20,000-member run's CPU and most of its Temporal
// actions (BENCHMARKS.md).
//
// What cannot be finished here is left as it was, for the workflow to release to its replay activity: a lookup
// that fails or is refused (the channel check), a send still not delivered after the quick retries (a fresh
// decision is stored for it first), an abort. A stop (pause, receiver down) skips this step altogether.
import type { AuditEntry } from '../src/audit/audit-entry';
import type { PendingStore } from '../src/audit/pending-store';
import type { RateLimiter } from '../src/channel/rate-limiter';
import { runPool } from '../src/run-pool';
import type { DeferredReplay } from '../workflows/definitions';
import { recheckReplay, type RecheckDeps } from './recheck-replay';
import { sendReplay, type RepairContext } from './repair-member';

export interface HeldDeletesDeps {
  pending: PendingStore;
  recheck: RecheckDeps;
  /** The batch's own limiter: these lookups are part of its share. */
  limiter: RateLimiter;
  concurrency: number;
  /** The batch's send context: its target (waiting for the store), endpoint health, signal, clock. */
  repair: Pick<RepairContext, 'target' | 'health' | 'signal' | 'now' | 'recheckAfterMs'>;
  /** Writes go through the batch's store gate (activities/store-outage.ts). */
  persist<T>(write: () => Promise<T>): Promise<T>;
  /** Writes the member's outcome behind, with the batch's (the member was counted done when it was held). */
  record(entry: AuditEntry): void;
}

/**
 * Sends the held deletes of `deferred` (looked up again first when too old); returns the lines whose outcome was
 * recorded here, whose pending replay the caller settles once the outcomes are written.
 */
export async function deliverHeldDeletes(
  deps: HeldDeletesDeps,
  deferred: readonly DeferredReplay[],
  paths: { pendingDir: string; auditPath: string },
): Promise<Set<number>> {
  const recheck: RecheckDeps = { ...deps.recheck, limiter: () => deps.limiter };
  const recorded = new Set<number>();
  const { signal, target } = deps.repair;
  await runPool(
    deferred.filter((d) => d.held),
    deps.concurrency,
    async (d) => {
      if (signal.aborted || !target) return;
      const stored = await deps.pending.get(paths.pendingDir, d.line);
      if (!stored) return;
      let checked;
      try {
        checked = await recheckReplay(recheck, stored, paths.auditPath, signal);
      } catch {
        // Refused credentials, an abort, a failed request: its replay looks it up again later.
        return;
      }
      if (checked.kind === 'refused' || checked.kind === 'lookup-failed') return;
      const now = deps.repair.now().toISOString();
      if (checked.kind === 'record') {
        // Looked up again, nothing to send any more (unchanged, or skipped by onlyChangedSince or the plan).
        deps.record({ ...checked.entry, ts: now, dryRun: false });
        recorded.add(d.line);
        return;
      }
      const { replay } = checked;
      const fields = replay.event === 'upsert' ? replay.base.fields : undefined;
      let sent;
      try {
        sent = await sendReplay(
          { ...replay.base, ts: now },
          { payload: replay.payload, fields, lookedUpAt: replay.lookedUpAt ?? 0, memberId: replay.memberId },
          deps.repair,
          target,
          () => replay,
        );
      } catch {
        // Aborted between attempts: not recorded, its replay sends it (same webhook-id).
        sent = { kind: 'deferred' as const, replay };
      }
      if (sent.kind === 'recorded') {
        deps.record(sent.entry);
        recorded.add(d.line);
      } else if (checked.rechecked) {
        // Kept for its replay activity: the fresh decision, not the one it replaced.
        await deps.persist(() => deps.pending.put(paths.pendingDir, replay));
      }
    },
  );
  return recorded;
}
