import { z } from 'zod';
import { AuditLogError, AuditLogNotFoundError, type AuditStore } from '../audit/audit-store';
import { COMPARED_FIELDS, OUTCOMES, type OutcomeKind, type PlannedDecision } from '../domain/types';
import { SourceConfigError } from './errors';
import { MemberSelection } from './member-selection';
import { VERDICTS } from '../domain/verdicts';

// A run over part of an earlier run's members: its failed ones (retry), or the members a dry run
// planned to replay. The earlier run's audit log says who they are; the source still says what the
// customer stored, so rows are read from the source as usual and only filtered here.

const auditLineSchema = z.object({
  line: z.number().int(),
  memberId: z.string().optional(),
  outcome: z.enum(OUTCOMES),
  fields: z.array(z.enum(COMPARED_FIELDS)).optional(),
  reason: z.string().optional(),
  dryRun: z.boolean(),
  // verifyAfter: which replays were delivered, and when.
  delivered: z.boolean().optional(),
  ts: z.string().optional(),
  // A verify run's log as a plan (fromPlan): its reasons explain verdicts, not deletes.
  verdict: z.enum(VERDICTS).optional(),
});

/** Flat in memory whatever its size (see MemberSelection): no string or object per selected member. */
export type Selection = MemberSelection;

/**
 * The records of the earlier run's log, from the audit store the workers are configured with (a JSONL
 * file, or the PostgreSQL table under that key). The store keeps the first record of each line and
 * skips torn ones; records without what a selection needs are skipped here.
 */
export async function* auditLines(
  audit: AuditStore,
  auditPath: string,
): AsyncGenerator<z.infer<typeof auditLineSchema>> {
  try {
    for await (const record of audit.entries(auditPath)) {
      const entry = auditLineSchema.safeParse(record);
      if (entry.success) yield entry.data;
    }
  } catch (err) {
    if (err instanceof AuditLogNotFoundError)
      throw new SourceConfigError(auditPath, 'the audit log to select members from does not exist');
    // Anything else (a database that is down, an I/O error) may pass: the activity retries it.
    if (err instanceof AuditLogError) throw new Error(err.message, { cause: err });
    throw err;
  }
}

/** memberIds whose recorded outcome is one of `outcomes` (e.g. the failed ones, to retry them). */
export async function selectByOutcome(
  audit: AuditStore,
  auditPath: string,
  outcomes: readonly OutcomeKind[],
): Promise<Selection> {
  const wanted = new Set(outcomes);
  const selection = new MemberSelection();
  for await (const entry of auditLines(audit, auditPath)) {
    if (entry.memberId !== undefined && wanted.has(entry.outcome)) selection.add(entry.memberId, null);
  }
  return selection;
}

/** The members a dry run planned to replay, with what it planned for each. */
export async function selectFromPlan(audit: AuditStore, auditPath: string): Promise<Selection> {
  const selection = new MemberSelection();
  for await (const entry of auditLines(audit, auditPath)) {
    if (!entry.dryRun)
      throw new SourceConfigError(
        auditPath,
        `line ${entry.line} of the plan was not recorded by a dry run: a plan is the audit log of a dry run`,
      );
    if (entry.memberId === undefined) continue;
    if (entry.outcome === 'upsert' || entry.outcome === 'delete') {
      const planned: PlannedDecision = {
        action: entry.outcome,
        ...(entry.fields ? { fields: entry.fields } : {}),
        // A dry run's delete reason (not-found, unified) is part of its plan; a verify run's reason explains its
        // verdict ("the export still holds ..."), and no lookup today would ever match it.
        ...(entry.reason && entry.verdict === undefined ? { reason: entry.reason } : {}),
      };
      selection.add(entry.memberId, planned);
    }
  }
  return selection;
}

/** The prepare step's filter: members outside the selection are not part of this run at all. */
export function selectEntries(selection: Selection) {
  return <E extends { member: { memberId: string } } | { skip: string }>(entry: E): E | undefined => {
    if (!('member' in entry)) return undefined; // bad rows were recorded by the earlier run
    const planned = selection.get(entry.member.memberId);
    if (planned === undefined) return undefined;
    return planned ? { ...entry, planned } : entry;
  };
}
