import type { AuditStore } from '../audit/audit-store';
import type { PlannedDecision, RepairRecord, SourceEntry, VerifyEntry } from '../domain/types';
import { auditLines } from './audit-selection';
import type { UnreadEnd } from './work-file';
import { SourceConfigError } from './errors';
import { MemberSelection } from './member-selection';
import { namesNoMember } from './row-schema';

// A verify run (`verifyAfter`) checks the members an earlier run replayed: its delivered upserts and deletes. They
// are selected by memberId, not by line: the fresh export numbers its rows anew, and a deleted member is not in it
// at all. Each selected member keeps the earlier run's line (so both logs join on it); members the export no longer
// holds are added after it, from a second pass over the earlier log, so nothing per member is held as a string.

export interface VerifySelection {
  /** Keeps the export's first row of each selected member, as a verify entry; drops everything else. */
  select: (entry: SourceEntry) => VerifyEntry | undefined;
  /**
   * After the export has been read: the selected members it did not hold, each as an `absent` entry; or, when its
   * end (`unread`) or a row of it could not be read, as a bad row naming that end or those rows: they may hold them.
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

/** How many of the export's unreadable rows a bad row's reason names; the rest are counted. */
export const NAMED_ROWS = 3;

/** One of the export's rows that could not be read: its line and its problem (a bad row's reason). */
export interface UnreadRow {
  line: number;
  skip: string;
}

/**
 * The export's records that could not be read as rows (not valid JSON, a CSV row of the wrong width, invalid UTF-8,
 * too long): whose they are is unknown. A row read without a memberId (empty, missing) is not among them: it names
 * no member. The first NAMED_ROWS by line and problem, and how many in all; nothing per member is held.
 */
export interface UnreadRows {
  named: UnreadRow[];
  count: number;
  /** The line of the last one. */
  last?: number;
}

/** Remembers one more unreadable row. */
export function addUnreadRow(rows: UnreadRows, row: UnreadRow): void {
  rows.count += 1;
  rows.last = row.line;
  if (rows.named.length < NAMED_ROWS) rows.named.push(row);
}

/** The unreadable rows but the export's unreadable end (the last one read, which its own reason names). */
function beforeTheEnd(rows: UnreadRows, unread: UnreadEnd): UnreadRows {
  if (rows.last !== unread.line) return rows;
  return { named: rows.named.filter((r) => r.line !== unread.line), count: rows.count - 1 };
}

/**
 * A member the export's readable rows do not hold while some rows could not be read: not absent but unknown, a bad
 * row naming those rows (their problems never quote a value).
 */
export function unreadRowsReason(rows: UnreadRows): string {
  const named = rows.named.map((r) => `${r.line} (${r.skip})`).join(', ');
  const more = rows.count - rows.named.length;
  if (rows.count === 1) return `the export's line ${named} cannot be read and may be its row`;
  return `the export's lines ${named}${more > 0 ? ` and ${more} more` : ''} cannot be read and one may be its row`;
}

/** Why a member the export's readable rows do not hold is not called absent, if it is not: undefined if it is. */
export function notAbsentReason(all: UnreadRows, unread?: UnreadEnd): string | undefined {
  const rows = unread ? beforeTheEnd(all, unread) : all;
  const reasons = [unread && unreadReason(unread), rows.count > 0 ? unreadRowsReason(rows) : undefined];
  const found = reasons.filter((r) => r !== undefined);
  return found.length ? found.join('; ') : undefined;
}

/** The verify selection over the earlier run's audit log (refused if a dry run wrote it: it replayed nothing). */
export async function selectForVerify(audit: AuditStore, auditPath: string): Promise<VerifySelection> {
  const selection = new MemberSelection();
  for await (const r of deliveredReplays(audit, auditPath)) selection.add(r.memberId, r.planned, r);
  const unreadRows: UnreadRows = { named: [], count: 0 };

  const select = (entry: SourceEntry): VerifyEntry | undefined => {
    const memberId = 'member' in entry ? entry.member.memberId : entry.memberId;
    if (memberId === undefined) {
      // A record that could not be read may be any member's: remembered for absent(), so none is called absent. A
      // row read without a memberId names no member (customers' tables hold such rows: the repair skipped them).
      if ('skip' in entry && !namesNoMember(entry.skip))
        addUnreadRow(unreadRows, { line: entry.line, skip: entry.skip });
      return undefined;
    }
    const found = repairOf(selection, memberId);
    // A later row of the same member (a duplicate) is left out: the first one is what the customer holds.
    if (!found || !selection.mark(memberId)) return undefined;
    const { line, repair } = found;
    if ('member' in entry) return { line, member: entry.member, repair, exportLine: entry.line };
    return { line, memberId, skip: entry.skip, repair, exportLine: entry.line };
  };

  async function* absent(unread?: UnreadEnd): AsyncGenerator<VerifyEntry> {
    const unknown = notAbsentReason(unreadRows, unread);
    for await (const r of deliveredReplays(audit, auditPath)) {
      const found = repairOf(selection, r.memberId);
      if (!found || !selection.mark(r.memberId)) continue;
      if (unknown) {
        // Not absent but unknown: calling a delete "repaired" because its row was not read would be a false proof.
        yield { line: found.line, memberId: r.memberId, repair: found.repair, skip: unknown };
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
