import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { AuditStore } from '../src/audit/audit-store';
import type { Config } from '../src/config';
import { buildBatchIndex } from '../src/source/batch-index';
import { SourceConfigError } from '../src/source/errors';
import { selectByOutcome, selectEntries, selectFromPlan } from '../src/source/audit-selection';
import { prepareWorkFile } from '../src/source/work-file';
import { InvalidInputError, parseBackfillInput } from '../src/workflow-input';
import type { BackfillPaths, PreparedBackfill, ReplayTargetSpec } from '../workflows/definitions';

export interface PrepareInput {
  input: unknown;
  workflowId: string;
  /** Names this backfill's files: stable across continue-as-new, new for a fresh start of the same id. */
  firstRunId: string;
}

export interface PrepareDeps {
  config: Config;
  /** Whether this worker can replay to the target (a real run needs one). */
  hasTarget: (spec: ReplayTargetSpec) => boolean;
  /** The workers' audit store: `only` and `fromPlan` read the earlier run's log from it. */
  audit: AuditStore;
  searchAttributesRegistered?: () => Promise<boolean>;
}

/** Everything that can stop a run does so here, before the first lookup or replay. */
export async function prepareBackfill(
  { config, hasTarget, audit, searchAttributesRegistered = async () => false }: PrepareDeps,
  { input, workflowId, firstRunId }: PrepareInput,
): Promise<PreparedBackfill> {
  let parsed: ReturnType<typeof parseBackfillInput>;
  try {
    parsed = parseBackfillInput(input, workflowId);
  } catch (err) {
    if (err instanceof InvalidInputError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
    throw err;
  }
  const { options } = parsed;
  if (!options.dryRun && !hasTarget(options.target)) {
    throw ApplicationFailure.nonRetryable(
      options.target.type === 'url'
        ? 'WEBHOOK_URL is not set on the worker: set it, or start the backfill with "dryRun": true'
        : 'this worker cannot replay to the channel\'s registered webhooks',
      'InvalidConfig',
    );
  }

  const dir = path.resolve(config.BACKFILL_DATA_DIR, safeName(workflowId), safeName(firstRunId));
  const paths: BackfillPaths = {
    dir,
    workFile: path.join(dir, 'members.jsonl'),
    auditPath: path.resolve(parsed.auditPath ?? path.join(dir, 'audit.jsonl')),
    pendingDir: path.join(dir, 'pending'),
  };

  const heartbeat = setInterval(() => Context.current().heartbeat(), 5_000);
  try {
    const selection = options.fromPlan
      ? await selectFromPlan(audit, path.resolve(options.fromPlan.auditPath))
      : options.only
        ? await selectByOutcome(audit, path.resolve(options.only.auditPath), options.only.outcomes)
        : undefined;
    const summary = await prepareWorkFile(
      // The connection string stays on the worker: it never travels in workflow input.
      options.source.type === 'postgres'
        ? { ...options.source, databaseUrl: config.BACKFILL_DATABASE_URL }
        : { ...options.source, path: path.resolve(options.source.path) },
      paths.workFile,
      selection ? selectEntries(selection) : undefined,
    );
    const rate = [config.CHANNEL_RATE_LIMIT, options.rateLimit ?? undefined].filter((r): r is number => r !== undefined);
    const batchSize = effectiveBatchSize(summary.rows, options.batchSize, options.parallelBatches, rate.length ? Math.min(...rate) : undefined);
    const batches = await buildBatchIndex(paths.workFile, batchSize);
    return { options: { ...options, batchSize }, paths, rows: summary.rows, batches, searchAttributes: await searchAttributesRegistered() };
  } catch (err) {
    if (err instanceof SourceConfigError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidSource');
    throw err;
  } finally {
    clearInterval(heartbeat);
  }
}

/**
 * A batch under a rate budget lasts about this long at its share of the budget (R / parallelBatches): long enough
 * that its fixed cost (workflow round trips, reading the batch, the final flush: 50-90 ms measured) is noise, short enough that
 * the progress query, which counts finished batches, moves every minute or so even at Channel Talk's 10 requests/s
 * (1000-member batches at 2.5/s each would finish once every 400 s).
 */
export const RATE_BATCH_SECONDS = 60;

/**
 * The batch size a run uses. `batchSize` (default 1000, the input's maximum) is an upper bound:
 * - without a rate budget it is used as is: per member the cheapest size measured (BENCHMARKS.md: 100-member
 *   100-member slots spend ~100 ms per batch, 40 ms of it on members; at 1,000 the fixed ~70 ms is 11% of a batch,
 *   hidden by the batches beside it);
 * - with a budget of R/s a batch holds about RATE_BATCH_SECONDS of its share (R / parallelBatches), at least 1,
 *   evened out so the run is a whole number of rounds of parallelBatches equal batches;
 * - a source with fewer rows than parallelBatches x that size is cut into parallelBatches equal batches instead,
 *   so that they run side by side and share the whole rate budget: one 500-row batch holding nearly every row
 *   would otherwise run alone on its share (R=10, 600 rows, batches of 500 and 100 at 5/s each: 60 s for the
 *   small one, 100 s at half the budget for the large one).
 * The history stays bounded whatever the size: the workflow continues as new at maxHistoryEvents.
 */
export function effectiveBatchSize(rows: number, batchSize: number, parallelBatches: number, ratePerSecond?: number): number {
  if (ratePerSecond === undefined) return Math.max(1, Math.min(batchSize, Math.ceil(rows / parallelBatches)));
  const byRate = Math.max(1, Math.min(batchSize, Math.ceil((ratePerSecond / parallelBatches) * RATE_BATCH_SECONDS)));
  // Under a budget, a whole number of rounds of parallelBatches equal batches: a batch's share is fixed when it
  // starts, so a last round with fewer batches than slots runs on part of the budget (R=100, 6,000 rows, 6 batches
  // of 1000 for 4 slots: 73.8% of R; measured in BENCHMARKS.md).
  const batches = parallelBatches * Math.ceil(rows / (parallelBatches * byRate));
  return Math.max(1, Math.min(byRate, Math.ceil(rows / Math.max(1, batches))));
}

/** Workflow and run ids may hold any character; file names may not. */
function safeName(id: string): string {
  return encodeURIComponent(id).replace(/\*/g, '%2A').replace(/^\.+/, (dots) => '%2E'.repeat(dots.length));
}
