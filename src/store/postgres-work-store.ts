import type { Pool, QueryResultRow } from 'pg';
import { readSourceChunks, type ResolvedSource } from '../source/read-source';
import { normalisedEntries, workEntry, type PrepareSummary } from '../source/work-file';
import { WORK_SETS_TABLE, WORK_TABLE } from './postgres-schema';
import type { WorkStore } from './work-store';

/** Rows per INSERT: one parameter (a JSON array) each, so a million rows are a thousand round trips. */
const INSERT_ROWS = 1000;

/**
 * The work set in PostgreSQL (BACKFILL_STORE=postgres): any worker reads any batch, none needs the preparing
 * worker's disk. The set is written in one transaction with its summary row, so a crash mid-write leaves
 * nothing, and a retry of the preparation finds either the whole set or none of it.
 */
export function createPostgresWorkStore(pool: Pick<Pool, 'query' | 'connect'>): WorkStore {
  const storedSummary = async (key: string): Promise<PrepareSummary | undefined> => {
    const { rows } = await pool.query<QueryResultRow>(
      `SELECT rows, members, skipped, bytes FROM ${WORK_SETS_TABLE} WHERE key = $1`,
      [key],
    );
    const row = rows[0];
    return row
      ? { rows: Number(row.rows), members: Number(row.members), skipped: Number(row.skipped), bytes: Number(row.bytes) }
      : undefined;
  };

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
          await client.query(
            `INSERT INTO ${WORK_TABLE} (key, ord, entry)
             SELECT $1, $2::int + (n - 1)::int, e FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS t(e, n)`,
            [key, ord - chunk.length, json],
          );
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
      if (rows.length === 0) {
        const stored = await storedSummary(key);
        if (!stored)
          throw new Error(`no work set ${JSON.stringify(key)} in ${WORK_SETS_TABLE} (removed, or never prepared)`);
        if (batch * batchSize >= stored.rows)
          throw new RangeError(`batch ${batch} is beyond the end of the work set ${JSON.stringify(key)}`);
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
      const { rowCount } = await pool.query(`DELETE FROM ${WORK_TABLE} WHERE key = $1`, [key]);
      await pool.query(`DELETE FROM ${WORK_SETS_TABLE} WHERE key = $1`, [key]);
      return rowCount ?? 0;
    },
  };
}

/** The work-set keys a workflow id prepared (for purge). */
export async function workKeysOf(pool: Pick<Pool, 'query'>, workflowId: string): Promise<string[]> {
  const { rows } = await pool.query<QueryResultRow>(`SELECT key FROM ${WORK_SETS_TABLE} WHERE workflow_id = $1`, [
    workflowId,
  ]);
  return rows.map((row) => String(row.key));
}
