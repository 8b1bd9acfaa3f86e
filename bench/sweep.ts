// `tsx bench/sweep.ts [--n 20000] [--batch-sizes 100,250,500,1000] [--parallels 1,2,4] [--member-concurrencies 16,32]
//  [--rounds 2] [--worker-runtime node|tsx] [--json FILE]`
//
// Tries workflow settings for throughput: one `bench/run.ts --skip-script` per combination, round-robin over the
// combinations for each round (so a change in the machine's load hits every combination alike), and prints the
// median members/s and CPU per member of each, best first. Every run is verified against the known answer by
// run.ts itself; a run that fails verification makes the sweep fail.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fmtNumber, formatTable, median } from './args';

const ROOT = path.resolve(__dirname, '..');
const list = (raw: string | undefined, fallback: number[]) =>
  raw ? raw.split(',').map((x) => Number(x.trim())) : fallback;

function main(): number {
  const { values } = parseArgs({
    options: {
      n: { type: 'string' },
      'batch-sizes': { type: 'string' },
      parallels: { type: 'string' },
      'member-concurrencies': { type: 'string' },
      rounds: { type: 'string' },
      'worker-runtime': { type: 'string' },
      json: { type: 'string' },
    },
  });
  const n = Number(values.n ?? 20_000);
  const combos: Array<{ b: number; p: number; c: number }> = [];
  for (const c of list(values['member-concurrencies'], [16]))
    for (const b of list(values['batch-sizes'], [100, 250, 500, 1000]))
      for (const p of list(values.parallels, [1, 2, 4])) combos.push({ b, p, c });
  const rounds = Number(values.rounds ?? 2);
  const runtime = values['worker-runtime'] ?? 'node';
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-sweep-'));
  const results = new Map<string, Array<{ mps: number; cpu: number; load: number }>>();
  let failed = false;
  for (let r = 1; r <= rounds; r++) {
    for (const { b, p, c } of combos) {
      const key = `${b}/${p}/${c}`;
      const json = path.join(tmp, `${key.replace(/\//g, '-')}-${r}.json`);
      const args = [
        'bench/run.ts',
        '--n',
        String(n),
        '--skip-script',
        '--batch-size',
        String(b),
        '--parallel',
        String(p),
        '--member-concurrency',
        String(c),
        '--worker-runtime',
        runtime,
        '--json',
        json,
      ];
      const run = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'tsx'), args, {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 20 * 60_000,
      });
      if (run.status !== 0) {
        failed = true;
        console.error(
          `round ${r}, batchSize ${b}, parallel ${p}, concurrency ${c}: FAILED (exit ${run.status})\n${run.stdout.slice(-3000)}${run.stderr.slice(-3000)}`,
        );
        continue;
      }
      const report = JSON.parse(readFileSync(json, 'utf8')) as {
        summary: { projectMembersPerSecond: number; projectCpuPerMember: number };
        projects: Array<{ load: { before: number[] } }>;
      };
      const entry = {
        mps: report.summary.projectMembersPerSecond,
        cpu: report.summary.projectCpuPerMember,
        load: report.projects[0]?.load.before[0] ?? NaN,
      };
      results.set(key, [...(results.get(key) ?? []), entry]);
      console.log(
        `round ${r}: batchSize ${b}, parallelBatches ${p}, member concurrency ${c}: ${fmtNumber(entry.mps, 1)} members/s, ${entry.cpu.toFixed(3)} CPU ms/member, load ${entry.load}`,
      );
    }
  }
  rmSync(tmp, { recursive: true, force: true });
  const rows = [...results.entries()]
    .map(([key, xs]) => ({ key, mps: median(xs.map((x) => x.mps)), cpu: median(xs.map((x) => x.cpu)), all: xs }))
    .sort((a, b) => b.mps - a.mps);
  console.log(`\nN=${fmtNumber(n)}, worker runtime ${runtime}, ${rounds} round(s), medians, best first:`);
  console.log(
    formatTable([
      ['batchSize/parallelBatches/memberConcurrency', 'members/s', 'CPU ms/member', 'each round (members/s @ load)'],
      ...rows.map((x) => [
        x.key,
        fmtNumber(x.mps, 1),
        x.cpu.toFixed(3),
        x.all.map((a) => `${fmtNumber(a.mps)} @ ${a.load}`).join(', '),
      ]),
    ]),
  );
  if (values.json) writeFileSync(values.json, JSON.stringify({ n, runtime, rounds, rows }, null, 2) + '\n');
  return failed ? 1 : 0;
}

process.exit(main());
