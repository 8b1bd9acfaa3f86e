// `npm run bench -- --store postgres`: the whole benchmark once per store (the file store, then
// BACKFILL_STORE=postgres), each in its own process on a fresh stack with the same options, then both side by
// side. Issue 12's goal: the PostgreSQL store no worse than 2x the file store's time, worker RSS flat.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BENCH_STORES, fmtDuration, fmtMb, fmtNumber, formatTable, median, type BenchStore } from './args';

const ROOT = path.resolve(__dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
export const STORE_TIME_RATIO_TARGET = 2.0;

/** The part of one store's bench-results JSON the comparison reads. */
interface StoreReport {
  summary: { projectMembersPerSecond: number; workerPeakRssBytes: number };
  projects: Array<{
    wallMs: number;
    finished: boolean;
    database?: { bytesPerMember: number; peakGrowthBytes: number };
  }>;
}

export interface StoreFigures {
  store: BenchStore;
  exitCode: number;
  wallMs: number | undefined;
  membersPerSecond: number | undefined;
  workerPeakRssBytes: number | undefined;
  databaseBytesPerMember: number | undefined;
}

/** argv without the options the comparison sets itself for each store (--store, --store-alone, --json). */
export function storeRunArgs(argv: readonly string[], store: BenchStore, json: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--store' || a === '--json') i++;
    else if (a.startsWith('--store=') || a.startsWith('--json=') || a === '--store-alone') continue;
    else out.push(a);
  }
  return [...out, '--store', store, '--store-alone', '--json', json];
}

export function storeFigures(store: BenchStore, exitCode: number, report: StoreReport | undefined): StoreFigures {
  const db = report?.projects.flatMap((p) => (p.database ? [p.database.bytesPerMember] : [])) ?? [];
  const walls = report?.projects.filter((p) => p.finished).map((p) => p.wallMs) ?? [];
  return {
    store,
    exitCode,
    wallMs: walls.length ? median(walls) : undefined,
    membersPerSecond: report?.summary.projectMembersPerSecond,
    workerPeakRssBytes: report?.summary.workerPeakRssBytes,
    databaseBytesPerMember: db.length ? median(db) : undefined,
  };
}

export function renderStoreComparison(figures: readonly StoreFigures[]): string {
  const file = figures.find((f) => f.store === 'file');
  const rows = [['store', 'wall time (median)', 'members/s', 'worker peak RSS', 'database per member', 'time vs file']];
  for (const f of figures) {
    const ratio = file?.wallMs && f.wallMs ? f.wallMs / file.wallMs : undefined;
    rows.push([
      f.exitCode === 0 ? f.store : `${f.store} (FAILED, exit ${f.exitCode})`,
      fmtDuration(f.wallMs),
      fmtNumber(f.membersPerSecond),
      fmtMb(f.workerPeakRssBytes),
      f.databaseBytesPerMember === undefined ? '-' : `${fmtNumber(f.databaseBytesPerMember)} B`,
      ratio === undefined ? '-' : `${ratio.toFixed(2)}x`,
    ]);
  }
  const pg = figures.find((f) => f.store === 'postgres');
  const ratio = file?.wallMs && pg?.wallMs ? pg.wallMs / file.wallMs : undefined;
  const verdict =
    ratio === undefined
      ? 'target (postgres <= 2x the file store time): not measured'
      : `target (postgres <= ${STORE_TIME_RATIO_TARGET}x the file store time): ${ratio <= STORE_TIME_RATIO_TARGET ? 'met' : 'NOT met'} (${ratio.toFixed(2)}x)`;
  return `stores compared:\n${formatTable(rows)}\n${verdict}`;
}

export async function compareStores(argv: readonly string[], log: (line: string) => void): Promise<number> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const figures: StoreFigures[] = [];
  for (const store of BENCH_STORES) {
    const json = path.join(ROOT, 'bench-results', `${stamp}-${store}.json`);
    mkdirSync(path.dirname(json), { recursive: true });
    log(`==== store ${store}`);
    const child = spawn(TSX, [path.join(__dirname, 'run.ts'), ...storeRunArgs(argv, store, json)], {
      stdio: 'inherit',
    });
    const exitCode = await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
    let report: StoreReport | undefined;
    try {
      report = JSON.parse(readFileSync(json, 'utf8')) as StoreReport;
    } catch {
      report = undefined;
    }
    figures.push(storeFigures(store, exitCode, report));
  }
  const text = renderStoreComparison(figures);
  console.log(`\n${text}`);
  const combined = path.join(ROOT, 'bench-results', `${stamp}-stores.json`);
  writeFileSync(combined, JSON.stringify({ kind: 'webhook-backfill store comparison', figures }, null, 2) + '\n');
  console.log(`\nstore comparison written to ${path.relative(process.cwd(), combined)}`);
  return figures.every((f) => f.exitCode === 0) ? 0 : 1;
}
