import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import readline from 'node:readline';
import { z } from 'zod';
import { COMPARED_FIELDS, type OutcomeKind, type PlannedDecision } from '../types';
import { SourceConfigError } from './errors';

// A run over part of an earlier run's members: its failed ones (retry), or the members a dry run
// planned to replay. The earlier run's audit log says who they are; the source still says what the
// customer stored, so rows are read from the source as usual and only filtered here.

const auditLineSchema = z.object({
  line: z.number().int(),
  memberId: z.string().optional(),
  outcome: z.enum(['upsert', 'delete', 'unchanged', 'failed', 'skipped']),
  fields: z.array(z.enum(COMPARED_FIELDS)).optional(),
  reason: z.string().optional(),
  dryRun: z.boolean(),
});

export type Selection = Map<string, PlannedDecision | null>;

async function* auditLines(auditPath: string): AsyncGenerator<z.infer<typeof auditLineSchema>> {
  const info = await stat(auditPath).catch(() => undefined);
  if (!info?.isFile()) throw new SourceConfigError(auditPath, 'the audit log to select members from does not exist');
  const seen = new Set<number>();
  const lines = readline.createInterface({ input: createReadStream(auditPath, 'utf8'), crlfDelay: Infinity });
  for await (const text of lines) {
    if (text.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      continue; // a torn last line from a crash: that member was not recorded
    }
    const entry = auditLineSchema.safeParse(parsed);
    if (!entry.success || seen.has(entry.data.line)) continue; // first record of a line wins, as in the store
    seen.add(entry.data.line);
    yield entry.data;
  }
}

/** memberIds whose recorded outcome is one of `outcomes` (e.g. the failed ones, to retry them). */
export async function selectByOutcome(auditPath: string, outcomes: readonly OutcomeKind[]): Promise<Selection> {
  const wanted = new Set(outcomes);
  const selection: Selection = new Map();
  for await (const entry of auditLines(auditPath)) {
    if (entry.memberId !== undefined && wanted.has(entry.outcome)) selection.set(entry.memberId, null);
  }
  return selection;
}

/** The members a dry run planned to replay, with what it planned for each. */
export async function selectFromPlan(auditPath: string): Promise<Selection> {
  const selection: Selection = new Map();
  for await (const entry of auditLines(auditPath)) {
    if (!entry.dryRun) throw new SourceConfigError(auditPath, `line ${entry.line} of the plan was not recorded by a dry run: a plan is the audit log of a dry run`);
    if (entry.memberId === undefined) continue;
    if (entry.outcome === 'upsert' || entry.outcome === 'delete') {
      selection.set(entry.memberId, { action: entry.outcome, ...(entry.fields ? { fields: entry.fields } : {}), ...(entry.reason ? { reason: entry.reason } : {}) });
    }
  }
  return selection;
}

/** The prepare step's filter: members outside the selection are not part of this run at all. */
export function selectEntries(selection: Selection) {
  return <E extends { member: { memberId: string } } | { skip: string }>(entry: E): E | undefined => {
    if (!('member' in entry)) return undefined; // bad rows were recorded by the earlier run
    if (!selection.has(entry.member.memberId)) return undefined;
    const planned = selection.get(entry.member.memberId);
    return planned ? { ...entry, planned } : entry;
  };
}
