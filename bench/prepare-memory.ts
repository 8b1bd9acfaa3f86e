// `npm run bench:prepare -- --n 10000000 [--store postgres] [--sample-ms 5000]`: preparation alone (read, check, find
// duplicates, normalise into the work set) over a synthetic CSV of N rows, in a child process started with the node
// options and environment of `npm start`, on this tree built as `npm run build` builds it. Prints the rows, wall and
// CPU time, and the child's peak resident memory (VmHWM). What the worker's preparation costs at ten million rows
// without running ten million lookups (issue 26: flat memory): about a minute instead of an hour.
// `--store file` (default) prepares the work file whole; `--store postgres` writes the growing PostgreSQL work set
// (the normaliser's write beside the batches, src/store/postgres-growing-work.ts) into a throwaway PostgreSQL, its
// batches read through the same pool as they become readable.
// Every `--sample-ms` the child prints a sample of where its memory is: RSS, V8 heap, external and array buffers,
// and /proc/self/smaps split into [heap] (malloc's main arena) and the other anonymous mappings.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { shippedWorkerCommand } from '../dev/shipped-worker-command';
import { writeSyntheticCsv } from '../dev/synthetic';
import { startTestPostgres, type TestPostgres } from '../test/support/postgres';
import { buildWorkerDist } from './worker-child';

/** Run in the child: where its memory is, as one JSON line on stderr, every `sampleMs`. */
const SAMPLER = `
const { readFileSync } = require('node:fs');
const mb = (bytes) => Math.round(bytes / 104857.6) / 10;
function smaps() {
  const kinds = { heap: 0, anon: 0, other: 0 };
  let kind = 'other';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \\S+ \\S+ \\S+ \\S+\\s*(.*)$/.exec(line);
    if (head) kind = head[1] === '[heap]' ? 'heap' : head[1] === '' ? 'anon' : 'other';
    else if (line.startsWith('Rss:')) kinds[kind] += Number(/(\\d+)/.exec(line)[1]) * 1024;
  }
  return kinds;
}
const started = Date.now();
function sample(label) {
  const m = process.memoryUsage();
  const s = smaps();
  console.error(JSON.stringify({ label, s: Math.round((Date.now() - started) / 1000), rss: mb(m.rss),
    heapUsed: mb(m.heapUsed), heapTotal: mb(m.heapTotal), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers),
    mallocHeap: mb(s.heap), anon: mb(s.anon), mapped: mb(s.other) }));
}
setInterval(sample, Number(process.env.SAMPLE_MS), 'sample').unref();
`;

/** Run in the child: prepares the work set and prints what it cost as one JSON line. */
const CHILD = `${SAMPLER}
const [dist, csv, workFile, store] = process.argv.slice(1);
async function prepare() {
  if (store === 'file') return require(dist + '/src/source/work-file.js').prepareWorkFile({ type: 'csv', path: csv }, workFile);
  const { Pool } = require('pg');
  const { STORE_DDL } = require(dist + '/src/store/postgres-schema.js');
  const { createPostgresWorkStore } = require(dist + '/src/store/postgres-work-store.js');
  const pool = new Pool({ connectionString: process.env.BENCH_DATABASE_URL, max: 2 });
  for (const ddl of STORE_DDL) await pool.query(ddl);
  const work = createPostgresWorkStore(pool);
  // The batches read beside the write through the same pool, as the worker's batch activities do (at full speed).
  let readable = 0, read = 0, reading;
  const readOn = async () => { while (read < readable) await work.readBatch(workFile, 1000, read++); reading = undefined; };
  const grown = await work.writeGrowing({ key: workFile, owner: { workflowId: 'bench-prepare' },
    spec: { type: 'csv', path: csv }, batchSize: 1000,
    onBatch: (batches) => { readable = batches; reading ??= readOn(); } });
  while (reading) await reading;
  await pool.end();
  return grown;
}
prepare().then((summary) => {
  sample('end');
  const cpu = process.cpuUsage();
  const hwm = /VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'));
  console.log(JSON.stringify({ ...summary, wallMs: Date.now() - started, cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    peakRssMb: hwm ? Number(hwm[1]) / 1024 : null }));
});
`;

function argValue(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const value = i === -1 ? fallback : Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
}

function storeArg(): 'file' | 'postgres' {
  const i = process.argv.indexOf('--store');
  const store = i === -1 ? 'file' : process.argv[i + 1];
  if (store !== 'file' && store !== 'postgres') throw new Error('--store must be file or postgres');
  return store;
}

async function main(): Promise<void> {
  const n = argValue('--n', 1_000_000);
  const sampleMs = argValue('--sample-ms', 5_000);
  const store = storeArg();
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-prepare-'));
  let postgres: TestPostgres | undefined;
  try {
    const dist = path.join(dir, 'dist');
    buildWorkerDist(dist);
    const csv = path.join(dir, 'members.csv');
    const written = Date.now();
    await writeSyntheticCsv(csv, n);
    console.log(`data set: ${n} rows written in ${((Date.now() - written) / 1000).toFixed(1)} s`);
    postgres = store === 'postgres' ? await startTestPostgres() : undefined;
    const databaseUrl = postgres ? await postgres.createDatabase('bench_prepare') : '';
    const shipped = shippedWorkerCommand();
    const child = spawnSync(
      process.execPath,
      [...shipped.nodeArgs, '-e', CHILD, dist, csv, path.join(dir, 'work', 'members.jsonl'), store],
      {
        env: { ...process.env, ...shipped.env, SAMPLE_MS: String(sampleMs), BENCH_DATABASE_URL: databaseUrl },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 64 * 1024 * 1024,
      },
    );
    if (child.status !== 0) throw new Error(`preparation failed (exit ${child.status})`);
    console.log(
      `preparation (${store}) with \`npm start\`'s node options (${shipped.nodeArgs.join(' ')}): ${child.stdout.trim()}`,
    );
  } finally {
    await postgres?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
