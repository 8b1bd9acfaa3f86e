import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { WorkEntry } from '../domain/types';
import { batchIndexPath } from './batch-index';
import { UnreadableRestError } from './errors';
import { readSourceChunks, type ResolvedSource } from './read-source';
import {
  countEntry,
  normalisedEntries,
  readStoredSummary,
  syncDirectory,
  workFileSummaryPath,
  workLine,
  writeAll,
  writeDurably,
  type AppendEntries,
  type PrepareSummary,
  type SelectEntry,
} from './work-file';

/**
 * The work file written while the batches already run (issue 26: the first lookup does not wait for the whole
 * source). It is written in place, and the batch index (src/source/batch-index.ts, the same file and format the
 * whole preparation builds) grows beside it: batch k's start offset is appended once batch k-1's lines are all
 * written, so batch k-1 is readable as soon as the index holds k+1 offsets, and every batch is once the summary
 * (the completion mark, written last) is there. A retried write resumes: it keeps every batch the index already
 * ends, cuts the file back to the start of the last indexed batch and reads the source again from its start (the
 * duplicate check needs every memberId before that point), writing only what comes after.
 */

export interface GrowingWorkFile {
  spec: ResolvedSource;
  workFile: string;
  batchSize: number;
  select?: SelectEntry;
  /** Entries appended after the source (a verify run: the members the export no longer holds). */
  after?: AppendEntries;
  /** Called each time a batch became readable; what it throws stops the write (the activity's cancellation). */
  onBatch?: (readableBatches: number) => void;
  /**
   * Aborted: the write stops at its next chunk of the source, even while a resumed write reads again the rows it
   * keeps (the normaliser cancelled: its run cancelled or terminated).
   */
  signal?: AbortSignal;
}

export interface GrownWorkFile extends PrepareSummary {
  batches: number;
}

/**
 * A retried write found the source no longer giving the rows the kept batches hold (changed, or shorter, since the
 * first attempt read it): the work set cannot be finished from it without mixing two versions of the source.
 */
export class SourceChangedError extends Error {
  override name = 'SourceChangedError';
  constructor(keptRows: number) {
    super(
      `the member source changed while its work set was being written: its first ${keptRows} rows are no longer the ones the batches already read`,
    );
  }
}

/** Whether batch `batch` can be read now, lies beyond the end of a finished work file, or is not written yet. */
export type BatchAvailability = 'ready' | 'beyond' | 'waiting';

const WRITE_FLUSH_BYTES = 64 * 1024;
const OFFSET_BYTES = 8;

async function indexedBatches(indexFile: string): Promise<number> {
  const stats = await stat(indexFile).catch(() => undefined);
  return stats ? Math.floor(stats.size / OFFSET_BYTES) : 0;
}

export async function batchAvailability(
  workFile: string,
  batchSize: number,
  batch: number,
): Promise<BatchAvailability> {
  // The summary first: once it is there the index is complete, so the count read after it is final.
  const finished = (await readStoredSummary(workFile)) !== undefined;
  const indexed = await indexedBatches(batchIndexPath(workFile, batchSize));
  if (finished) return batch < indexed ? 'ready' : 'beyond';
  return batch + 1 < indexed ? 'ready' : 'waiting';
}

/** Where a retried write starts again: the batches already indexed before the last one are kept as they are. */
async function resumePoint(
  data: FileHandle,
  index: FileHandle,
): Promise<{ indexed: number; offset: number; keptBatches: number }> {
  const indexed = Math.floor((await index.stat()).size / OFFSET_BYTES);
  if (indexed === 0) return { indexed: 0, offset: 0, keptBatches: 0 };
  const last = Buffer.alloc(OFFSET_BYTES);
  await index.read(last, 0, OFFSET_BYTES, (indexed - 1) * OFFSET_BYTES);
  const offset = last.readDoubleLE(0);
  // A work file shorter than its index says (not written by this code): start over.
  if (offset > (await data.stat()).size) return { indexed: 0, offset: 0, keptBatches: 0 };
  return { indexed, offset, keptBatches: indexed - 1 };
}

/**
 * Opened for writes at explicit positions, not appends: two attempts of the normaliser may write at once (a stuck
 * one whose heartbeat timed out goes on beside its retry), and both write the same bytes at the same places (the
 * same source, checked by the digest of the kept rows), where appends would interleave them.
 */
async function openPrivate(file: string): Promise<FileHandle> {
  const handle = await open(file, constants.O_RDWR | constants.O_CREAT, 0o600);
  await handle.chmod(0o600); // a file left by a crashed attempt keeps its old mode otherwise
  return handle;
}

/** Writes (or finishes) the work file and its batch index; returns the summary once the whole source is in. */
export async function writeGrowingWorkFile(w: GrowingWorkFile): Promise<GrownWorkFile> {
  const { workFile, batchSize } = w;
  const indexFile = batchIndexPath(workFile, batchSize);
  const stored = await readStoredSummary(workFile);
  if (stored) return { ...stored, batches: await indexedBatches(indexFile) };

  const dir = path.dirname(workFile);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const data = await openPrivate(workFile);
  try {
    const index = await openPrivate(indexFile);
    try {
      const start = await resumePoint(data, index);
      await index.truncate(start.indexed * OFFSET_BYTES);
      await data.truncate(start.offset);
      const summary = await appendEntries(w, data, index, start, dir);
      await data.sync();
      await index.sync();
      await writeDurably(workFileSummaryPath(workFile), `${JSON.stringify(summary)}\n`);
      await syncDirectory(dir);
      return { ...summary, batches: Math.floor((await index.stat()).size / OFFSET_BYTES) };
    } finally {
      await index.close();
    }
  } finally {
    await data.close();
  }
}

/** The SHA-256 of the file's first `length` bytes, read in 1 MiB pieces. */
async function digestOf(handle: FileHandle, length: number): Promise<string> {
  const hash = createHash('sha256');
  const piece = Buffer.allocUnsafe(1024 * 1024);
  for (let at = 0; at < length;) {
    const { bytesRead } = await handle.read(piece, 0, Math.min(piece.length, length - at), at);
    if (bytesRead === 0) break;
    hash.update(piece.subarray(0, bytesRead));
    at += bytesRead;
  }
  return hash.digest('hex');
}

async function* prepend<T>(first: T, rest: AsyncIterable<T> | Iterable<T>): AsyncGenerator<T> {
  yield first;
  yield* rest;
}

async function appendEntries(
  w: GrowingWorkFile,
  data: FileHandle,
  index: FileHandle,
  start: { indexed: number; offset: number; keptBatches: number },
  spillDir: string,
): Promise<PrepareSummary> {
  const { batchSize } = w;
  const summary: PrepareSummary = { rows: 0, members: 0, skipped: 0, bytes: 0 };
  const skipEntries = start.keptBatches * batchSize;
  let written = start.offset; // bytes of the work file on disk
  let buffer = Buffer.allocUnsafe(2 * WRITE_FLUSH_BYTES);
  let used = 0;
  let entry = 0; // entries of the work set seen so far, written or kept
  // The kept entries as lines, hashed: the file up to start.offset holds exactly them, or the source changed.
  const kept = skipEntries > 0 ? createHash('sha256') : undefined;
  const keptDigest = skipEntries > 0 ? await digestOf(data, start.offset) : undefined;
  let indexed = start.indexed;

  const flush = async () => {
    await writeAll(data, buffer.subarray(0, used), written);
    written += used;
    used = 0;
  };
  // Batch k starts here: the lines before it are on disk first, so batch k-1 is whole once this offset is read;
  // synced first, so that after a machine crash the index never points past lines the disk does not hold.
  const indexBatchStart = async () => {
    if (used > 0) await flush();
    if (indexed > 0) await data.datasync();
    const offset = Buffer.alloc(OFFSET_BYTES);
    offset.writeDoubleLE(written, 0);
    await writeAll(index, offset, indexed * OFFSET_BYTES);
    indexed += 1;
    if (indexed > 1) w.onBatch?.(indexed - 1);
  };

  // One entry, kept (a retried write's earlier batches) or written; a promise only when it has to wait for the disk.
  const put = (e: WorkEntry): Promise<void> | undefined => {
    const position = entry++;
    const line = workLine(e);
    if (position < skipEntries) {
      kept!.update(line, 'utf8');
      return undefined;
    }
    if (position === skipEntries && kept && kept.digest('hex') !== keptDigest)
      throw new SourceChangedError(skipEntries);
    const batchStart = position % batchSize === 0 && position / batchSize >= indexed;
    if (!batchStart && used + 3 * line.length <= buffer.length) {
      used += buffer.write(line, used, 'utf8');
      return undefined;
    }
    return (async () => {
      if (batchStart) await indexBatchStart();
      // UTF-8 takes at most 3 bytes per UTF-16 unit; a line that may not fit gets a larger buffer first.
      if (used + 3 * line.length > buffer.length) {
        if (used > 0) await flush();
        if (3 * line.length > buffer.length) buffer = Buffer.allocUnsafe(3 * line.length);
      }
      used += buffer.write(line, used, 'utf8');
    })();
  };

  for await (const chunk of growingEntries(w, summary, spillDir)) {
    for (const e of chunk) {
      const io = put(e);
      if (io) await io;
    }
    if (used >= WRITE_FLUSH_BYTES) await flush();
  }
  if (used > 0) await flush();
  // The first attempt wrote at least one row of the last indexed batch: a source that ends before it got shorter.
  if (start.indexed > 0 && entry <= skipEntries) throw new SourceChangedError(skipEntries);
  summary.bytes = written;
  return summary;
}

/**
 * The work set's entries as a growing write (either store) takes them: the source normalised, in chunks. Found once
 * the batches run, a source whose rest cannot be read (a quoted field never closed) ends with that record as one bad
 * row, as any bad row: the run goes on. A verify run's appended entries follow it, each member not found before that
 * end a bad row naming it (the end may hold it).
 */
export async function* growingEntries(
  w: Pick<GrowingWorkFile, 'spec' | 'select' | 'after' | 'signal'>,
  summary: PrepareSummary,
  /** Where the duplicate check spills (default: the system's temp dir). */
  spillDir?: string,
): AsyncGenerator<WorkEntry[]> {
  try {
    for await (const chunk of normalisedEntries(readSourceChunks(w.spec), summary, w.select, w.after, spillDir)) {
      w.signal?.throwIfAborted();
      yield chunk;
    }
  } catch (err) {
    if (!(err instanceof UnreadableRestError)) throw err;
    const unread = { line: err.line, skip: err.skip };
    const row = (w.select ?? ((e: WorkEntry) => e))(unread);
    const rest = w.after?.(unread) ?? [];
    for await (const e of row ? prepend(row, rest) : rest) {
      countEntry(e, summary);
      yield [e];
    }
  }
}
