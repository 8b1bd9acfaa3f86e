import { z } from 'zod';
import type { BackfillOptions, SourceSpec } from '../workflows/definitions';
import { postgresSourceSpecSchema } from './source/postgres-source';

const fileSourceSchema = z
  .object({
    type: z.enum(['csv', 'jsonl'], { error: 'must be "csv" or "jsonl" (a file, with "path"), or "postgres" (with "table" or "query")' }),
    path: z.string({ error: 'is required' }).min(1, 'must not be empty'),
  })
  .strict();

// A file source reports a bad type and a missing path together; "postgres" switches to its own checks.
const sourceSchema = z.unknown().transform((raw, ctx): SourceSpec => {
  const isPostgres = typeof raw === 'object' && raw !== null && (raw as { type?: unknown }).type === 'postgres';
  const result = isPostgres ? postgresSourceSpecSchema.safeParse(raw) : fileSourceSchema.safeParse(raw);
  if (result.success) return result.data;
  for (const issue of result.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  return z.NEVER;
});

// The workflow's JSON argument is checked once, by the first activity, so that a typo stops the run
// before any lookup or replay. Unknown keys are rejected: a misspelt "dryrun" must not mean a real run.
export const backfillInputSchema = z
  .object({
    source: sourceSchema,
    dryRun: z.boolean().default(false),
    // Upper bounds; prepare derives the size a run uses from the source and the rate budget (effectiveBatchSize).
    // Defaults measured in BENCHMARKS.md: 1000 x 4 is the fastest without a budget on 2 cores.
    batchSize: z.number().int().min(1).max(1000).default(1000),
    runLabel: z.string().min(1).max(200).optional(),
    parallelBatches: z.number().int().min(1).max(32).default(4),
    rateLimit: z.number().positive().optional(),
    maxHistoryEvents: z.number().int().min(200).max(9000).default(5000),
    replayMaxAttempts: z.number().int().min(1).max(1000).default(10),
    batchHeartbeatSeconds: z.number().int().min(2).max(600).default(20),
    auditPath: z.string().min(1).optional(),
    // Where replays go: the worker's WEBHOOK_URL, or every webhook registered on the channel.
    target: z
      .discriminatedUnion('type', [z.object({ type: z.literal('url') }).strict(), z.object({ type: z.literal('channel-webhooks') }).strict()], {
        error: 'must be {"type":"url"} or {"type":"channel-webhooks"}',
      })
      .default({ type: 'url' }),
    // Part of an earlier run's members: those it recorded with these outcomes (e.g. ["failed"]).
    only: z
      .object({
        auditPath: z.string().min(1, 'must not be empty'),
        outcomes: z.array(z.enum(['upsert', 'delete', 'unchanged', 'failed', 'skipped'])).min(1, 'must name at least one outcome'),
      })
      .strict()
      .optional(),
    // The members a dry run planned to replay, each re-checked before it is replayed.
    fromPlan: z.object({ auditPath: z.string().min(1, 'must not be empty') }).strict().optional(),
  })
  .strict()
  .refine((input) => !(input.only && input.fromPlan), { message: 'give either "only" or "fromPlan", not both', path: ['fromPlan'] });

export type ParsedBackfillInput = z.infer<typeof backfillInputSchema>;

export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
}

/** Validates the raw workflow argument; the error names every bad field in one line. */
export function parseBackfillInput(raw: unknown, workflowId: string): { options: BackfillOptions; auditPath?: string } {
  const result = backfillInputSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'input'}: ${i.message}`);
    throw new InvalidInputError(`invalid workflow input: ${problems.join('; ')}`);
  }
  const { auditPath, runLabel, rateLimit, only, fromPlan, ...rest } = result.data;
  return {
    options: { ...rest, runLabel: runLabel ?? workflowId, rateLimit: rateLimit ?? null, only: only ?? null, fromPlan: fromPlan ?? null },
    auditPath,
  };
}
