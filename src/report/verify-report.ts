import type { LoggedEntry } from '../audit/audit-entry';
import type { FieldCounts } from '../domain/counters';
import { COMPARED_FIELDS } from '../domain/types';
import { countVerdict, VERDICTS, zeroVerifyCounters, type VerdictCounts } from '../domain/verdicts';
import { csvCell } from './export';

// The report of a verify run (entries carrying a `verdict`): did the repair stick? One screen: the count per
// verdict, "still differs" per field, and the lines to look at (every verdict but "repaired"); CSV lists those lines.

export interface VerifySummary {
  members: number;
  verdicts: VerdictCounts;
  stillDiffers: FieldCounts;
  /** The members that are not repaired, in log order. */
  toLookAt: LoggedEntry[];
}

/** Whether an audit entry is a verify run's. */
export const isVerifyEntry = (entry: LoggedEntry): boolean => entry.verdict !== undefined;

export class VerifySummaryBuilder {
  /** Counted as the verify run counted them (src/domain/verdicts.ts). */
  private readonly counts = zeroVerifyCounters();
  private readonly toLookAt: LoggedEntry[] = [];

  add(entry: LoggedEntry): void {
    if (!entry.verdict) return;
    countVerdict(this.counts, entry.verdict, entry.fields);
    if (entry.verdict !== 'repaired') this.toLookAt.push(entry);
  }

  result(): VerifySummary {
    const { processed, verdicts, stillDiffers } = this.counts;
    return { members: processed, verdicts, stillDiffers, toLookAt: this.toLookAt };
  }
}

/** How many lines to look at the summary prints; `--format csv` lists them all. */
export const LINES_SHOWN = 40;

const describeLine = (e: LoggedEntry) =>
  [
    `line ${e.line}`,
    e.memberId ?? '?',
    e.verdict,
    e.fields?.length ? `[${e.fields.join(', ')}]` : '',
    e.reason ?? '',
    e.exportLine !== undefined ? `(export line ${e.exportLine})` : '(not in the export)',
  ]
    .filter(Boolean)
    .join('  ');

export function renderVerifySummary(s: VerifySummary, o: { source: string; inProgress: boolean }): string {
  const out: string[] = [`verify report of ${o.source}${o.inProgress ? ' (run still going)' : ''}`, ''];
  out.push(`members checked  ${s.members}`);
  for (const verdict of VERDICTS) out.push(`  ${verdict.padEnd(15)}${s.verdicts[verdict]}`);
  if (s.verdicts['still differs'] > 0) {
    out.push('', 'still differs, per field');
    for (const field of COMPARED_FIELDS)
      if (s.stillDiffers[field]) out.push(`  ${field.padEnd(20)}${s.stillDiffers[field]}`);
  }
  out.push('');
  if (s.toLookAt.length === 0) out.push('every member repaired');
  else {
    out.push(`lines to look at (${s.toLookAt.length})`);
    for (const e of s.toLookAt.slice(0, LINES_SHOWN)) out.push(`  ${describeLine(e)}`);
    if (s.toLookAt.length > LINES_SHOWN)
      out.push(`  ... and ${s.toLookAt.length - LINES_SHOWN} more: --format csv lists them all`);
  }
  return `${out.join('\n')}\n`;
}

export const VERIFY_CSV_COLUMNS = [
  'line',
  'memberId',
  'verdict',
  'fields',
  'reason',
  'exportLine',
  'repairedEvent',
  'repairedAt',
  'attempts',
] as const;

/** The lines to look at as CSV (`fields` `;`-separated), header first. */
export function verifyCsv(s: VerifySummary): string {
  const rows = s.toLookAt.map((e) => {
    const record = e as unknown as Record<string, unknown>;
    return VERIFY_CSV_COLUMNS.map((c) => csvCell(record[c])).join(',');
  });
  return [VERIFY_CSV_COLUMNS.join(','), ...rows].join('\n') + '\n';
}
