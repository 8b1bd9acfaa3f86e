// What the benchmark needs of the PostgreSQL store (--store postgres): the database's growth while a run lasts,
// and the audit table exported to a JSONL file so both stores' logs are checked by the same reader.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Pool } from 'pg';
import { createPostgresAuditStore } from '../src/audit/postgres-audit-store';

const SAMPLE_EVERY_MS = 1_000;

export interface DatabaseGrowth {
  /** Largest size seen during the run minus the size before it. */
  peakGrowthBytes: number;
  samples: number;
}

/** Samples pg_database_size every second from now; stop() takes a last sample and returns the peak growth. */
export async function startDatabaseSizeSampler(pool: Pool): Promise<{ stop(): Promise<DatabaseGrowth> }> {
  const size = async () =>
    Number(
      (await pool.query<{ bytes: string }>('SELECT pg_database_size(current_database()) AS bytes')).rows[0]!.bytes,
    );
  const before = await size();
  let peak = before;
  let samples = 0;
  let pending: Promise<void> = Promise.resolve();
  const sample = () => {
    pending = size().then(
      (bytes) => {
        samples += 1;
        peak = Math.max(peak, bytes);
      },
      () => undefined, // a sample lost to a busy moment is just skipped
    );
  };
  const timer = setInterval(sample, SAMPLE_EVERY_MS);
  return {
    async stop() {
      clearInterval(timer);
      await pending;
      sample();
      await pending;
      return { peakGrowthBytes: peak - before, samples };
    },
  };
}

/** The audit records of `key`, in line order, one JSON object per line into `file` (streamed, never all in memory). */
export async function exportAuditTable(pool: Pool, key: string, file: string): Promise<string> {
  const out = createWriteStream(file);
  for await (const entry of createPostgresAuditStore(pool).entries(key)) {
    if (!out.write(`${JSON.stringify(entry)}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return file;
}
