// `npm run bench:prepare -- --n 10000000`: preparation alone (read, check, find duplicates, normalise into the work
// file) over a synthetic CSV of N rows, in a child process started with the node options and environment of
// `npm start`, on this tree built as `npm run build` builds it. Prints the rows, wall and CPU time, and the child's
// peak resident memory (VmHWM). What the worker's preparation costs at ten million rows without running ten
// million lookups (issue 26: flat memory): about a minute instead of an hour.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { shippedWorkerCommand } from '../dev/shipped-worker-command';
import { writeSyntheticCsv } from '../dev/synthetic';
import { buildWorkerDist } from './worker-child';

/** Run in the child: prepares the work file and prints what it cost as one JSON line. */
const CHILD = `
const { readFileSync } = require('node:fs');
const [dist, csv, workFile] = process.argv.slice(1);
const { prepareWorkFile } = require(dist + '/src/source/work-file.js');
const started = Date.now();
prepareWorkFile({ type: 'csv', path: csv }, workFile).then((summary) => {
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

async function main(): Promise<void> {
  const n = argValue('--n', 1_000_000);
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-prepare-'));
  try {
    const dist = path.join(dir, 'dist');
    buildWorkerDist(dist);
    const csv = path.join(dir, 'members.csv');
    const written = Date.now();
    await writeSyntheticCsv(csv, n);
    console.log(`data set: ${n} rows written in ${((Date.now() - written) / 1000).toFixed(1)} s`);
    const shipped = shippedWorkerCommand();
    const child = spawnSync(
      process.execPath,
      [...shipped.nodeArgs, '-e', CHILD, dist, csv, path.join(dir, 'work', 'members.jsonl')],
      { env: { ...process.env, ...shipped.env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
    );
    if (child.status !== 0) throw new Error(`preparation failed (exit ${child.status})`);
    console.log(
      `preparation with \`npm start\`'s node options (${shipped.nodeArgs.join(' ')}): ${child.stdout.trim()}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
