// `npm run bench:start -- [--starts 6] [--members 20000] [--worker-node-arg=X ...] [--worker-env=NAME=value ...]`:
// the worker's memory as it starts, start after start. This tree is built as `npm run build` builds it, then the
// worker is started as the bench starts it (`npm start`'s node options and environment, bench/worker-child.ts),
// against the simulator, a lean endpoint and a dev server, `--starts` times one after another. For each start it
// prints the resident memory when the worker polls (what the bench's "start ... (RSS ...)" line reads) and the part
// of it in malloc's main arena ([heap] in /proc/<pid>/smaps); with `--members N`, it then runs one backfill of N
// synthetic members on that worker and prints its wall time, the worker's CPU per member and its peak (VmHWM).
// Written for the worker's bimodal start (BENCHMARKS.md, "The worker's start: bimodal RSS"): the spread across
// starts of one build is the figure; the load average is printed with it.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { startChannelSimulator } from '../dev/simulator/channel-simulator';
import { DEFAULT_SYNTHETIC_SEED, syntheticIndexOf, syntheticMember, writeSyntheticCsv } from '../dev/synthetic';
import { findTemporalCli, startDevServer } from '../dev/temporal-cli';
import { shippedWorkerCommand } from '../dev/shipped-worker-command';
import { WORKFLOW_TYPE } from '../workflows/definitions';
import { startLeanReceiver } from './receiver';
import { buildWorkerDist, harnessWorkerEnv, startWorkerChild } from './worker-child';

const ACCESS_KEY = 'start-memory-key';
const ACCESS_SECRET = 'start-memory-secret';
const TOKEN = 'start-memory-token';

interface StartFigures {
  readyMs: number;
  rssMb: number;
  mallocHeapMb: number;
  run?: { ms: number; cpuMsPerMember: number; hwmMb: number };
}

const mb = (kB: number) => Math.round(kB / 102.4) / 10;
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** A "Name:   123 kB" line of /proc/<pid>/status, in kB. */
function statusKb(pid: number, name: string): number {
  const line = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(line?.[1] ?? NaN);
}

/** Resident kB of malloc's main arena: the [heap] mapping of /proc/<pid>/smaps. */
function mallocHeapKb(pid: number): number {
  const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const heap = /\[heap\]\n(?:.*\n)*?Rss:\s+(\d+) kB/.exec(smaps);
  return Number(heap?.[1] ?? 0);
}

/** User + system CPU of a process so far, in ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function options() {
  const { values } = parseArgs({
    options: {
      starts: { type: 'string', default: '6' },
      members: { type: 'string', default: '0' },
      'worker-node-arg': { type: 'string', multiple: true, default: [] },
      'worker-env': { type: 'string', multiple: true, default: [] },
    },
  });
  const workerEnv = Object.fromEntries(
    values['worker-env'].map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
  );
  return {
    starts: Number(values.starts),
    members: Number(values.members),
    nodeArgs: values['worker-node-arg'],
    workerEnv,
  };
}

async function main(): Promise<void> {
  const o = options();
  const work = mkdtempSync(path.join(os.tmpdir(), 'start-memory-'));
  const cleanups: Array<() => unknown> = [() => rmSync(work, { recursive: true, force: true })];
  try {
    console.log(`load ${load()}; building the worker as npm run build does`);
    const { entry } = buildWorkerDist(path.join(work, 'dist'));
    const csv = path.join(work, 'members.csv');
    if (o.members > 0) await writeSyntheticCsv(csv, o.members);
    const simulator = await startChannelSimulator({
      users: [],
      lookupUser: (memberId) => {
        const index = syntheticIndexOf(memberId, DEFAULT_SYNTHETIC_SEED);
        return index === undefined || index >= o.members ? undefined : syntheticMember(index).user;
      },
      countPerMember: false,
      accessKey: ACCESS_KEY,
      accessSecret: ACCESS_SECRET,
    });
    cleanups.push(() => simulator.close());
    const receiver = await startLeanReceiver({ token: TOKEN });
    cleanups.push(() => receiver.close());
    const cli = findTemporalCli({ build: true });
    if (!cli) throw new Error('no Temporal CLI (see docs/development.md)');
    const server = await startDevServer({ cli: cli.path, headless: true, logFile: path.join(work, 'temporal.log') });
    cleanups.push(() => server.stop());
    const connection = await Connection.connect({ address: server.address });
    cleanups.push(() => connection.close());
    const client = new Client({ connection });
    const env = {
      ...harnessWorkerEnv(
        { simulator, receiver, server, dataDir: path.join(work, 'data') },
        {
          accessKey: ACCESS_KEY,
          accessSecret: ACCESS_SECRET,
          webhookToken: TOKEN,
        },
      ),
      ...o.workerEnv,
    };
    const all: StartFigures[] = [];
    for (let i = 1; i <= o.starts; i++) {
      const startedAt = Date.now();
      const taskQueue = `start-memory-${i}`;
      const worker = await startWorkerChild({
        runtime: 'node',
        distEntry: entry,
        env: { ...env, BACKFILL_TASK_QUEUE: taskQueue },
        nodeArgs: o.nodeArgs,
        logFile: path.join(work, `worker-${i}.log`),
      });
      const pid = worker.pid!;
      const figures: StartFigures = {
        readyMs: Date.now() - startedAt,
        rssMb: mb(statusKb(pid, 'VmRSS')),
        mallocHeapMb: mb(mallocHeapKb(pid)),
      };
      if (o.members > 0) {
        const cpuBefore = cpuMs(pid);
        const runStarted = Date.now();
        const input = { source: { type: 'csv' as const, path: csv } };
        const handle = await client.workflow.start(WORKFLOW_TYPE, {
          taskQueue,
          workflowId: `start-memory-${Date.now()}-${i}`,
          args: [input],
        });
        await handle.result();
        figures.run = {
          ms: Date.now() - runStarted,
          cpuMsPerMember: (cpuMs(pid) - cpuBefore) / o.members,
          hwmMb: mb(statusKb(pid, 'VmHWM')),
        };
      }
      await worker.stop(10_000);
      all.push(figures);
      console.log(describeStart(i, figures, o.members));
    }
    console.log(summary(all, [...shippedWorkerCommand().nodeArgs, ...o.nodeArgs], o.workerEnv));
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

function describeStart(i: number, f: StartFigures, members: number): string {
  const run = f.run
    ? `; ${members} members in ${(f.run.ms / 1000).toFixed(1)} s, worker CPU ${f.run.cpuMsPerMember.toFixed(3)} ms a member, VmHWM ${f.run.hwmMb} MB`
    : '';
  return `start ${i}: polling after ${f.readyMs} ms, RSS ${f.rssMb} MB (malloc main arena ${f.mallocHeapMb} MB)${run}; load ${load()}`;
}

function summary(all: StartFigures[], nodeArgs: string[], workerEnv: Record<string, string>): string {
  const list = (values: number[]) => values.map((v) => v.toFixed(1)).join(', ');
  const runs = all.flatMap((f) => (f.run ? [f.run] : []));
  return [
    `node options ${nodeArgs.join(' ')}${Object.keys(workerEnv).length ? `; extra env ${JSON.stringify(workerEnv)}` : ''}`,
    `RSS at ready (MB): ${list(all.map((f) => f.rssMb))}`,
    `malloc main arena at ready (MB): ${list(all.map((f) => f.mallocHeapMb))}`,
    ...(runs.length
      ? [
          `VmHWM after the run (MB): ${list(runs.map((r) => r.hwmMb))}`,
          `worker CPU a member (ms): ${runs.map((r) => r.cpuMsPerMember.toFixed(3)).join(', ')}`,
        ]
      : []),
    `load ${load()}`,
  ].join('\n');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
