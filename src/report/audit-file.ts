import { AuditLogError } from '../audit/audit-store';
import type { AuditEntry } from '../audit/audit-entry';

// Reads an audit log line by line, as the workers do: the first record of a source line wins, later
// records of it are ignored, and a torn or foreign line (a crash mid-write) is skipped and counted.
// The reading itself is the file audit store's (src/audit/audit-store.ts); the report reads a log of
// either store through AuditStore.entries and sees the same records.

export class AuditFileError extends Error {
  override name = 'AuditFileError';
}

/** The store's read errors as the report's one-line AuditFileError. */
export async function* asAuditFileErrors(entries: AsyncIterable<AuditEntry>): AsyncGenerator<AuditEntry> {
  try {
    yield* entries;
  } catch (err) {
    if (err instanceof AuditLogError) throw new AuditFileError(err.message);
    throw err;
  }
}
