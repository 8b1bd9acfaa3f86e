// The verify path (input `verifyAfter`): one batch of the members an earlier run replayed, each looked up again and
// recorded with its verdict. It shares the batch frame (activities/batch-run.ts: loading, write-behind, heartbeat,
// stop on cancel or bad credentials, rate share and pacer) with processBatch, and nothing of the repair: there is no
// target, no delete guard and no replay to hand over.
import { Context } from '@temporalio/activity';
import type { ChannelClient } from '../src/channel/client';
import { zeroCounters } from '../src/domain/counters';
import type { DecideOptions } from '../src/domain/decide';
import { isVerifyWorkEntry } from '../src/domain/types';
import { countVerdict, runCountersOf, VERDICT_OF_OUTCOME, zeroVerifyCounters } from '../src/domain/verdicts';
import { runPool } from '../src/run-pool';
import type { BatchResult } from '../workflows/definitions';
import {
  batchLimiter,
  batchStoreGate,
  joinPacer,
  beyondEndResult,
  beyondTheEnd,
  loadBatch,
  startBatchRun,
  type BatchFrame,
  type BatchFrameDeps,
} from './batch-run';
import { verifyMember, type VerifyContext } from './verify-member';

export interface VerifyBatchDeps extends BatchFrameDeps {
  channel: ChannelClient;
  decideOptions: DecideOptions;
  now: () => Date;
}

/**
 * Verifies one batch. Members already recorded (by an earlier attempt) are not looked up again, and the verdicts are
 * counted from what the audit log holds (each stored under its outcome: VERDICT_OUTCOMES), so each is counted once.
 */
export async function verifyBatch(deps: VerifyBatchDeps, input: BatchFrame): Promise<BatchResult> {
  const context = Context.current();
  const { batch, options, paths } = input;
  if (await beyondTheEnd(deps.work, input)) return beyondEndResult(batch);
  const store = batchStoreGate(batch);
  const loaded = await loadBatch(deps, input, store, isVerifyWorkEntry);
  const todo = loaded.entries.filter((e) => !loaded.recorded.has(e.line));
  const run = startBatchRun(deps, input, loaded.entries.length - todo.length, store);
  const ctx: VerifyContext = {
    backfill: input.backfill,
    runLabel: options.runLabel,
    channel: deps.channel,
    limiter: batchLimiter(deps, input),
    signal: run.signal,
    now: deps.now,
    verifyOptions: { ...deps.decideOptions, clockSkewMs: options.verifyAfter?.clockSkewMs ?? 0 },
  };
  const pacer = joinPacer(deps, input);
  try {
    await runPool(todo, deps.memberConcurrency, (entry) =>
      run.member(async () => {
        const entryOf = await verifyMember(entry, ctx);
        run.record(entryOf);
        // Counted by its verdict, not by the outcome its log stores it under: a verify run repairs nothing, so it
        // must not show up in a repair's outcome counts.
        deps.metrics.verdict(entryOf.verdict);
      }),
    );
  } finally {
    pacer.leave();
    await run.finish();
  }

  const stopReason = run.stopReason();
  if (stopReason) {
    context.log.info('batch stopped early', { batch, stopReason, recorded: run.membersDone() });
    return { batch, complete: false, stopReason, counts: zeroCounters(), deferred: [] };
  }
  const final = await run.store.persist(() => deps.audit.lookup(paths.auditPath, loaded.lines));
  const verify = zeroVerifyCounters();
  for (const line of loaded.lines) {
    const recorded = final.get(line);
    if (!recorded) throw new Error(`batch ${batch}: line ${line} ended without a recorded verdict`);
    countVerdict(verify, VERDICT_OF_OUTCOME[recorded.outcome], recorded.fields);
  }
  context.log.info('batch done', { batch, processed: verify.processed, ...verify.verdicts });
  // `counts`: the same counts as release 1.0's workflow code reads them (a worker of it may run this batch's run).
  return { batch, complete: true, counts: runCountersOf(verify), verify, deferred: [], ...pacer.pace() };
}
