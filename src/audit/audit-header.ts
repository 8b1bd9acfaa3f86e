import { z } from 'zod';
import type { ChannelInfo } from '../channel/channel-info';
import type { BackfillOptions } from '../../workflows/definitions';

/**
 * The audit log's header: which backfill wrote the log and which Channel Talk channel its workers' credentials
 * opened, written once when the run is prepared (dry runs too), before any record. In a JSONL file it is the
 * first line, `{"header":{...}}`; in PostgreSQL one row of the header table under the log's key. Names, ids,
 * paths and options only: never an email, a phone number, a key or a token (a PostgreSQL source's query text is
 * left out: it could quote anything).
 */
export const auditHeaderSchema = z.object({
  /** The header's own format; readers accept any, and ignore keys they do not know. */
  format: z.number().int().positive(),
  /** When the header was written (ISO 8601, UTC). */
  ts: z.string().min(1),
  /** The workflow id. */
  backfill: z.string().min(1),
  /** The id of the first run of its continue-as-new chain (names the run's directory). */
  firstRunId: z.string().optional(),
  runLabel: z.string().min(1),
  /** `GET /open/v5/channel` with the workers' credentials. */
  channel: z.object({ id: z.string().min(1), name: z.string().nullable() }),
  dryRun: z.boolean(),
  source: z.object({ type: z.string(), path: z.string().optional(), table: z.string().optional() }).optional(),
  target: z.string().optional(),
  onlyChangedSince: z.string().optional(),
  /** A retry of an earlier run's members: that run's log and the outcomes selected. */
  only: z.object({ auditPath: z.string(), outcomes: z.array(z.string()) }).optional(),
  /** A run of a dry run's plan: the plan's log. */
  fromPlan: z.object({ auditPath: z.string() }).optional(),
  /**
   * A verify run: the log of the repair it re-checks, and the clock skew its verdicts allowed ("changed since"
   * depends on it; absent in headers written before it was recorded).
   */
  verifyAfter: z.object({ auditPath: z.string(), clockSkewMs: z.number().optional() }).optional(),
});

export type AuditHeader = z.infer<typeof auditHeaderSchema>;

export const AUDIT_HEADER_FORMAT = 1;

/** The header a run's preparation writes: from the checked input and channel, nothing read from the source. */
export function auditHeaderFor(o: {
  workflowId: string;
  firstRunId: string;
  channel: ChannelInfo;
  options: BackfillOptions;
  now?: Date;
}): AuditHeader {
  const { options } = o;
  const source = options.source;
  return {
    format: AUDIT_HEADER_FORMAT,
    ts: (o.now ?? new Date()).toISOString(),
    backfill: o.workflowId,
    firstRunId: o.firstRunId,
    runLabel: options.runLabel,
    channel: { id: o.channel.id, name: o.channel.name },
    dryRun: options.dryRun,
    // A file's path, a table's name; never a query's text or a connection string.
    source:
      'path' in source
        ? { type: source.type, path: source.path }
        : { type: source.type, ...(source.table !== undefined ? { table: source.table } : {}) },
    target: options.target.type,
    ...(options.onlyChangedSince ? { onlyChangedSince: options.onlyChangedSince } : {}),
    ...(options.only ? { only: { auditPath: options.only.auditPath, outcomes: [...options.only.outcomes] } } : {}),
    ...(options.fromPlan ? { fromPlan: { auditPath: options.fromPlan.auditPath } } : {}),
    ...(options.verifyAfter
      ? { verifyAfter: { auditPath: options.verifyAfter.auditPath, clockSkewMs: options.verifyAfter.clockSkewMs } }
      : {}),
  };
}

/** A stored header as the schema reads it (fixed key order, unknown keys dropped), or undefined. */
export function asAuditHeader(value: unknown): AuditHeader | undefined {
  const parsed = auditHeaderSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/** The header's JSONL line (without its line feed). */
export const auditHeaderLine = (header: AuditHeader): string => JSON.stringify({ header });

/** A JSONL line as a header (`{"header":{...}}`, nothing else beside it), or undefined for any other line. */
export function parseAuditHeaderLine(text: string): AuditHeader | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1 || keys[0] !== 'header') return undefined;
  return asAuditHeader((value as { header: unknown }).header);
}
