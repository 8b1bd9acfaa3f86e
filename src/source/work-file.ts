import { mkdir, open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import {
  COMPARED_FIELDS,
  MEMBER_COLUMNS,
  type ComparedField,
  type PlannedDecision,
  type RepairRecord,
  type SourceEntry,
  type StoredMember,
  type VerifyEntry,
  type WorkEntry,
} from '../domain/types';
import { MemberIdIndex } from './member-id-index';
import { readSourceChunks, type ResolvedSource } from './read-source';

/**
 * The work file is the source normalised once into JSONL, one entry per source row, so that batches
 * can be read by byte offset: a cursor that stays valid across worker restarts and continue-as-new.
 * It holds personal data, so it and its temp file are created 0600 (parent directories 0700).
 */

export interface PrepareSummary {
  /** Source rows written (good and bad). */
  rows: number;
  /** Rows to check: valid and not a duplicate. */
  members: number;
  /** Rows skipped: invalid, or a later duplicate of a memberId. */
  skipped: number;
  /** Size of the work file. */
  bytes: number;
}

export interface WorkBatch {
  entries: WorkEntry[];
  /** Byte offset right after the last returned line: the cursor for the next batch. */
  nextOffset: number;
  /** True when nextOffset is the end of the file. */
  done: boolean;
}

/** Keeps (as a work entry, maybe a verify run's), or (undefined) drops, each source entry: a run over part of it. */
export type SelectEntry = (entry: SourceEntry) => WorkEntry | undefined;

/** Where a source stopped being readable: its last record, which swallowed the rest (a quoted field never closed). */
export interface UnreadEnd {
  /** The line that record starts on. */
  line: number;
  /** Its problem, as a bad row's reason. */
  skip: string;
}

/**
 * Entries appended after the source (a verify run: the members the export no longer holds). `unread`: the source's
 * end could not be read, so a member not found before it may be in it.
 */
export type AppendEntries = (unread?: UnreadEnd) => AsyncIterable<WorkEntry>;

export const workFileSummaryPath = (workFile: string) => `${workFile}.summary.json`;

const WRITE_FLUSH_BYTES = 64 * 1024;
/** Appended entries (a verify run's members absent from the export) are handed on in chunks of this many. */
const APPENDED_CHUNK = 1000;
const READ_CHUNK_BYTES = 64 * 1024;
const LF = 0x0a;

const summarySchema = z.object({
  rows: z.number().int().nonnegative(),
  members: z.number().int().nonnegative(),
  skipped: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
});

/**
 * Streams the source into `workFile` (via `workFile.tmp`, fsynced, renamed last, after the summary is
 * written), dropping later duplicates of a memberId. Idempotent for activity retries: when the work
 * file and its summary already exist, the stored summary is returned and the source is not re-read.
 * Throws SourceConfigError (from readSource) before anything is renamed into place.
 */
export async function prepareWorkFile(
  spec: ResolvedSource,
  workFile: string,
  select?: SelectEntry,
  after?: AppendEntries,
): Promise<PrepareSummary> {
  const stored = await readStoredSummary(workFile);
  if (stored) return stored;

  const dir = path.dirname(workFile);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmpFile = `${workFile}.tmp`;
  let summary: PrepareSummary;
  try {
    const handle = await open(tmpFile, 'w', 0o600);
    try {
      await handle.chmod(0o600); // a temp file left by a crashed attempt keeps its old mode otherwise
      summary = await writeEntries(readSourceChunks(spec), handle, select, after, dir);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    await rm(tmpFile, { force: true }); // a partial copy of personal data is of no use to anyone
    throw error;
  }

  await writeDurably(workFileSummaryPath(workFile), `${JSON.stringify(summary)}\n`);
  await rename(tmpFile, workFile);
  await syncDirectory(dir);
  return summary;
}

/** The stored summary, if both files exist and agree; anything else means "prepare again". */
export async function readStoredSummary(workFile: string): Promise<PrepareSummary | undefined> {
  try {
    const [text, workStats] = await Promise.all([readFile(workFileSummaryPath(workFile), 'utf8'), stat(workFile)]);
    const summary = summarySchema.safeParse(JSON.parse(text));
    return summary.success && summary.data.bytes === workStats.size ? summary.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The first row of a memberId wins. A bad row that names a memberId claims it too: when a member's
 * rows disagree, which one holds the customer's truth is unknown, so none is replayed.
 */
function withDuplicatesSkipped(entry: SourceEntry, seen: MemberIdIndex): SourceEntry {
  const memberId = 'member' in entry ? entry.member.memberId : entry.memberId;
  if (memberId === undefined) return entry;
  const first = seen.firstLine(memberId, entry.line);
  if (first === undefined) return entry;
  const duplicate = `duplicate memberId (first seen on line ${first})`;
  return { line: entry.line, memberId, skip: 'skip' in entry ? `${entry.skip}; ${duplicate}` : duplicate };
}

/**
 * The source as the work set holds it, in chunks (from readSourceChunks): later duplicates of a memberId turned
 * into skips, then the selection applied; `summary` counts what is yielded. Shared by the file and the
 * PostgreSQL work stores.
 */
export async function* normalisedEntries(
  chunks: AsyncIterable<SourceEntry[]>,
  summary: PrepareSummary,
  select: SelectEntry = (entry) => entry,
  /** Entries appended once the source is read, as they come (neither deduplicated nor selected). */
  after?: AppendEntries,
  /** Where the duplicate check spills memberId hashes beyond its in-memory table (default: the system's temp dir). */
  spillDir?: string,
): AsyncGenerator<WorkEntry[]> {
  const seen = new MemberIdIndex({ spillDir });
  try {
    yield* dedupedAndSelected(chunks, seen, summary, select);
  } finally {
    seen.close(); // also when the consumer stops early or the source fails: the spill file goes with it
  }
  if (!after) return;
  let appended: WorkEntry[] = [];
  for await (const entry of after()) {
    countEntry(entry, summary);
    appended.push(entry);
    if (appended.length >= APPENDED_CHUNK) {
      yield appended;
      appended = [];
    }
  }
  if (appended.length) yield appended;
}

/** Counts one entry of the work set into its summary: a row, and a member to check or a skip. */
export function countEntry(entry: WorkEntry, summary: PrepareSummary): void {
  summary.rows++;
  if ('member' in entry) summary.members++;
  else summary.skipped++;
}

async function* dedupedAndSelected(
  chunks: AsyncIterable<SourceEntry[]>,
  seen: MemberIdIndex,
  summary: PrepareSummary,
  select: SelectEntry,
): AsyncGenerator<WorkEntry[]> {
  for await (const sourceEntries of chunks) {
    const kept: WorkEntry[] = [];
    for (const sourceEntry of sourceEntries) {
      const entry = select(withDuplicatesSkipped(sourceEntry, seen));
      if (!entry) continue;
      countEntry(entry, summary);
      kept.push(entry);
    }
    if (kept.length) yield kept;
  }
}

async function writeEntries(
  chunks: AsyncIterable<SourceEntry[]>,
  handle: FileHandle,
  select: SelectEntry | undefined,
  after: AppendEntries | undefined,
  spillDir: string,
): Promise<PrepareSummary> {
  const summary: PrepareSummary = { rows: 0, members: 0, skipped: 0, bytes: 0 };
  // Lines are encoded straight into one reused buffer: collecting strings, joining them and encoding the result
  // made three copies of every row, and their garbage was the largest cost of preparing a million rows.
  let buffer = Buffer.allocUnsafe(2 * WRITE_FLUSH_BYTES);
  let used = 0;

  // Awaiting each write is the backpressure: the source is not read further until the disk took it.
  const flush = async () => {
    await writeAll(handle, buffer.subarray(0, used));
    summary.bytes += used;
    used = 0;
  };

  for await (const kept of normalisedEntries(chunks, summary, select, after, spillDir)) {
    for (const entry of kept) {
      const line = workLine(entry);
      // UTF-8 takes at most 3 bytes per UTF-16 unit; a line that may not fit gets a larger buffer first.
      if (used + 3 * line.length > buffer.length) {
        if (used > 0) await flush();
        if (3 * line.length > buffer.length) buffer = Buffer.allocUnsafe(3 * line.length);
      }
      used += buffer.write(line, used, 'utf8');
    }
    if (used >= WRITE_FLUSH_BYTES) await flush();
  }
  if (used > 0) await flush();
  return summary;
}

/** `"memberId":`, `,"mobileNumber":`, ...: each member column's key as the template writes it. */
const MEMBER_KEYS = MEMBER_COLUMNS.map((column, i) => `${i ? ',' : ''}${JSON.stringify(column)}:`);

/**
 * Whether the entry has no key but `line` and `member` (set ones: JSON.stringify drops undefined too). Asked of the
 * object itself, not of a list of the other keys a work entry may have, so a key added to it later is never dropped.
 */
function holdsOnlyLineAndMember(entry: object): boolean {
  for (const key in entry) {
    if (key !== 'line' && key !== 'member' && (entry as Record<string, unknown>)[key] !== undefined) return false;
  }
  return true;
}

const json = (value: string | boolean | null): string =>
  typeof value === 'string' ? JSON.stringify(value) : value === null ? 'null' : value ? 'true' : 'false';

/**
 * One entry as its work-file line. A plain member entry (nearly every row of a large source) is written by a
 * template, about twice as fast as JSON.stringify of the nested object and the same text; anything else by
 * JSON.stringify. JSON escapes raw line breaks: one entry, one line.
 */
export function workLine(entry: WorkEntry): string {
  if ('member' in entry && holdsOnlyLineAndMember(entry)) {
    let line = `{"line":${entry.line},"member":{`;
    for (let i = 0; i < MEMBER_COLUMNS.length; i++) line += MEMBER_KEYS[i]! + json(entry.member[MEMBER_COLUMNS[i]!]);
    return `${line}}}\n`;
  }
  return `${JSON.stringify(entry)}\n`;
}

/** Writes all of `buffer`: at the file's current position, or from byte `position` when given. */
export async function writeAll(handle: FileHandle, buffer: Buffer, position?: number): Promise<void> {
  for (let written = 0; written < buffer.length;) {
    const at = position === undefined ? null : position + written;
    const { bytesWritten } = await handle.write(buffer, written, buffer.length - written, at);
    written += bytesWritten;
  }
}

export async function writeDurably(file: string, text: string): Promise<void> {
  const tmpFile = `${file}.tmp`;
  const handle = await open(tmpFile, 'w', 0o600);
  try {
    await writeAll(handle, Buffer.from(text, 'utf8'));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmpFile, file);
}

/** Makes the renames durable; some platforms cannot fsync a directory, which is then skipped. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // EINVAL/EISDIR on platforms without directory fsync: nothing more can be done.
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// Reading batches

// The work file is this program's own output (prepare validated every row on the way in), so reading it
// back needs no schema library: a structural check per line, with exactly the shape prepare writes, keeps
// a damaged or foreign file from being taken for members. Like a strict schema, it returns fresh objects
// holding only the known keys.

type Shape<T> = (value: unknown) => T | undefined;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isNullableString = (value: unknown): value is string | null => value === null || typeof value === 'string';
const isNullableBoolean = (value: unknown): value is boolean | null => value === null || typeof value === 'boolean';
const isLineNumber = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
const COMPARED = new Set<string>(COMPARED_FIELDS);

const storedMember: Shape<StoredMember> = (value) => {
  if (!isRecord(value)) return undefined;
  const { memberId, mobileNumber, email, unsubscribeEmail, unsubscribeTexting } = value;
  if (typeof memberId !== 'string' || !isNullableString(mobileNumber) || !isNullableString(email)) return undefined;
  if (!isNullableBoolean(unsubscribeEmail) || !isNullableBoolean(unsubscribeTexting)) return undefined;
  return { memberId, mobileNumber, email, unsubscribeEmail, unsubscribeTexting };
};

const plannedDecision: Shape<PlannedDecision> = (value) => {
  if (!isRecord(value)) return undefined;
  const { action, fields, reason } = value;
  if (action !== 'upsert' && action !== 'delete') return undefined;
  const planned: PlannedDecision = { action };
  if (fields !== undefined) {
    if (!Array.isArray(fields) || !fields.every((field) => typeof field === 'string' && COMPARED.has(field)))
      return undefined;
    planned.fields = [...(fields as ComparedField[])];
  }
  if (reason !== undefined) {
    if (typeof reason !== 'string') return undefined;
    planned.reason = reason;
  }
  return planned;
};

const repairRecord: Shape<RepairRecord> = (value) => {
  if (!isRecord(value)) return undefined;
  const planned = plannedDecision({ action: value.event, fields: value.fields, reason: value.reason });
  const { deliveredAt } = value;
  if (!planned || typeof deliveredAt !== 'number' || !Number.isFinite(deliveredAt)) return undefined;
  const repair: RepairRecord = { event: planned.action, deliveredAt };
  if (planned.fields) repair.fields = planned.fields;
  if (planned.reason !== undefined) repair.reason = planned.reason;
  return repair;
};

/** A member entry if the value is one, else a skip entry if it is one, else undefined. */
const sourceEntry = (value: Record<string, unknown>, line: number): SourceEntry | undefined => {
  const member = storedMember(value.member);
  if (member) {
    if (value.planned === undefined) return { line, member };
    const planned = plannedDecision(value.planned);
    if (planned) return { line, member, planned };
  }
  const { memberId, skip } = value;
  if (typeof skip !== 'string') return undefined;
  if (memberId === undefined) return { line, skip };
  return typeof memberId === 'string' ? { line, memberId, skip } : undefined;
};

/** A verify run's entry: the source entry it holds, with the repair it checks and where the export had it. */
const verifyEntry = (value: Record<string, unknown>, line: number): VerifyEntry | undefined => {
  const repair = repairRecord(value.repair);
  const row = sourceEntry(value, line);
  if (!repair || !row || 'planned' in row) return undefined;
  const entry: VerifyEntry = { ...row, repair };
  if (value.exportLine !== undefined) {
    if (!isLineNumber(value.exportLine)) return undefined;
    entry.exportLine = value.exportLine;
  }
  if (value.absent !== undefined) {
    if (value.absent !== true || !('member' in entry)) return undefined;
    entry.absent = true;
  }
  return entry;
};

/** A work entry: a verify run's when it carries a repair, else the source's (no verify key); else undefined. */
export const workEntry: Shape<WorkEntry> = (value) => {
  if (!isRecord(value) || !isLineNumber(value.line)) return undefined;
  if (value.repair !== undefined) return verifyEntry(value, value.line);
  if (value.exportLine !== undefined || value.absent !== undefined) return undefined;
  return sourceEntry(value, value.line);
};

function parseWorkLine(bytes: Buffer, workFile: string, offset: number): WorkEntry {
  let entry: WorkEntry | undefined;
  try {
    entry = workEntry(JSON.parse(bytes.toString('utf8')));
  } catch {
    entry = undefined;
  }
  // The line's content is personal data: name only its position.
  if (!entry)
    throw new Error(`work file ${JSON.stringify(workFile)} is corrupt: the line at byte ${offset} is not a work entry`);
  return entry;
}

/** Whether `offset` is the start of a line (just after a line feed). */
async function isLineStart(handle: FileHandle, offset: number): Promise<boolean> {
  if (offset === 0) return true;
  const byte = Buffer.alloc(1);
  const { bytesRead } = await handle.read(byte, 0, 1, offset - 1);
  return bytesRead === 1 && byte[0] === LF;
}

/**
 * Up to maxEntries entries from byte `offset` on, read with positioned reads of 64 KiB (more when a
 * line is longer), never the whole file. The same arguments always give the same batch.
 */
export async function readWorkBatch(workFile: string, offset: number, maxEntries: number): Promise<WorkBatch> {
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new RangeError(`offset must be a non-negative integer, got ${offset}`);
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1)
    throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);

  const handle = await open(workFile, 'r');
  try {
    const { size } = await handle.stat();
    if (offset > size)
      throw new RangeError(`offset ${offset} is beyond the end of ${JSON.stringify(workFile)} (${size} bytes)`);
    if (!(await isLineStart(handle, offset)))
      throw new RangeError(`offset ${offset} is not at the start of a line of ${JSON.stringify(workFile)}`);

    const entries: WorkEntry[] = [];
    let next = offset; // start of the first line not yet returned
    let pending = Buffer.alloc(0); // bytes from `next` on that were read but hold no complete line yet
    while (entries.length < maxEntries) {
      const readAt = next + pending.length;
      if (readAt >= size) {
        if (pending.length > 0)
          throw new Error(`work file ${JSON.stringify(workFile)} is truncated: its last line has no line feed`);
        break;
      }
      // Reading at least as much as is pending doubles the window while one line is longer than it.
      const length = Math.min(Math.max(READ_CHUNK_BYTES, pending.length), size - readAt);
      const chunk = Buffer.allocUnsafe(length);
      const { bytesRead } = await handle.read(chunk, 0, length, readAt);
      if (bytesRead === 0) throw new Error(`work file ${JSON.stringify(workFile)} shrank while being read`);
      pending =
        pending.length > 0 ? Buffer.concat([pending, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);

      let lineStart = 0;
      for (
        let lf = pending.indexOf(LF);
        lf !== -1 && entries.length < maxEntries;
        lf = pending.indexOf(LF, lineStart)
      ) {
        entries.push(parseWorkLine(pending.subarray(lineStart, lf), workFile, next + lineStart));
        lineStart = lf + 1;
      }
      next += lineStart;
      pending = pending.subarray(lineStart);
    }
    return { entries, nextOffset: next, done: next >= size };
  } finally {
    await handle.close();
  }
}
