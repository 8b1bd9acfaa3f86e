import type { LoggedEntry } from '../audit/audit-entry';
import { COMPARED_FIELDS, type ComparedField } from '../domain/types';
import { VERDICTS, type Verdict } from '../domain/verdicts';
import { csvCell } from './export';

// The report of a verify run (entries carrying a `verdict`): did the repair stick? One screen: the count per
// verdict, "still differs" per field, and the lines to look at (every verdict but "repaired"); CSV lists those lines.

export interface VerifySummary {
  members: number;
  verdicts: Record<Verdict, number>;
  stillDiffers: Record<ComparedField, number>;
  /** The members that are not repaired, in log order. */
  toLookAt: LoggedEntry[];
}

/** Whether an audit entry is a verify run's. */
export const isVerifyEntry = (entry: LoggedEntry): boolean => entry.verdict !== undefined;

export class VerifySummaryBuilder {
  private readonly summary: VerifySummary = {
    members: 0,
    verdicts: Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>,
    stillDiffers: Object.fromEntries(COMPARED_FIELDS.map((f) => [f, 0])) as Record<ComparedField, number>,
    toLookAt: [],
  };

  add(entry: LoggedEntry): void {
    if (!entry.verdict) return;
    const s = this.summary;
    s.members++;
    s.verdicts[entry.verdict]++;
    if (entry.verdict === 'still differs') for (const field of entry.fields ?? []) s.stillDiffers[field]++;
    if (entry.verdict !== 'repaired') s.toLookAt.push(entry);
  }

  result(): VerifySummary {
    return this.summary;
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
