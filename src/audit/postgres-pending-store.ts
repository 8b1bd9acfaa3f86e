import type { Pool, QueryResultRow } from 'pg';
import { PENDING_TABLE } from '../store/postgres-schema';
import type { PendingLines, PendingReplay, PendingStore } from './pending-store';

/**
 * Pending replays in PostgreSQL (BACKFILL_STORE=postgres): the batch that deferred a replay and the activity
 * that sends it may run on different workers. `dir` (the run's pendingDir) is only the key. Settling clears
 * the payload (personal data) in the same statement that sets the marker.
 */
export function createPostgresPendingStore(pool: Pick<Pool, 'query'>): PendingStore {
  return {
    async put(dir, replay) {
      await pool.query(
        `INSERT INTO ${PENDING_TABLE} (key, line, workflow_id, payload, settled) VALUES ($1, $2, $3, $4::jsonb, false)
         ON CONFLICT (key, line) DO UPDATE SET payload = EXCLUDED.payload, updated_at = now() WHERE NOT ${PENDING_TABLE}.settled`,
        [dir, replay.line, replay.base.backfill ?? '', JSON.stringify(replay)],
      );
    },
    async get(dir, line) {
      const { rows } = await pool.query<QueryResultRow>(
        `SELECT payload FROM ${PENDING_TABLE} WHERE key = $1 AND line = $2 AND payload IS NOT NULL`,
        [dir, line],
      );
      return rows[0] ? (rows[0].payload as PendingReplay) : undefined;
    },
    async settle(dir, line) {
      await pool.query(
        `INSERT INTO ${PENDING_TABLE} (key, line, workflow_id, payload, settled)
         SELECT $1, $2, coalesce((SELECT workflow_id FROM ${PENDING_TABLE} WHERE key = $1 AND line = $2), ''), NULL, true
         ON CONFLICT (key, line) DO UPDATE SET payload = NULL, settled = true, updated_at = now()`,
        [dir, line],
      );
    },
    async lines(dir, lines) {
      const found: PendingLines = { pending: new Set(), settled: new Set() };
      const wanted = [...new Set(lines)].filter(
        (line) => Number.isSafeInteger(line) && line > 0 && line <= 2_147_483_647,
      );
      if (wanted.length === 0) return found;
      const { rows } = await pool.query<QueryResultRow>(
        `SELECT line, settled FROM ${PENDING_TABLE} WHERE key = $1 AND line = ANY ($2::int[])`,
        [dir, wanted],
      );
      for (const row of rows) found[row.settled === true ? 'settled' : 'pending'].add(Number(row.line));
      return found;
    },
    // One database for every worker: what is not in it is lost, not elsewhere.
    reachable: async () => true,
    async remove(dir) {
      const { rowCount } = await pool.query(`DELETE FROM ${PENDING_TABLE} WHERE key = $1`, [dir]);
      return rowCount ?? 0;
    },
  };
}

/** The pending keys of a workflow id (for purge). */
export async function pendingKeysOf(pool: Pick<Pool, 'query'>, workflowId: string): Promise<string[]> {
  const { rows } = await pool.query<QueryResultRow>(
    `SELECT DISTINCT key FROM ${PENDING_TABLE} WHERE workflow_id = $1`,
    [workflowId],
  );
  return rows.map((row) => String(row.key));
}
