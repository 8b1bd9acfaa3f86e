import type { AuditStore } from '../audit/audit-store';
import type { PlannedDecision, RepairRecord, SourceEntry, VerifyEntry } from '../domain/types';
import { auditLines } from './audit-selection';
import type { UnreadEnd } from './work-file';
import { SourceConfigError } from './errors';
import { MemberSelection } from './member-selection';

// A verify run (`verifyAfter`) checks the members an earlier run replayed: its delivered upserts and deletes. They
// are selected by memberId, not by line: the fresh export numbers its rows anew, and a deleted member is not in it
// at all. Each selected member keeps the earlier run's line (so both logs join on it); members the export no longer
// holds are added after it, from a second pass over the earlier log, so nothing per member is held as a string.

export interface VerifySelection {
  /** Keeps the export's first row of each selected member, as a verify entry; drops everything else. */
  select: (entry: SourceEntry) => VerifyEntry | undefined;
  /**
   * After the export has been read: the selected members it did not hold, each as an `absent` entry; or, when its
   * end could not be read (`unread`), as a bad row naming that end: it may hold them.
   */
  absent: (unread?: UnreadEnd) => AsyncIterable<VerifyEntry>;
}

/** The earlier run's delivered replays, one per memberId: what it did and when (epoch ms), from its audit log. */
async function* deliveredReplays(
  audit: AuditStore,
  auditPath: string,
): AsyncGenerator<{ memberId: string; line: number; planned: PlannedDecision; time: number }> {
  for await (const entry of auditLines(audit, auditPath)) {
    if (entry.dryRun)
      throw new SourceConfigError(
        auditPath,
        `line ${entry.line} was recorded by a dry run: verifyAfter takes the audit log of a run that replayed`,
      );
    if (entry.memberId === undefined || entry.delivered !== true) continue;
    if (entry.outcome !== 'upsert' && entry.outcome !== 'delete') continue;
    const time = entry.ts === undefined ? NaN : Date.parse(entry.ts);
    if (!Number.isFinite(time)) continue; // not an entry this job wrote
    const planned: PlannedDecision = {
      action: entry.outcome,
      ...(entry.fields ? { fields: entry.fields } : {}),
      ...(entry.reason ? { reason: entry.reason } : {}),
    };
    yield { memberId: entry.memberId, line: entry.line, planned, time };
  }
}

function repairOf(selection: MemberSelection, memberId: string): { line: number; repair: RepairRecord } | undefined {
  const planned = selection.get(memberId);
  const at = selection.at(memberId);
  if (!planned || !at) return undefined;
  const repair: RepairRecord = { event: planned.action, deliveredAt: at.time };
  if (planned.fields) repair.fields = planned.fields;
  if (planned.reason !== undefined) repair.reason = planned.reason;
  return { line: at.line, repair };
}

/** A member not found before the export's unreadable end: its bad row, by the line where that end starts. */
export const unreadReason = (unread: UnreadEnd): string =>
  `the export's end is unreadable from line ${unread.line} on and may hold it (${unread.skip})`;

/** The verify selection over the earlier run's audit log (refused if a dry run wrote it: it replayed nothing). */
export async function selectForVerify(audit: AuditStore, auditPath: string): Promise<VerifySelection> {
  const selection = new MemberSelection();
  for await (const r of deliveredReplays(audit, auditPath)) selection.add(r.memberId, r.planned, r);

  const select = (entry: SourceEntry): VerifyEntry | undefined => {
    const memberId = 'member' in entry ? entry.member.memberId : entry.memberId;
    if (memberId === undefined) return undefined;
    const found = repairOf(selection, memberId);
    // A later row of the same member (a duplicate) is left out: the first one is what the customer holds.
    if (!found || !selection.mark(memberId)) return undefined;
    const { line, repair } = found;
    if ('member' in entry) return { line, member: entry.member, repair, exportLine: entry.line };
    return { line, memberId, skip: entry.skip, repair, exportLine: entry.line };
  };

  async function* absent(unread?: UnreadEnd): AsyncGenerator<VerifyEntry> {
    for await (const r of deliveredReplays(audit, auditPath)) {
      const found = repairOf(selection, r.memberId);
      if (!found || !selection.mark(r.memberId)) continue;
      if (unread) {
        // Not absent but unknown: calling a delete "repaired" because its row was not read would be a false proof.
        yield { line: found.line, memberId: r.memberId, repair: found.repair, skip: unreadReason(unread) };
        continue;
      }
      const member = {
        memberId: r.memberId,
        mobileNumber: null,
        email: null,
        unsubscribeEmail: null,
        unsubscribeTexting: null,
      };
      yield { line: found.line, member, repair: found.repair, absent: true };
    }
  }

  return { select, absent };
}
