import type { Decision, PlannedDecision } from './types';

/** A decision in a few words for the audit log (field names only): `upsert [email]`, `delete (not-found)`, ... */
export const describeDecision = (d: { action: string; fields?: readonly string[]; reason?: string }): string =>
  d.action === 'upsert'
    ? `upsert [${(d.fields ?? []).join(', ')}]`
    : d.action === 'delete'
      ? `delete (${d.reason ?? '?'})`
      : d.action;

/**
 * Whether a member's state changed since the dry run that planned it: undefined when today's decision
 * is the planned one, else a reason for the audit log (field names only, never values).
 */
export function planDrift(planned: PlannedDecision, now: Decision): string | undefined {
  if (now.action === 'failed') return undefined; // a lookup that failed says nothing about the member
  const same =
    now.action === planned.action &&
    (now.action !== 'upsert' || sameFields(now.fields, planned.fields ?? [])) &&
    (now.action !== 'delete' || planned.reason === undefined || now.reason === planned.reason);
  if (same) return undefined;
  return `changed since the plan: planned ${describeDecision(planned)}, now ${describeDecision(now)}`;
}

function sameFields(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join();
}
