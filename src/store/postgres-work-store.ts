import type { Pool, QueryResultRow } from 'pg';
import { readSourceChunks, type ResolvedSource } from '../source/read-source';
import { normalisedEntries, workEntry, type PrepareSummary } from '../source/work-file';
import {
  insertWorkRows,
  rowsOfBatch,
  storedSummary as summaryIn,
  availabilityOf,
  workSetMark,
  writeGrowingWorkSet,
} from './postgres-growing-work';
import { GROWTH_TABLE, WORK_SETS_TABLE, WORK_TABLE } from './postgres-schema';
import type { WorkStore } from './work-store';

/** Rows per INSERT: one parameter (a JSON array) each, so a million rows are a thousand round trips. */
const INSERT_ROWS = 1000;

/**
 * The work set in PostgreSQL (BACKFILL_STORE=postgres): any worker reads any batch, none needs the preparing
 * worker's disk. Written whole (`write`) in one transaction with its summary row, so a crash mid-write leaves
 * nothing, and a retry of the preparation finds either the whole set or none of it; or, for a long source, while its
 * batches run (`writeGrowing`, src/store/postgres-growing-work.ts), committed a thousand rows at a time with the
 * marker the batches read (`batchAvailability`).
 */
export function createPostgresWorkStore(pool: Pick<Pool, 'query' | 'connect'>): WorkStore {
  const storedSummary = (key: string) => summaryIn(pool, key);

  return {
    async write(spec: ResolvedSource, key, select, owner, after) {
      const stored = await storedSummary(key);
      if (stored) return stored;
      const summary: PrepareSummary = { rows: 0, members: 0, skipped: 0, bytes: 0 };
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        let chunk: string[] = [];
        let ord = 0;
        const flush = async () => {
          if (chunk.length === 0) return;
          const json = `[${chunk.join(',')}]`;
          summary.bytes += Buffer.byteLength(json) - 1 - chunk.length; // the entries' own bytes, as the file counts them (less its line feeds)
          await insertWorkRows(client, key, ord - chunk.length, chunk);
          chunk = [];
        };
        for await (const kept of normalisedEntries(readSourceChunks(spec), summary, select, after)) {
          for (const entry of kept) {
            chunk.push(JSON.stringify(entry));
            ord++;
            if (chunk.length >= INSERT_ROWS) await flush();
          }
        }
        await flush();
        // A concurrent attempt that committed first wins; this one's rows conflict on the primary key and are
        // rolled back with it, and the retry returns the stored summary.
        await client.query(
          `INSERT INTO ${WORK_SETS_TABLE} (key, workflow_id, rows, members, skipped, bytes) VALUES ($1, $2, $3, $4, $5, $6)`,
          [key, owner.workflowId, summary.rows, summary.members, summary.skipped, summary.bytes],
        );
        await client.query('COMMIT');
        return summary;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },

    writeGrowing: (growing) => writeGrowingWorkSet(pool, growing),

    batchAvailability: async (key, batchSize, batch) => availabilityOf(await workSetMark(pool, key), batchSize, batch),

    async buildBatches(key, batchSize) {
      if (!Number.isSafeInteger(batchSize) || batchSize < 1)
        throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
      const stored = await storedSummary(key);
      if (!stored) throw new Error(`no work set ${JSON.stringify(key)} in ${WORK_SETS_TABLE}`);
      return Math.ceil(stored.rows / batchSize);
    },

    async readBatch(key, batchSize, batch) {
      if (!Number.isSafeInteger(batch) || batch < 0)
        throw new RangeError(`batch must be a non-negative integer, got ${batch}`);
      const { rows } = await pool.query<QueryResultRow>(
        `SELECT ord, entry FROM ${WORK_TABLE} WHERE key = $1 AND ord >= $2 AND ord < $3 ORDER BY ord`,
        [key, batch * batchSize, (batch + 1) * batchSize],
      );
      // Every batch but the last of a complete set is whole: one read short is not readable yet (its set is still
      // being written), never returned with members missing.
      if (rows.length < batchSize) {
        const mark = await workSetMark(pool, key);
        if (mark.total === undefined && mark.written === undefined)
          throw new Error(`no work set ${JSON.stringify(key)} in ${WORK_SETS_TABLE} (removed, or never prepared)`);
        if (availabilityOf(mark, batchSize, batch) === 'beyond')
          throw new RangeError(`batch ${batch} is beyond the end of the work set ${JSON.stringify(key)}`);
        if (rows.length !== rowsOfBatch(mark, batchSize, batch))
          throw new Error(`work set ${JSON.stringify(key)}: batch ${batch} is not whole yet (being written)`);
      }
      return rows.map((row) => {
        const entry = workEntry(row.entry);
        // The row's content is personal data: name only its position.
        if (!entry)
          throw new Error(
            `work set ${JSON.stringify(key)} is corrupt: the row at position ${row.ord} is not a work entry`,
          );
        return entry;
      });
    },

    async remove(key) {
      // The growth row first: a normaliser still writing finds its attempt gone and commits nothing more.
      await withoutGrowthTable(pool.query(`DELETE FROM ${GROWTH_TABLE} WHERE key = $1`, [key]), undefined);
      const { rowCount } = await pool.query(`DELETE FROM ${WORK_TABLE} WHERE key = $1`, [key]);
      await pool.query(`DELETE FROM ${WORK_SETS_TABLE} WHERE key = $1`, [key]);
      return rowCount ?? 0;
    },
  };
}

/** The work-set keys a workflow id prepared (for purge), complete or still being written. */
export async function workKeysOf(pool: Pick<Pool, 'query'>, workflowId: string): Promise<string[]> {
  const keysIn = async (table: string) => {
    const { rows } = await pool.query<QueryResultRow>(`SELECT key FROM ${table} WHERE workflow_id = $1`, [workflowId]);
    return rows.map((row) => String(row.key));
  };
  const complete = await keysIn(WORK_SETS_TABLE);
  const growing = await withoutGrowthTable(keysIn(GROWTH_TABLE), []);
  return [...new Set([...complete, ...growing])];
}

/**
 * A database no worker of this version has started on yet (the CLI's purge) has no growth table (42P01): nothing of
 * it to read or remove, `absent` stands for it.
 */
async function withoutGrowthTable<T, A>(query: Promise<T>, absent: A): Promise<T | A> {
  return query.catch((error: unknown) => {
    if ((error as { code?: unknown }).code === '42P01') return absent;
    throw error;
  });
}
