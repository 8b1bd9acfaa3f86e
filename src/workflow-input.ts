import { z } from 'zod';
import type { BackfillOptions } from '../workflows/definitions';
import { sourceInputSchema } from './source/source-kinds';
import { DEFAULT_GUARD } from './domain/delete-guard';
import { OUTCOMES } from './domain/types';

// The workflow's JSON argument is checked once, by the first activity, so that a typo stops the run
// before any lookup or replay. Unknown keys are rejected: a misspelt "dryrun" must not mean a real run.
export const backfillInputSchema = z
  .object({
    source: sourceInputSchema,
    // Default false; a verify run is a dry run whatever it says (false is refused below).
    dryRun: z.boolean().optional(),
    // Upper bounds; prepare derives the size a run uses from the source and the rate budget (effectiveBatchSize).
    // Defaults measured in BENCHMARKS.md: 1000 x 4 is the fastest without a budget on 2 cores.
    batchSize: z.number().int().min(1).max(1000).default(1000),
    runLabel: z.string().min(1).max(200).optional(),
    parallelBatches: z.number().int().min(1).max(32).default(4),
    rateLimit: z.number().positive().optional(),
    maxHistoryEvents: z.number().int().min(200).max(9000).default(5000),
    replayMaxAttempts: z.number().int().min(1).max(1000).default(10),
    batchHeartbeatSeconds: z.number().int().min(2).max(600).default(20),
    // A batch's longest backoff, a replay's attempt timeout and longest backoff (defaults in the workflow: 30 s,
    // 120 s, 30 s). Optional, so a run's options (and its history) are what they were before these keys existed
    // unless they are given.
    batchMaxBackoffSeconds: z.number().int().min(1).max(3600).optional(),
    replayAttemptTimeoutSeconds: z.number().int().min(10).max(3600).optional(),
    replayMaxBackoffSeconds: z.number().int().min(1).max(3600).optional(),
    // The endpoint down for every member this long: the run pauses itself (default in the workflow: 24 h).
    receiverOutagePauseSeconds: z.number().int().min(1).max(2_592_000).optional(),
    auditPath: z.string().min(1).optional(),
    // Where replays go: the worker's WEBHOOK_URL, or every webhook registered on the channel.
    target: z
      .discriminatedUnion(
        'type',
        [z.object({ type: z.literal('url') }).strict(), z.object({ type: z.literal('channel-webhooks') }).strict()],
        {
          error: 'must be {"type":"url"} or {"type":"channel-webhooks"}',
        },
      )
      .default({ type: 'url' }),
    // Part of an earlier run's members: those it recorded with these outcomes (e.g. ["failed"]).
    only: z
      .object({
        auditPath: z.string().min(1, 'must not be empty'),
        outcomes: z.array(z.enum(OUTCOMES)).min(1, 'must name at least one outcome'),
      })
      .strict()
      .optional(),
    // The members a dry run planned to replay, each re-checked before it is replayed.
    fromPlan: z
      .object({ auditPath: z.string().min(1, 'must not be empty') })
      .strict()
      .optional(),
    // Check an earlier run's delivered replays against a fresh export (a dry run: it never replays).
    verifyAfter: z
      .object({
        auditPath: z.string().min(1, 'must not be empty'),
        // Channel Talk's clocks against the worker's: a change this much before the delivery still counts as after it.
        clockSkewMs: z.number().int().min(0).max(86_400_000).default(0),
      })
      .strict()
      .optional(),
    // The channel the credentials must open (GET /open/v5/channel); another one stops the run before any lookup.
    expectChannelId: z.string().min(1, 'must not be empty').optional(),
    // The delete guard (workflow): pause when deletes pass this share of the decisions, once this many are made.
    maxDeleteShare: z.number().gt(0, 'must be > 0').lte(1, 'must be <= 1').default(DEFAULT_GUARD.maxDeleteShare),
    deleteGuardMinDecisions: z.number().int().min(1).default(DEFAULT_GUARD.minDecisions),
    // Skip upserts whose every differing field last changed on Channel Talk's side before this time.
    onlyChangedSince: z.iso
      .datetime({ offset: true, error: 'must be an ISO time with a zone, e.g. 2024-11-01T00:40:00+09:00' })
      .optional(),
  })
  .strict()
  .refine((input) => !(input.only && input.fromPlan), {
    message: 'give either "only" or "fromPlan", not both',
    path: ['fromPlan'],
  })
  .refine((input) => !(input.verifyAfter && input.dryRun === false), {
    message: 'a verify run never replays: leave "dryRun" out or set it to true',
    path: ['dryRun'],
  })
  .refine((input) => !(input.verifyAfter && (input.only || input.fromPlan || input.onlyChangedSince)), {
    message: 'a verify run selects its own members: give it no "only", "fromPlan" or "onlyChangedSince"',
    path: ['verifyAfter'],
  });

export type ParsedBackfillInput = z.infer<typeof backfillInputSchema>;

export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
}

/** Validates the raw workflow argument; the error names every bad field in one line. */
export function parseBackfillInput(
  raw: unknown,
  workflowId: string,
): { options: BackfillOptions; auditPath?: string; expectChannelId?: string } {
  const result = backfillInputSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'input'}: ${i.message}`);
    throw new InvalidInputError(`invalid workflow input: ${problems.join('; ')}`);
  }
  const {
    auditPath,
    runLabel,
    rateLimit,
    only,
    fromPlan,
    expectChannelId,
    onlyChangedSince,
    verifyAfter,
    dryRun,
    ...rest
  } = result.data;
  return {
    options: {
      ...rest,
      dryRun: verifyAfter !== undefined || dryRun === true,
      runLabel: runLabel ?? workflowId,
      rateLimit: rateLimit ?? null,
      only: only ?? null,
      fromPlan: fromPlan ?? null,
      onlyChangedSince: onlyChangedSince ?? null,
      // Only when given, so a run's options (and its history) are what they were before verify runs existed.
      ...(verifyAfter ? { verifyAfter } : {}),
    },
    ...(auditPath !== undefined ? { auditPath } : {}),
    ...(expectChannelId !== undefined ? { expectChannelId } : {}),
  };
}
