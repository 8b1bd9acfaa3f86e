import { createHash, randomUUID, type Hash } from 'node:crypto';
import type { Pool, PoolClient, QueryResultRow } from 'pg';
import {
  growingEntries,
  SourceChangedError,
  type BatchAvailability,
  type GrowingWorkFile,
  type GrownWorkFile,
} from '../source/growing-work-file';
import { workLine, type PrepareSummary } from '../source/work-file';
import { GROWTH_TABLE, WORK_SETS_TABLE, WORK_TABLE } from './postgres-schema';

/**
 * The PostgreSQL work set written while its batches already run (issue 26: the first lookup does not wait for the
 * whole source), the counterpart of src/source/growing-work-file.ts for BACKFILL_STORE=postgres, where the batches
 * run on any worker (another host). Rows are committed whole batches at a time (COMMIT_ROWS rows or a little more),
 * each commit in one transaction with
 * the readable-rows marker (backfill_work_growth.written), so a worker that reads the marker finds every row it
 * counts; the summary row (backfill_work_sets) is committed with the last rows and marks the set complete, as the
 * whole preparation's does.
 *
 * One attempt of the normaliser writes at a time: each attempt takes the growth row over with a new `attempt` id, and
 * every commit is guarded by it (and by `written`, so rows follow on without a gap or overlap), so a stuck attempt
 * that goes on beside its retry writes nothing more once the retry has started. A retry resumes after the committed
 * rows: it reads the source again from its start (the duplicate check needs every memberId before that point),
 * checks that the rows it would have written are the committed ones (SHA-256 of their work lines, kept with the
 * marker) and writes only what comes after.
 */

type Db = Pick<Pool, 'query' | 'connect'>;

/**
 * Rows per commit, at least, up to the next batch boundary: the first batch is readable after about this many
 * (milliseconds), 10M rows are 10,000 commits, and a batch is all there or not at all. A worker of the previous
 * version (during a rolling upgrade) reads a batch without asking whether it is readable: it then finds no row and
 * fails the attempt, where a batch cut by a commit would have come back short.
 */
export const COMMIT_ROWS = 1000;

export interface GrowingWorkSet extends Omit<GrowingWorkFile, 'workFile'> {
  key: string;
  /** The workflow the set belongs to (purge finds a set by it, complete or not). */
  owner: { workflowId: string };
}

/** A newer attempt took the write over (this one's heartbeat timed out, or the set was removed): this one stops. */
export class SupersededWriteError extends Error {
  override name = 'SupersededWriteError';
  constructor(key: string) {
    super(`the work set ${JSON.stringify(key)} is written by a newer attempt of the normaliser (or was removed)`);
  }
}

/** What the database says of a work set: its rows once complete, else how many rows are committed (if any). */
export interface WorkSetMark {
  total: number | undefined;
  written: number | undefined;
}

/** Whether batch `batch` can be read: every row of it committed, beyond the end of a complete set, or not yet. */
export function availabilityOf(mark: WorkSetMark, batchSize: number, batch: number): BatchAvailability {
  if (mark.total !== undefined) return batch * batchSize < mark.total ? 'ready' : 'beyond';
  return mark.written !== undefined && (batch + 1) * batchSize <= mark.written ? 'ready' : 'waiting';
}

/**
 * The rows batch `batch` holds once readable, or undefined when that is not known yet (the set is being written and
 * the batch is not whole): every batch is whole but the last of a complete set.
 */
export function rowsOfBatch(mark: WorkSetMark, batchSize: number, batch: number): number | undefined {
  if (availabilityOf(mark, batchSize, batch) !== 'ready') return undefined;
  return mark.total === undefined ? batchSize : Math.min(batchSize, mark.total - batch * batchSize);
}

export async function workSetMark(db: Pick<Pool, 'query'>, key: string): Promise<WorkSetMark> {
  // One statement: one snapshot, so a set completed between two reads is never seen half.
  const { rows } = await db.query<QueryResultRow>(
    `SELECT (SELECT rows FROM ${WORK_SETS_TABLE} WHERE key = $1) AS total,
            (SELECT written FROM ${GROWTH_TABLE} WHERE key = $1) AS written`,
    [key],
  );
  const row = rows[0]!;
  return {
    total: row.total === null ? undefined : Number(row.total),
    written: row.written === null ? undefined : Number(row.written),
  };
}

/** The summary of a complete work set, or undefined. */
export async function storedSummary(db: Pick<Pool, 'query'>, key: string): Promise<PrepareSummary | undefined> {
  const { rows } = await db.query<QueryResultRow>(
    `SELECT rows, members, skipped, bytes FROM ${WORK_SETS_TABLE} WHERE key = $1`,
    [key],
  );
  const row = rows[0];
  return row
    ? { rows: Number(row.rows), members: Number(row.members), skipped: Number(row.skipped), bytes: Number(row.bytes) }
    : undefined;
}

/** Inserts work lines (JSON, each with its line feed) as rows `first`, `first + 1`, ...: one parameter, one round trip. */
export async function insertWorkRows(
  client: Pick<PoolClient, 'query'>,
  key: string,
  first: number,
  lines: string[],
): Promise<void> {
  if (lines.length === 0) return;
  await client.query(
    `INSERT INTO ${WORK_TABLE} (key, ord, entry)
     SELECT $1, $2::int + (n - 1)::int, e FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS t(e, n)`,
    [key, first, `[${lines.join(',')}]`],
  );
}

/** Writes (or finishes) the work set; returns its summary once the whole source is in. */
export async function writeGrowingWorkSet(db: Db, w: GrowingWorkSet): Promise<GrownWorkFile> {
  const grown = (summary: PrepareSummary) => ({ ...summary, batches: Math.ceil(summary.rows / w.batchSize) });
  const stored = await storedSummary(db, w.key);
  if (stored) return grown(stored);
  const attempt = randomUUID();
  const start = await takeOver(db, w, attempt);
  // An attempt whose last commit came just before this one took over: its set is complete.
  const finished = await storedSummary(db, w.key);
  if (finished) return grown(finished);

  const summary: PrepareSummary = { rows: 0, members: 0, skipped: 0, bytes: 0 };
  const digest = createHash('sha256');
  const commit = (lines: string[], upTo: number, complete?: PrepareSummary) =>
    commitRows(db, w, attempt, { lines, upTo, digest: hexOf(digest), complete });
  let position = 0; // entries of the work set seen so far, committed before or to write
  let lines: string[] = [];
  for await (const chunk of growingEntries(w, summary)) {
    for (const entry of chunk) {
      const line = workLine(entry);
      digest.update(line, 'utf8');
      summary.bytes += Buffer.byteLength(line) - 1; // the entries' own bytes, as the whole preparation counts them
      position += 1;
      if (position <= start.written) {
        if (position === start.written && hexOf(digest) !== start.digest) throw new SourceChangedError(start.written);
        continue;
      }
      lines.push(line);
      if (lines.length >= COMMIT_ROWS && position % w.batchSize === 0) {
        await commit(lines, position);
        lines = [];
      }
    }
  }
  // The committed rows are rows the source gave before: a source that now ends before them got shorter.
  if (position < start.written) throw new SourceChangedError(start.written);
  await commit(lines, position, summary);
  return grown(summary);
}

const hexOf = (digest: Hash) => digest.copy().digest('hex');

/** Makes `attempt` the one attempt that writes on; returns what is committed (waits for a commit under way). */
async function takeOver(
  db: Pick<Pool, 'query'>,
  w: GrowingWorkSet,
  attempt: string,
): Promise<{ written: number; digest: string | null }> {
  const { rows } = await db.query<QueryResultRow>(
    `INSERT INTO ${GROWTH_TABLE} (key, workflow_id, attempt) VALUES ($1, $2, $3)
     ON CONFLICT (key) DO UPDATE SET attempt = EXCLUDED.attempt, updated_at = now()
     RETURNING written, digest`,
    [w.key, w.owner.workflowId, attempt],
  );
  return { written: Number(rows[0]!.written), digest: rows[0]!.digest as string | null };
}

/**
 * Commits `lines` as the rows before `upTo`, with the marker (and, `complete`, the summary that completes the set) in
 * the same transaction; then tells `onBatch` how many batches are readable. Refused when another attempt took over.
 */
async function commitRows(
  db: Db,
  w: GrowingWorkSet,
  attempt: string,
  c: { lines: string[]; upTo: number; digest: string; complete?: PrepareSummary },
): Promise<void> {
  const first = c.upTo - c.lines.length;
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    // First, so that the row lock orders this commit with a take-over: the take-over reads what it committed.
    const { rowCount } = await client.query(
      `UPDATE ${GROWTH_TABLE} SET written = $3, digest = $4, updated_at = now()
       WHERE key = $1 AND attempt = $2 AND written = $5`,
      [w.key, attempt, c.upTo, c.digest, first],
    );
    if (rowCount !== 1) throw new SupersededWriteError(w.key);
    await insertWorkRows(client, w.key, first, c.lines);
    if (c.complete) {
      const s = c.complete;
      await client.query(
        `INSERT INTO ${WORK_SETS_TABLE} (key, workflow_id, rows, members, skipped, bytes) VALUES ($1, $2, $3, $4, $5, $6)`,
        [w.key, w.owner.workflowId, s.rows, s.members, s.skipped, s.bytes],
      );
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
  const readable = c.complete ? Math.ceil(c.upTo / w.batchSize) : Math.floor(c.upTo / w.batchSize);
  if (readable > Math.floor(first / w.batchSize)) w.onBatch?.(readable);
}
