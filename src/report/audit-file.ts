import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import readline from 'node:readline';
import type { AuditEntry } from '../audit/audit-entry';
import { LineSet, MAX_LINE } from './line-set';

// Reads an audit log line by line, as the workers do: the first record of a source line wins, later
// records of it are ignored, and a torn or foreign line (a crash mid-write) is skipped and counted.

export class AuditFileError extends Error {
  override name = 'AuditFileError';
}

export interface AuditReadStats {
  /** Distinct source lines read. */
  entries: number;
  /** Records of an already seen line, dropped. */
  repeated: number;
  /** Lines that are not an audit record (torn by a crash, or not JSON), skipped. */
  unreadable: number;
}

const OUTCOMES = new Set(['upsert', 'delete', 'unchanged', 'failed', 'skipped']);

/** An audit record, or undefined for a line that is not one. */
export function parseAuditLine(text: string): AuditEntry | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const entry = value as Partial<AuditEntry>;
  if (typeof entry.line !== 'number' || !Number.isInteger(entry.line) || entry.line < 1 || entry.line > MAX_LINE) return undefined;
  if (typeof entry.outcome !== 'string' || !OUTCOMES.has(entry.outcome)) return undefined;
  return entry as AuditEntry;
}

/** Streams the distinct records of an audit log in file order. `stats` is filled in as it goes. */
export async function* readAuditFile(file: string, stats: AuditReadStats = { entries: 0, repeated: 0, unreadable: 0 }): AsyncGenerator<AuditEntry> {
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new AuditFileError(`cannot read the audit log ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.code ?? err.message}`);
  });
  // A pipe is fine too: `report --audit <(zcat audit.jsonl.gz)`.
  if (info.isDirectory()) throw new AuditFileError(`cannot read the audit log ${file}: it is a directory`);
  const seen = new LineSet();
  const input = createReadStream(file, { encoding: 'utf8' });
  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const text of lines) {
      if (text.trim() === '') continue;
      const entry = parseAuditLine(text);
      if (!entry) {
        stats.unreadable += 1;
        continue;
      }
      if (!seen.add(entry.line)) {
        stats.repeated += 1;
        continue;
      }
      stats.entries += 1;
      yield entry;
    }
  } catch (err) {
    if (err instanceof AuditFileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new AuditFileError(`cannot read the audit log ${file}: ${code ?? (err as Error).message}`);
  } finally {
    lines.close();
    input.destroy();
  }
}
