// The PostgreSQL work set written while its batches already run (issue 26 item 1, BACKFILL_STORE=postgres), on a
// real PostgreSQL: the same rows and counts as the whole preparation, each batch readable by another worker (another
// pool) once its rows are committed and never before, a retried write after a crash or beside a stuck attempt that
// resumes without a row twice or missing, and a source changed under the committed rows refused. Last, a whole run on
// a real Temporal dev server: its first lookup comes while the source is still being normalised into PostgreSQL.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticUsers, writeSyntheticCsv } from '../../dev/synthetic';
import type { DevServer } from '../../dev/temporal-cli';
import { WORKFLOW_TYPE, type BackfillInput } from '../../workflows/definitions';
import { createFileAuditStore } from '../../src/audit/audit-store';
import { SourceChangedError } from '../../src/source/growing-work-file';
import { selectForVerify } from '../../src/source/verify-selection';
import type { ResolvedSource } from '../../src/source/read-source';
import {
  COMMIT_ROWS,
  SupersededWriteError,
  writeGrowingWorkSet,
  type GrowingWorkSet,
} from '../../src/store/postgres-growing-work';
import { createStoreTables, GROWTH_TABLE, WORK_SETS_TABLE, WORK_TABLE } from '../../src/store/postgres-schema';
import { createPostgresWorkStore, workKeysOf } from '../../src/store/postgres-work-store';
import type { WorkStore } from '../../src/store/work-store';
import { mixedCsv } from '../support/growing-source';
import { auditPathOf } from '../support/known-answer';
import { startTestPostgres, type TestPostgres } from '../support/postgres';
import { startStack, startTestServer, waitFor } from '../support/stack';

let pg: TestPostgres;
let dir: string;
let cases = 0;
const pools: Pool[] = [];

beforeAll(async () => {
  [pg, dir] = await Promise.all([startTestPostgres(), mkdtemp(path.join(tmpdir(), 'pg-growing-work-test-'))]);
}, 120_000);
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await pg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const OWNER = { workflowId: 'growing-test' };

/** A source of `rows` rows and a fresh database; `other` is a second worker's store on the same database. */
async function setUp(rows: number) {
  const name = `growing_${++cases}`;
  const url = await pg.createDatabase(name);
  const pool = new Pool({ connectionString: url, max: 4 });
  const otherPool = new Pool({ connectionString: url, max: 2 });
  pools.push(pool, otherPool);
  // The server stops at the end of the file: an idle client it terminates then is not a failure of any test.
  for (const p of [pool, otherPool]) p.on('error', () => undefined);
  await createStoreTables(pool);
  const source = path.join(dir, `source-${cases}.csv`);
  await writeFile(source, mixedCsv(rows));
  const spec = { type: 'csv', path: source } satisfies ResolvedSource;
  const write = (o: Partial<GrowingWorkSet> = {}) =>
    writeGrowingWorkSet(pool, { key: 'growing', owner: OWNER, spec, batchSize: 100, ...o });
  return { spec, pool, store: createPostgresWorkStore(pool), other: createPostgresWorkStore(otherPool), write };
}

/** Every batch of the set under `key`, read as a batch reads it. */
async function batchesOf(store: WorkStore, key: string, batchSize: number, batches: number) {
  const all = [];
  for (let batch = 0; batch < batches; batch++) all.push(await store.readBatch(key, batchSize, batch));
  return all;
}

/** The rows under `key`: their count, whether their positions run 0..n-1, and memberIds held by two rows. */
async function rowsCheck(pool: Pool, key: string) {
  const [row] = (
    await pool.query(
      `SELECT count(*)::int AS rows, coalesce(max(ord), -1) + 1 AS span,
              count(entry->'member'->>'memberId') - count(DISTINCT entry->'member'->>'memberId') AS twice
       FROM ${WORK_TABLE} WHERE key = $1`,
      [key],
    )
  ).rows;
  return { rows: Number(row.rows), span: Number(row.span), twice: Number(row.twice) };
}

/** A first attempt that dies once `stopAfter` batches are readable (its worker killed), as a retry finds it. */
async function crashAfter(write: (o?: Partial<GrowingWorkSet>) => Promise<unknown>, stopAfter: number) {
  const crash = new Error('worker died');
  await expect(
    write({
      onBatch: (readable) => {
        if (readable >= stopAfter) throw crash;
      },
    }),
  ).rejects.toBe(crash);
}

describe('the growing PostgreSQL work set', () => {
  it.each([
    [1, 1],
    [25, 10],
    [2_000, 100],
    [2_001, 100],
    [3_099, 7],
  ])('%i rows in batches of %i: the rows and counts of the whole preparation', async (rows, batchSize) => {
    const { spec, store, pool, write } = await setUp(rows);
    const grown = await write({ batchSize });
    const summary = await store.write(spec, 'whole', undefined, OWNER);
    const batches = await store.buildBatches('whole', batchSize);
    expect(grown).toEqual({ ...summary, batches });
    if (rows > 10) expect(Math.min(summary.members, summary.skipped)).toBeGreaterThan(0);
    expect(await batchesOf(store, 'growing', batchSize, batches)).toEqual(
      await batchesOf(store, 'whole', batchSize, batches),
    );
    expect(await rowsCheck(pool, 'growing')).toEqual({ rows, span: rows, twice: 0 });
    expect(await store.batchAvailability!('growing', batchSize, batches - 1)).toBe('ready');
    expect(await store.batchAvailability!('growing', batchSize, batches)).toBe('beyond');
  });

  it('a verify export with an unreadable row in its middle: the replayed member it lacks is a bad row naming it, whole and growing', async () => {
    const { pool, store } = await setUp(1);
    const replays = [2, 3, 4].map((line) => ({
      ts: '2024-12-01T00:00:00.000Z',
      backfill: 'bf',
      runLabel: 'bf',
      line,
      memberId: `m-${line}`,
      outcome: line === 3 ? 'delete' : 'upsert',
      ...(line === 3 ? { reason: 'not-found' } : { fields: ['email'] }),
      delivered: true,
      dryRun: false,
    }));
    const auditPath = path.join(dir, 'verify-unread-repair.jsonl');
    await writeFile(auditPath, replays.map((e) => JSON.stringify(e)).join('\n') + '\n');
    const exported = path.join(dir, 'verify-unread-export.csv');
    const header = 'memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting';
    await writeFile(
      exported,
      [header, 'm-2,,,,', ',,nobody@example.com,,', 'lost@example.com', 'm-4,,,,'].join('\n') + '\n',
    );
    const spec = { type: 'csv', path: exported } satisfies ResolvedSource;
    const audit = createFileAuditStore();
    const whole = await selectForVerify(audit, auditPath);
    await store.write(spec, 'verify-whole', whole.select, OWNER, whole.absent);
    const growing = await selectForVerify(audit, auditPath);
    await writeGrowingWorkSet(pool, {
      key: 'verify-growing',
      owner: OWNER,
      spec,
      batchSize: 2,
      ...growing,
      after: growing.absent,
    });
    for (const key of ['verify-whole', 'verify-growing']) {
      const entries = (await batchesOf(store, key, 2, 2)).flat();
      expect(
        entries.map((e) => e.line),
        key,
      ).toEqual([2, 4, 3]);
      expect(entries[2], key).toEqual({
        line: 3,
        memberId: 'm-3',
        repair: { event: 'delete', reason: 'not-found', deliveredAt: Date.parse(replays[0]!.ts) },
        skip: "the export's line 4 (has 1 fields, the header has 5) cannot be read and may be its row",
      });
    }
  });

  it('makes each batch readable to another worker once its rows are committed, and tells when they are not', async () => {
    const { other, write } = await setUp(3_500);
    const states = () => Promise.all([0, 9, 10, 34].map((batch) => other.batchAvailability!('growing', 100, batch)));
    let checks: Promise<void> = Promise.resolve();
    const seen: Array<{ readable: number; states: string[]; first: number }> = [];
    await write({
      onBatch: (readable) => {
        if (readable === 10)
          checks = checks.then(async () => {
            seen.push({ readable, states: await states(), first: (await other.readBatch('growing', 100, 9)).length });
          });
      },
    });
    await checks;
    // Checked right after the first commit (rows 0-999): the writer may have gone on meanwhile, never back.
    expect(seen[0]!.states.slice(0, 2)).toEqual(['ready', 'ready']);
    expect(seen[0]!.states[3]).toBe('waiting');
    expect(seen[0]!.first).toBe(100);
    expect(await states()).toEqual(['ready', 'ready', 'ready', 'ready']);
    expect(await other.batchAvailability!('growing', 100, 35)).toBe('beyond');
  });

  it.each([1, 2])(
    'a write whose worker died after %i commit(s) resumes: exact counts, no row twice or missing, batches read before unchanged',
    async (commits) => {
      const { spec, store, pool, write } = await setUp(3_456);
      await crashAfter(write, (commits * COMMIT_ROWS) / 100);
      const before = await store.readBatch('growing', 100, 9);
      expect(await store.batchAvailability!('growing', 100, (commits * COMMIT_ROWS) / 100)).toBe('waiting');
      const grown = await write();
      const summary = await store.write(spec, 'whole', undefined, OWNER);
      expect(grown).toEqual({ ...summary, batches: 35 });
      expect(await batchesOf(store, 'growing', 100, 35)).toEqual(await batchesOf(store, 'whole', 100, 35));
      expect(await rowsCheck(pool, 'growing')).toEqual({ rows: 3_456, span: 3_456, twice: 0 });
      expect(await store.readBatch('growing', 100, 9)).toEqual(before);
    },
  );

  it('a stuck attempt that writes on beside its retry stops at its next commit; the set is whole and exact', async () => {
    const { spec, store, pool, write } = await setUp(5_000);
    let retry: Promise<PromiseSettledResult<unknown>[]> | undefined;
    const stuck = await Promise.allSettled([
      write({
        onBatch: (readable) => {
          if (readable === 10) retry ??= Promise.allSettled([write()]);
        },
      }),
    ]);
    const outcomes = [...stuck, ...(await retry!)];
    expect(outcomes.map((o) => o.status)).toContain('fulfilled');
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(SupersededWriteError);
    const summary = await store.write(spec, 'whole', undefined, OWNER);
    expect(await batchesOf(store, 'growing', 100, 50)).toEqual(await batchesOf(store, 'whole', 100, 50));
    expect(await rowsCheck(pool, 'growing')).toEqual({ rows: summary.rows, span: summary.rows, twice: 0 });
  });

  it.each([
    ['a row changed before the committed rows end', (text: string) => text.replace('u5@example.com', 'v5@example.com')],
    ['the source cut short', (text: string) => text.split('\n').slice(0, 500).join('\n') + '\n'],
  ])('a retried write refuses a source that changed under the committed rows: %s', async (_name, change) => {
    const { spec, write, store } = await setUp(2_345);
    await crashAfter(write, 10);
    await writeFile(spec.path, change(await readFile(spec.path, 'utf8')));
    await expect(write()).rejects.toThrow(SourceChangedError);
    expect(await store.batchAvailability!('growing', 100, 10)).toBe('waiting');
  });

  it('a retried write over a source changed only after the committed rows goes on', async () => {
    const { spec, write } = await setUp(2_345);
    await crashAfter(write, 10);
    await writeFile(spec.path, (await readFile(spec.path, 'utf8')).replace('u2200@example.com', 'w@example.com'));
    expect(await write()).toMatchObject({ rows: 2_345, batches: 24 });
  });

  it('commits end on batch boundaries: a batch is all there or has no row (what a worker of the previous version reads)', async () => {
    const { pool, store, write } = await setUp(2_500);
    await crashAfter((o) => write({ ...o, batchSize: 300 }), 1);
    // The first commit is the first batch boundary at or after COMMIT_ROWS rows: 1,200 rows, four whole batches.
    expect(await rowsCheck(pool, 'growing')).toEqual({ rows: 1_200, span: 1_200, twice: 0 });
    expect(await store.readBatch('growing', 300, 3)).toHaveLength(300);
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${WORK_TABLE} WHERE ord >= 1200 AND ord < 1500`);
    expect(rows[0].n).toBe(0);
  });

  it('a batch not whole yet is refused, not returned short; a complete set is not written again', async () => {
    const { spec, pool, store, write } = await setUp(1_500);
    await crashAfter((o) => write({ ...o, batchSize: 300 }), 3);
    // As a set committed by other boundaries leaves it: rows 0-999, so batch 3 (rows 900-1199) holds 100 of its 300.
    await pool.query(`DELETE FROM ${WORK_TABLE} WHERE ord >= 1000`);
    await pool.query(`UPDATE ${GROWTH_TABLE} SET written = 1000`);
    await expect(store.readBatch('growing', 300, 3)).rejects.toThrow('batch 3 is not whole yet');
    expect(await store.batchAvailability!('growing', 300, 3)).toBe('waiting');
    await pool.query(`DELETE FROM ${WORK_TABLE}`);
    await pool.query(`DELETE FROM ${GROWTH_TABLE}`);
    const grown = await write({ batchSize: 300 });
    expect(await store.readBatch('growing', 300, 4)).toHaveLength(300);
    await rm(spec.path);
    expect(await write({ batchSize: 300 })).toEqual(grown);
  });

  it('removed while it is written (purge): the write stops and leaves no row', async () => {
    const { pool, store, write } = await setUp(4_000);
    let removal: Promise<number> | undefined;
    await expect(
      write({
        onBatch: (readable) => {
          if (readable === 10) removal ??= store.remove('growing');
        },
      }),
    ).rejects.toThrow(SupersededWriteError);
    await removal;
    expect(await rowsCheck(pool, 'growing')).toMatchObject({ rows: 0 });
  });

  it('purge finds a set still being written; a database of the previous version (no growth table) keeps working', async () => {
    const { pool, store, spec, write } = await setUp(1_200);
    await crashAfter(write, 10);
    expect(await workKeysOf(pool, OWNER.workflowId)).toEqual(['growing']);
    expect(await store.remove('growing')).toBe(1_000);

    await pool.query(`DROP TABLE ${GROWTH_TABLE}`);
    expect(await store.write(spec, 'whole', undefined, OWNER)).toMatchObject({ rows: 1_200 });
    expect(await workKeysOf(pool, OWNER.workflowId)).toEqual(['whole']);
    expect(await store.readBatch('whole', 100, 11)).toHaveLength(100);
    expect(await store.remove('whole')).toBe(1_200);
    // The next worker start adds the table; the growing write then works on that database.
    await createStoreTables(pool);
    expect(await write()).toMatchObject({ rows: 1_200, batches: 12 });
  });
});

/** Long enough that normalising it into PostgreSQL takes seconds here, while the first batch needs milliseconds. */
const LONG_SOURCE = 100_000;

describe('a run on BACKFILL_STORE=postgres over a long source', () => {
  let server: DevServer;
  beforeAll(async () => {
    server = await startTestServer();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('looks the first member up before the source is fully normalised into the work set', async () => {
    const name = 'long_source';
    const url = await pg.createDatabase(name);
    const csv = path.join(dir, 'long.csv');
    await writeSyntheticCsv(csv, LONG_SOURCE);
    const stack = await startStack({
      server,
      users: syntheticUsers(LONG_SOURCE),
      env: { BACKFILL_STORE: 'postgres', BACKFILL_DATABASE_URL: url },
    });
    try {
      const input: BackfillInput = { source: { type: 'csv', path: csv }, batchSize: 50 };
      const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId: 'backfill-long-source',
        args: [input],
      });
      const auditPath = await auditPathOf(handle);
      const [complete] = await waitFor(
        'the source normalised',
        async () => {
          const rows = await pg.query(`SELECT created_at, rows FROM ${WORK_SETS_TABLE}`, [], name);
          return rows.length > 0 ? rows : undefined;
        },
        120_000,
      );
      await handle.terminate('enough: the order of the first lookup and the normaliser is known');
      const [first] = await pg.query(
        'SELECT min(recorded_at) AS at, count(*)::int AS recorded FROM backfill_audit WHERE key = $1 AND recorded_at < $2',
        [auditPath, complete!.created_at],
        name,
      );
      // Members were recorded (so looked up) before the normaliser committed the source's last rows.
      expect(complete!.rows).toBe(LONG_SOURCE);
      expect(first!.recorded).toBeGreaterThan(0);
      const lead = (complete!.created_at as Date).getTime() - (first!.at as Date).getTime();
      console.log(
        `long source (${LONG_SOURCE} rows, PostgreSQL store): ${first!.recorded as number} members recorded before the work set was complete; first record ${lead} ms before it`,
      );
    } finally {
      await stack.close();
    }
  }, 240_000);
});
