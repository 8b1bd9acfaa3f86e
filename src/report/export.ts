import type { AuditEntry } from '../audit/audit-entry';
import type { ScopeDelivery, WebhookRoute } from '../domain/types';

// The audit log as CSV (one row per source row, for spreadsheets) or as one JSON array, written in
// chunks as entries stream in.

export type ExportFormat = 'csv' | 'json';

export const CSV_COLUMNS = [
  'line',
  'memberId',
  'outcome',
  'fields',
  'reason',
  'stage',
  'event',
  'delivered',
  'status',
  'webhookId',
  'attempts',
  'deferred',
  'updatedAt',
  'unsubscribeEmailUpdatedAt',
  'unsubscribeTextingUpdatedAt',
  'dryRun',
  'ts',
  'backfill',
  'runLabel',
  // Added after the columns above, which keep their places for whoever reads them by position.
  'heldByDeleteGuard',
  'deletesConfirmedAt',
  'recheckedAt',
  'changedDuringRepair',
  'recheck',
  'webhooks',
  'deliveries',
] as const;

const TIME_COLUMNS = new Set<string>(['updatedAt', 'unsubscribeEmailUpdatedAt', 'unsubscribeTextingUpdatedAt']);

/** A channel-webhooks target's routes in one cell: `name (id)`, `;`-separated, with why one was skipped. */
function webhooksCell(routes: readonly WebhookRoute[]): string {
  return routes
    .map((r) => `${r.name ? `${r.name} (${r.id})` : r.id}${r.skipped ? ` skipped: ${r.skipped}` : ''}`)
    .join(';');
}

/** WEBHOOK_EVENT_NAMES=scopes: each scope's delivery in one cell, `event webhook-id xN endpoints`, `;`-separated. */
function deliveriesCell(deliveries: readonly ScopeDelivery[]): string {
  return deliveries.map((d) => `${d.event} ${d.webhookId} x${d.endpoints}`).join(';');
}

/** One column's cell of an entry, before CSV quoting. */
function cellValue(entry: AuditEntry, column: (typeof CSV_COLUMNS)[number]): unknown {
  const value = (entry as unknown as Record<string, unknown>)[column];
  if (TIME_COLUMNS.has(column) && typeof value === 'number' && Number.isFinite(value))
    return new Date(value).toISOString();
  if (column === 'webhooks' && entry.webhooks) return webhooksCell(entry.webhooks);
  if (column === 'deliveries' && entry.deliveries) return deliveriesCell(entry.deliveries);
  return value;
}

/** RFC 4180: quote a cell holding a comma, a quote or a line break, doubling its quotes. */
export function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  const text = Array.isArray(value) ? value.join(';') : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * One CSV row; `fields`, `webhooks` and `deliveries` are `;`-separated and Channel Talk's change times are ISO 8601
 * (UTC).
 */
export function csvRow(entry: AuditEntry): string {
  return CSV_COLUMNS.map((column) => csvCell(cellValue(entry, column))).join(',');
}

export const CSV_HEADER = CSV_COLUMNS.join(',');

const CHUNK = 64 * 1024;

/** Writes every entry in the format; returns how many were written. */
export async function exportAudit(
  entries: AsyncIterable<AuditEntry> | Iterable<AuditEntry>,
  format: ExportFormat,
  write: (chunk: string) => Promise<void>,
): Promise<number> {
  let buffer = format === 'csv' ? `${CSV_HEADER}\n` : '[';
  let count = 0;
  for await (const entry of entries) {
    if (format === 'csv') buffer += `${csvRow(entry)}\n`;
    else buffer += `${count === 0 ? '\n' : ',\n'}${JSON.stringify(entry)}`;
    count += 1;
    if (buffer.length >= CHUNK) {
      await write(buffer);
      buffer = '';
    }
  }
  if (format === 'json') buffer += count === 0 ? ']\n' : '\n]\n';
  if (buffer.length > 0) await write(buffer);
  return count;
}
