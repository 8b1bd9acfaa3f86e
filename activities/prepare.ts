import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { auditHeaderFor, type AuditHeader } from '../src/audit/audit-header';
import type { AuditStore } from '../src/audit/audit-store';
import { describeChannel, type ChannelInfo } from '../src/channel/channel-info';
import type { ChannelClient } from '../src/channel/client';
import { isUnder } from '../src/path-confinement';
import type { Config } from '../src/config';
import { SourceConfigError } from '../src/source/errors';
import { selectByOutcome, selectEntries, selectFromPlan } from '../src/source/audit-selection';
import { describeSource, resolveSource } from '../src/source/source-kinds';
import { selectForVerify } from '../src/source/verify-selection';
import { readSourceChunks } from '../src/source/read-source';
import { normalisedEntries, type AppendEntries, type SelectEntry } from '../src/source/work-file';
import type { WorkStore } from '../src/store/work-store';
import { runDataDir, runFiles } from '../src/store/data-dir';
import { InvalidInputError, parseBackfillInput } from '../src/workflow-input';
import type { BackfillPaths, PreparedBackfill, ReplayTargetSpec } from '../workflows/definitions';

export interface PrepareInput {
  input: unknown;
  workflowId: string;
  /** Names this backfill's files: stable across continue-as-new, new for a fresh start of the same id. */
  firstRunId: string;
  /**
   * The workflow runs normaliseSource beside the batches (patch 'prepare-overlap-v1'): a long source is only read
   * as far as its first round of batches here. Absent (runs recorded before): the whole source is prepared.
   */
  overlap?: boolean;
}

export interface PrepareDeps {
  config: Config;
  /** Whether this worker can replay to the target (a real run needs one). */
  hasTarget: (spec: ReplayTargetSpec) => boolean;
  /** The workers' audit store: `only`, `fromPlan` and `verifyAfter` read the earlier run's log from it. */
  audit: AuditStore;
  /** The workers' Channel Talk client: which channel its credentials open is checked before any lookup. */
  channel: Pick<ChannelClient, 'getChannel'>;
  /** Where the normalised work set and its batch boundaries go (file or PostgreSQL). */
  work: WorkStore;
  searchAttributesRegistered?: () => Promise<boolean>;
  /** This worker's Temporal identity (`<pid>@<host>`), named when it refuses a run it cannot do. */
  workerIdentity?: string;
}

/** Everything that can stop a run does so here, before the first lookup or replay. */
export async function prepareBackfill(deps: PrepareDeps, prepareInput: PrepareInput): Promise<PreparedBackfill> {
  const { input, workflowId, firstRunId, overlap = false } = prepareInput;
  const { config, audit, channel, searchAttributesRegistered = async () => false } = deps;
  const { options, source, paths, expectChannelId } = runOf(config, input, workflowId, firstRunId);
  refuseWithoutTarget(deps, options);

  const heartbeat = setInterval(() => Context.current().heartbeat(), 5_000);
  try {
    // First of all that costs: a run against the wrong channel or a wrong base URL would turn every lookup into a delete.
    const channelInfo = await checkChannel(channel, expectChannelId);
    await refuseOtherChannels(audit, paths.auditPath, options, channelInfo);
    const shape = await prepareWork(deps, source, paths.workFile, options, { workflowId, overlap });
    // The log's header, before any record; a header already there (a retried preparation, a reused log) wins.
    const resolved = {
      ...options,
      // The resolved source (a file's absolute path); the header keeps only its type and path or table.
      source,
      only: options.only && { ...options.only, auditPath: path.resolve(options.only.auditPath) },
      fromPlan: options.fromPlan && { auditPath: path.resolve(options.fromPlan.auditPath) },
      verifyAfter: options.verifyAfter && {
        ...options.verifyAfter,
        auditPath: path.resolve(options.verifyAfter.auditPath),
      },
    };
    const header = await audit.writeHeader(
      paths.auditPath,
      auditHeaderFor({ workflowId, firstRunId, channel: channelInfo, options: resolved }),
    );
    refuseOtherChannel(header, channelInfo, paths.auditPath);
    return {
      options: { ...options, batchSize: shape.batchSize, parallelBatches: shape.parallelBatches },
      paths,
      rows: shape.rows,
      batches: shape.batches,
      searchAttributes: await searchAttributesRegistered(),
      channel: channelInfo,
      sourceLabel: describeSource(options.source),
      ...(shape.normalising ? { normalising: true as const } : {}),
    };
  } catch (err) {
    if (err instanceof SourceConfigError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidSource');
    throw err;
  } finally {
    clearInterval(heartbeat);
  }
}

/**
 * The run an input describes on this worker: its checked options (a problem fails the run with its one line), its
 * source resolved with the worker's settings and its files. The same for the preparation and the normaliser.
 */
export function runOf(config: Config, input: unknown, workflowId: string, firstRunId: string) {
  const parsed = parseInput(input, workflowId);
  const { options } = parsed;
  confinePaths(config, parsed.auditPath, options);
  // The connection string stays on the worker: it never travels in workflow input.
  const source = resolveSource(options.source, {
    sourceDirs: config.BACKFILL_SOURCE_DIRS,
    databaseUrl: config.BACKFILL_DATABASE_URL,
    mysqlUrl: config.BACKFILL_MYSQL_URL,
  });
  if ('problem' in source)
    throw ApplicationFailure.nonRetryable(`invalid workflow input: ${source.problem}`, 'InvalidInput');
  const dir = runDataDir(config.BACKFILL_DATA_DIR, workflowId, firstRunId);
  const paths: BackfillPaths = {
    dir,
    ...runFiles(dir),
    auditPath: path.resolve(parsed.auditPath ?? path.join(dir, 'audit.jsonl')),
  };
  return { options, source, paths, expectChannelId: parsed.expectChannelId };
}

type Source = Exclude<ReturnType<typeof resolveSource>, { problem: string }>;

interface WorkShape {
  rows: number;
  batches: number;
  batchSize: number;
  parallelBatches: number;
  /** The source is longer than the first round of batches: normaliseSource writes it while they run. */
  normalising?: boolean;
}

/**
 * The work set and the run's shape. With `overlap` (the workflow's patch 'prepare-overlap-v1') on a store that can
 * be read while it is written (both: the file store and, since it has writeGrowing, the PostgreSQL store), a source
 * longer than one round of batches (parallelBatches x batchSize rows) is only read that far here: every check that
 * can stop the run has been done by then (input, paths, target, channel, the source's header and columns, its first
 * rows), and normaliseSource writes the work set while the batches run. Anything shorter is prepared whole.
 */
async function prepareWork(
  { audit, work, config }: PrepareDeps,
  source: Source,
  workFile: string,
  options: PrepareResultOptions,
  { workflowId, overlap }: { workflowId: string; overlap: boolean },
): Promise<WorkShape> {
  const { parallelBatches, budget } = runBounds(options, config);
  if (overlap && work.writeGrowing) {
    const round = parallelBatches * options.batchSize;
    // A selection of its own: one marks the members it kept (a verify run keeps each once), so it serves one pass.
    const rows = await rowsUpTo(source, await selectionFor(audit, options), round + 1);
    if (rows > round) {
      const batchSize = effectiveBatchSize(undefined, options.batchSize, parallelBatches, budget);
      return { rows, batches: Math.ceil(rows / batchSize), batchSize, parallelBatches, normalising: true };
    }
  }
  const selection = await selectionFor(audit, options);
  const summary = await work.write(source, workFile, selection.select, { workflowId }, selection.after);
  const batchSize = effectiveBatchSize(summary.rows, options.batchSize, parallelBatches, budget);
  return { rows: summary.rows, batches: await work.buildBatches(workFile, batchSize), batchSize, parallelBatches };
}

/** Rows of the work set, read from the start until there are `limit` (or the source ends): nothing is written. */
async function rowsUpTo(source: Source, selection: Selection, limit: number): Promise<number> {
  const summary = { rows: 0, members: 0, skipped: 0, bytes: 0 };
  for await (const _chunk of normalisedEntries(readSourceChunks(source), summary, selection.select, selection.after)) {
    if (summary.rows >= limit) break;
  }
  return summary.rows;
}

/** The input checked (src/workflow-input.ts); a problem fails the run with its one line. */
function parseInput(input: unknown, workflowId: string): ReturnType<typeof parseBackfillInput> {
  try {
    return parseBackfillInput(input, workflowId);
  } catch (err) {
    if (err instanceof InvalidInputError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
    throw err;
  }
}

/** A real run needs a worker that can replay to its target. */
function refuseWithoutTarget(
  { hasTarget, workerIdentity = 'this worker' }: PrepareDeps,
  options: PrepareResultOptions,
): void {
  if (options.dryRun || hasTarget(options.target)) return;
  throw ApplicationFailure.nonRetryable(
    options.target.type === 'url'
      ? `WEBHOOK_URL is not set on worker ${workerIdentity}: set it on every worker, or start the backfill with "dryRun": true`
      : `worker ${workerIdentity} cannot replay to the channel's registered webhooks`,
    'InvalidConfig',
  );
}

/** A log (this run's, or the earlier one a selection reads) begun for another channel stops the run here. */
async function refuseOtherChannels(
  audit: AuditStore,
  auditPath: string,
  options: PrepareResultOptions,
  channelInfo: ChannelInfo,
): Promise<void> {
  const earlier = [options.fromPlan?.auditPath, options.only?.auditPath, options.verifyAfter?.auditPath].filter(
    (p): p is string => p !== undefined,
  );
  refuseOtherChannel(await audit.header(auditPath), channelInfo, auditPath);
  for (const log of earlier.map((p) => path.resolve(p)))
    refuseOtherChannel(
      await audit.header(log),
      channelInfo,
      log,
      'members of one channel cannot be selected for another',
    );
}

export interface Selection {
  select?: SelectEntry;
  after?: AppendEntries;
}

/**
 * Which rows the work set keeps: a verify run's, a plan's or `only`'s members from an earlier log; else all. For one
 * pass over the source: a verify selection remembers the members it already kept.
 */
export async function selectionFor(audit: AuditStore, options: PrepareResultOptions): Promise<Selection> {
  const verify = options.verifyAfter
    ? await selectForVerify(audit, path.resolve(options.verifyAfter.auditPath))
    : undefined;
  if (verify) return { select: verify.select, after: verify.absent };
  const selection = options.fromPlan
    ? await selectFromPlan(audit, path.resolve(options.fromPlan.auditPath))
    : options.only
      ? await selectByOutcome(audit, path.resolve(options.only.auditPath), options.only.outcomes)
      : undefined;
  return selection ? { select: selectEntries(selection) } : {};
}

/**
 * Workflow input may only name files the operator gave the workers: audit logs under BACKFILL_DATA_DIR, file
 * sources under BACKFILL_SOURCE_DIRS (when set). Checked before anything is created; one line names the key.
 */
function confinePaths(config: Config, auditPath: string | undefined, options: PrepareResultOptions): void {
  const dataDir = config.BACKFILL_DATA_DIR;
  const audits: Array<[string, string | undefined]> = [
    ['auditPath', auditPath],
    ['only.auditPath', options.only?.auditPath],
    ['fromPlan.auditPath', options.fromPlan?.auditPath],
    ['verifyAfter.auditPath', options.verifyAfter?.auditPath],
  ];
  for (const [key, p] of audits) {
    if (p !== undefined && !isUnder(p, [dataDir])) {
      throw ApplicationFailure.nonRetryable(
        `invalid workflow input: ${key} ${JSON.stringify(p)} is not under the worker's BACKFILL_DATA_DIR (${dataDir})`,
        'InvalidInput',
      );
    }
  }
}
type PrepareResultOptions = ReturnType<typeof parseBackfillInput>['options'];

/**
 * `GET /open/v5/channel` with the workers' credentials. Refused credentials, a wrong base URL and another
 * channel than `expectChannelId` stop the run (the credentials' values never appear); a network error or
 * 5xx is thrown as a plain error, so Temporal retries the activity as it would a lookup.
 */
async function checkChannel(
  client: Pick<ChannelClient, 'getChannel'>,
  expectChannelId: string | undefined,
): Promise<ChannelInfo> {
  const result = await client.getChannel();
  switch (result.kind) {
    case 'bad-credentials':
      throw ApplicationFailure.nonRetryable(
        `Channel Talk refused the worker's credentials (CHANNEL_ACCESS_KEY / CHANNEL_ACCESS_SECRET): GET /open/v5/channel answered ${result.status}`,
        'BadCredentials',
      );
    case 'not-found':
      throw ApplicationFailure.nonRetryable(
        `CHANNEL_API_URL looks wrong: GET /open/v5/channel answered ${result.status}`,
        'InvalidConfig',
      );
    case 'failed':
      if (!result.retryable)
        throw ApplicationFailure.nonRetryable(`GET /open/v5/channel failed: ${result.reason}`, 'ChannelCheckFailed');
      throw new Error(`GET /open/v5/channel failed: ${result.reason}`);
    case 'found':
      break;
  }
  const found = result.channel;
  if (expectChannelId !== undefined && found.id !== expectChannelId) {
    throw ApplicationFailure.nonRetryable(
      `wrong channel: the worker's credentials open ${describeChannel(found)}, but expectChannelId is ${expectChannelId}`,
      'WrongChannel',
    );
  }
  return found;
}

/** An audit log whose header names another channel than the one the credentials open: both named, in one line. */
function refuseOtherChannel(
  header: AuditHeader | undefined,
  found: ChannelInfo,
  auditPath: string,
  advice = 'give this run another auditPath',
): void {
  if (header === undefined || header.channel.id === found.id) return;
  throw ApplicationFailure.nonRetryable(
    `wrong channel: the audit log ${auditPath} was begun by backfill ${header.backfill} for ${describeChannel(header.channel)}, but the worker's credentials open ${describeChannel(found)}: ${advice}`,
    'WrongChannel',
  );
}

/**
 * A batch under a rate budget lasts about this long at its share of the budget (R / parallelBatches): long enough
 * that its fixed cost (workflow round trips, reading the batch, the final flush: 50-90 ms measured) is noise, short enough that
 * the progress query, which counts finished batches, moves every minute or so even at Channel Talk's 10 requests/s
 * (1000-member batches at 2.5/s each would finish once every 400 s).
 */
export const RATE_BATCH_SECONDS = 60;

/** The batches in flight a run uses, from the input's bounds and the rate budget (the lower of worker and input). */
function runBounds(
  options: Pick<PrepareResultOptions, 'parallelBatches' | 'rateLimit'>,
  config: Pick<Config, 'CHANNEL_RATE_LIMIT' | 'BACKFILL_MEMBER_CONCURRENCY'>,
): { parallelBatches: number; budget: number | undefined } {
  const rate = [config.CHANNEL_RATE_LIMIT, options.rateLimit ?? undefined].filter((r): r is number => r !== undefined);
  const budget = rate.length ? Math.min(...rate) : undefined;
  return {
    parallelBatches: effectiveParallelBatches(options.parallelBatches, budget, config.BACKFILL_MEMBER_CONCURRENCY),
    budget,
  };
}

/**
 * The batches a run keeps in flight: `parallelBatches` is an upper bound. Under a budget of R/s, one batch per
 * `memberConcurrency` lookups a second of it: a batch keeps that many members in flight, so unless a member takes
 * over a second (lookup and replay) it alone uses that much of the budget, and more batches would only add their
 * heartbeats and activities (Temporal actions, what Temporal Cloud bills: at 10/s, 4 batches heartbeating each
 * second made 400 actions per 1,000 members) and their worker CPU. Without a budget: as asked.
 */
export function effectiveParallelBatches(
  parallelBatches: number,
  ratePerSecond: number | undefined,
  memberConcurrency: number,
): number {
  if (ratePerSecond === undefined) return parallelBatches;
  return Math.max(1, Math.min(parallelBatches, Math.ceil(ratePerSecond / Math.max(1, memberConcurrency))));
}

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
export function effectiveBatchSize(
  /** Undefined: more than parallelBatches x batchSize, the rest not read yet (the batches are not evened out). */
  rows: number | undefined,
  batchSize: number,
  parallelBatches: number,
  ratePerSecond?: number,
): number {
  if (ratePerSecond === undefined)
    return rows === undefined ? batchSize : Math.max(1, Math.min(batchSize, Math.ceil(rows / parallelBatches)));
  const byRate = Math.max(1, Math.min(batchSize, Math.ceil((ratePerSecond / parallelBatches) * RATE_BATCH_SECONDS)));
  if (rows === undefined) return byRate;
  // Under a budget, a whole number of rounds of parallelBatches equal batches: a batch's share is fixed when it
  // starts, so a last round with fewer batches than slots runs on part of the budget (R=100, 6,000 rows, 6 batches
  // of 1000 for 4 slots: 73.8% of R; measured in BENCHMARKS.md).
  const batches = parallelBatches * Math.ceil(rows / (parallelBatches * byRate));
  return Math.max(1, Math.min(byRate, Math.ceil(rows / Math.max(1, batches))));
}
