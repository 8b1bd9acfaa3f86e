import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { AuditStore } from '../src/audit/audit-store';
import type { Config } from '../src/config';
import { SourceConfigError } from '../src/source/errors';
import { selectByOutcome, selectEntries, selectFromPlan } from '../src/source/audit-selection';
import type { WorkStore } from '../src/store/work-store';
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
  /** Where the normalised work set and its batch boundaries go (file or PostgreSQL). */
  work: WorkStore;
  searchAttributesRegistered?: () => Promise<boolean>;
}

/** Everything that can stop a run does so here, before the first lookup or replay. */
export async function prepareBackfill(
  { config, hasTarget, audit, work, searchAttributesRegistered = async () => false }: PrepareDeps,
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
    const summary = await work.write(
      // The connection string stays on the worker: it never travels in workflow input.
      options.source.type === 'postgres'
        ? { ...options.source, databaseUrl: config.BACKFILL_DATABASE_URL }
        : { ...options.source, path: path.resolve(options.source.path) },
      paths.workFile,
      selection ? selectEntries(selection) : undefined,
      { workflowId },
    );
    const batchSize = effectiveBatchSize(summary.rows, options.batchSize, options.parallelBatches);
    const batches = await work.buildBatches(paths.workFile, batchSize);
    return { options: { ...options, batchSize }, paths, rows: summary.rows, batches, searchAttributes: await searchAttributesRegistered() };
  } catch (err) {
    if (err instanceof SourceConfigError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidSource');
    throw err;
  } finally {
    clearInterval(heartbeat);
  }
}

/**
 * `batchSize` is an upper bound. A source with fewer rows than parallelBatches x batchSize is cut into
 * parallelBatches equal batches instead, so that they run side by side and share the whole rate budget: one
 * 500-row batch holding nearly every row would otherwise run alone on its share (R=10, 600 rows, batches of
 * 500 and 100 at 5/s each: 60 s for the small one, 100 s at half the budget for the large one).
 */
export function effectiveBatchSize(rows: number, batchSize: number, parallelBatches: number): number {
  return Math.max(1, Math.min(batchSize, Math.ceil(rows / parallelBatches)));
}

/** Workflow and run ids may hold any character; file names may not. */
export function safeName(id: string): string {
  return encodeURIComponent(id).replace(/\*/g, '%2A').replace(/^\.+/, (dots) => '%2E'.repeat(dots.length));
}
