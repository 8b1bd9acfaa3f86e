// Measuring the benchmark's processes from /proc (Linux): resident memory of a process tree sampled every
// 250 ms (and each process's own high-water mark, VmHWM), CPU time per process and per thread; and the
// workflow side: every run of a continue-as-new chain with its history size in events and bytes, and the
// timing of its batch activities read back from the history (where Temporal's round trips show).
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { historyActions, type HistoryActions } from './actions';
import { summarize } from './args';

const CLK_TCK = 100; // USER_HZ; Linux reports /proc times in these ticks on every mainstream architecture
const PAGE_KB = 4;

// ---------------------------------------------------------------------------------------------------------
// Processes

interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** User + system CPU of the process (all its threads), ms. */
  cpuMs: number;
  rssBytes: number;
}

/** Fields of /proc/<pid>/stat (or /proc/<pid>/task/<tid>/stat); undefined when the process is gone. */
function readStat(file: string): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  // comm is in parentheses and may itself hold spaces and parentheses: split after the last ')'.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state): field k is rest[k - 3].
  const utime = Number(rest[14 - 3]);
  const stime = Number(rest[15 - 3]);
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    ppid: Number(rest[4 - 3]),
    cpuMs: ((utime + stime) * 1000) / CLK_TCK,
    rssBytes: Number(rest[24 - 3]) * PAGE_KB * 1024,
  };
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** `root` and all its descendants that are alive now. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const pid of allPids()) {
    const s = readStat(`/proc/${pid}/stat`);
    if (!s) continue;
    const list = children.get(s.ppid);
    if (list) list.push(pid);
    else children.set(s.ppid, [pid]);
  }
  const tree: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    if (pid !== root || readStat(`/proc/${pid}/stat`)) tree.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** VmRSS and VmHWM (peak resident set) of one process, bytes; undefined when it is gone. */
export function memoryOf(pid: number): { rss: number; hwm: number } | undefined {
  const bytes = procSizes(`/proc/${pid}/status`);
  return bytes && { rss: bytes('VmRSS'), hwm: bytes('VmHWM') };
}

/** A reader of the `Name:  123 kB` lines of a /proc file, in bytes (NaN when absent); undefined when it cannot be read. */
function procSizes(file: string): ((name: string) => number) | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  return (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
}

/** Resident memory split: anonymous (heaps, stacks, malloc) and file-backed (the node binary, native modules). */
export function residentSplit(pid: number): { anonBytes: number; fileBytes: number } | undefined {
  const kb = procSizes(`/proc/${pid}/smaps_rollup`);
  if (!kb) return undefined;
  const rss = kb('Rss');
  const anon = kb('Anonymous');
  if (!Number.isFinite(rss) || !Number.isFinite(anon)) return undefined;
  return { anonBytes: anon, fileBytes: rss - anon };
}

export interface ThreadCpu {
  comm: string;
  threads: number;
  cpuMs: number;
}

/** CPU ms per thread name ("main JS thread", "node" for Node's helper threads, "tokio-runtime-w" for Temporal core...) of one process. */
export function threadCpu(pid: number): ThreadCpu[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const byName = new Map<string, ThreadCpu>();
  for (const tid of tids) {
    const s = readStat(`/proc/${pid}/task/${tid}/stat`);
    if (!s) continue;
    // The process's first thread runs the JavaScript event loop; Node's other threads (libuv pool, V8 helpers)
    // are all named "node" too. Numbered pools share one name; strip digits anyway.
    const name = tid === String(pid) ? 'main JS thread' : s.comm.replace(/\d+$/, '').trim() || s.comm;
    const t = byName.get(name) ?? { comm: name, threads: 0, cpuMs: 0 };
    t.threads += 1;
    t.cpuMs += s.cpuMs;
    byName.set(name, t);
  }
  return [...byName.values()].sort((a, b) => b.cpuMs - a.cpuMs);
}

export interface ProcessFigures {
  pid: number;
  /** The executable name (comm) and the first words of the command line. */
  command: string;
  /** Highest VmHWM seen. */
  hwmBytes: number;
  /** CPU ms used during the sampling (last reading minus the first). */
  cpuMs: number;
  /** At the last sample: resident memory that is anonymous (heaps) and file-backed (binary, native modules). */
  anonBytes?: number;
  fileBytes?: number;
}

export interface TreeFigures {
  /** Most resident memory of the whole tree in any one sample (sum of VmRSS). */
  peakRssBytes: number;
  /** Resident memory of the tree at each sample: [ms since start, bytes]. */
  samples: Array<[number, number]>;
  processes: ProcessFigures[];
  /** CPU of the whole tree during the sampling, ms (processes already running at the start count from then). */
  cpuMs: number;
  /** CPU per thread name of the tree's processes during the sampling (threads of one name summed). */
  threads: ThreadCpu[];
}

function commandOf(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    return argv
      .slice(0, 4)
      .map((a) => a.replace(/^.*\/(node_modules\/)/, '$1').replace(/^.*\/(?=[^/]+$)/, ''))
      .join(' ');
  } catch {
    return '?';
  }
}

/**
 * Samples the resident memory and CPU of one or more process trees every `intervalMs` until stop(). A process
 * that exits keeps its last reading. CPU is counted from the first time a process is seen.
 */
export class TreeSampler {
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  private peak = 0;
  private readonly samples: Array<[number, number]> = [];
  private readonly procs = new Map<
    number,
    {
      command: string;
      hwm: number;
      firstCpu: number;
      lastCpu: number;
      split?: { anonBytes: number; fileBytes: number };
    }
  >();
  private threads: ThreadCpu[] = [];
  private threadBase = new Map<string, number>();

  constructor(
    private readonly roots: () => number[],
    private readonly intervalMs = 250,
    private readonly keepSamples = 2_000,
  ) {}

  /** Most resident memory of the tree in any sample so far. */
  get peakRssBytes(): number {
    return this.peak;
  }

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  /** One reading now (also called by the timer). */
  sample(): void {
    const pids = new Set<number>();
    for (const root of this.roots()) for (const pid of processTree(root)) pids.add(pid);
    let rss = 0;
    for (const pid of pids) {
      const mem = memoryOf(pid);
      const stat = readStat(`/proc/${pid}/stat`);
      // A process that is exiting (a zombie) has no VmRSS any more: nothing to count.
      if (!mem || !stat || !Number.isFinite(mem.rss)) continue;
      rss += mem.rss;
      const known = this.procs.get(pid);
      if (known) {
        if (Number.isFinite(mem.hwm)) known.hwm = Math.max(known.hwm, mem.hwm);
        known.lastCpu = stat.cpuMs;
      } else {
        // Processes there at the start count from now (their start-up is not the run's); later ones from their birth.
        const firstCpu = this.samples.length === 0 ? stat.cpuMs : 0;
        this.procs.set(pid, { command: commandOf(pid), hwm: mem.hwm, firstCpu, lastCpu: stat.cpuMs });
      }
    }
    if (pids.size > 0) {
      const merged = new Map<string, ThreadCpu>();
      for (const pid of pids) {
        for (const t of threadCpu(pid)) {
          const m = merged.get(t.comm) ?? { comm: t.comm, threads: 0, cpuMs: 0 };
          m.threads += t.threads;
          m.cpuMs += t.cpuMs;
          merged.set(t.comm, m);
        }
      }
      if (merged.size > 0) {
        if (this.samples.length === 0) this.threadBase = new Map([...merged].map(([k, v]) => [k, v.cpuMs]));
        this.threads = [...merged.values()]
          .map((t) => ({ ...t, cpuMs: t.cpuMs - (this.threadBase.get(t.comm) ?? 0) }))
          .sort((a, b) => b.cpuMs - a.cpuMs);
      }
    }
    this.peak = Math.max(this.peak, rss);
    this.samples.push([Date.now() - this.startedAt, rss]);
    // Long runs: keep every other sample once there are too many (the peak is tracked separately).
    if (this.samples.length > this.keepSamples) {
      for (let i = this.samples.length - 1; i > 0; i -= 2) this.samples.splice(i, 1);
    }
  }

  stop(): TreeFigures {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
    for (const [pid, p] of this.procs) p.split = residentSplit(pid) ?? p.split;
    const processes = [...this.procs.entries()].map(([pid, p]) => ({
      pid,
      command: p.command,
      hwmBytes: p.hwm,
      cpuMs: p.lastCpu - p.firstCpu,
      ...(p.split ?? {}),
    }));
    return {
      peakRssBytes: this.peak,
      samples: this.samples,
      processes,
      cpuMs: processes.reduce((a, p) => a + p.cpuMs, 0),
      threads: this.threads,
    };
  }
}

/** CPU ms of this (the harness) process so far: simulator, receiver and sampling. */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  node: string;
  platform: string;
  /** 1, 5 and 15 minute load averages. */
  load: [number, number, number];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryBytes: os.totalmem(),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    load: os.loadavg().map((l) => Math.round(l * 100) / 100) as [number, number, number],
  };
}

export const loadNow = (): [number, number, number] =>
  os.loadavg().map((l) => Math.round(l * 100) / 100) as [number, number, number];

// ---------------------------------------------------------------------------------------------------------
// Workflow histories

const EventType = temporal.api.enums.v1.EventType;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface BatchTimings {
  /** processBatch activities that completed in this run. */
  batches: number;
  /** Scheduled -> started: the activity task waiting in the matching service for a worker poll. */
  scheduleToStartMs: ReturnType<typeof summarize>;
  /** Started -> completed: the activity's own execution. */
  executionMs: ReturnType<typeof summarize>;
  /** A batch's completion -> the next batch scheduled: the workflow task round trip that refills the slot. */
  refillMs: ReturnType<typeof summarize>;
  /** prepareBackfill, scheduled -> completed (first run only). */
  prepareMs: number | undefined;
  /** normaliseSource, scheduled -> completed: the rest of a long source, read beside the batches (issue 26). */
  normaliseMs: number | undefined;
  workflowTasks: number;
  /** processBatch attempts started, per worker identity (pid@host): how the batches were shared. */
  batchesByWorker: Record<string, number>;
  /** Time from the first event to the last one. */
  spanMs: number;
  /** Each completed processBatch attempt: its batch number (from the activity summary "batch N of M") and times. */
  perBatch: Array<{ batch: number; scheduledAt: number; startedAt: number; completedAt: number }>;
}

export interface RunHistory {
  runId: string;
  status: string;
  /** Events in the fetched history. */
  events: number;
  /** The history serialized as protobuf (what the server stores and sends), bytes. */
  bytes: number;
  /** The server's own figure (DescribeWorkflowExecution historySizeBytes), when it reports one. */
  serverBytes: number | undefined;
  timings: BatchTimings;
  /** Temporal actions of this run by Temporal Cloud's published rules (bench/actions.ts). */
  actions: HistoryActions;
}

const ms = (t: HistoryEvent['eventTime']): number =>
  t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : NaN;

export function batchTimings(events: readonly HistoryEvent[]): BatchTimings {
  const scheduled = new Map<number, { type: string; at: number; batch: number | undefined }>();
  const perBatch: BatchTimings['perBatch'] = [];
  const started = new Map<number, number>(); // scheduledEventId -> started at
  const scheduleToStart: number[] = [];
  const execution: number[] = [];
  const refill: number[] = [];
  let prepareMs: number | undefined;
  let normaliseMs: number | undefined;
  let workflowTasks = 0;
  const batchesByWorker: Record<string, number> = {};
  let lastBatchCompletedAt: number[] = []; // completions not yet followed by a new batch
  for (const e of events) {
    const id = Number(e.eventId ?? 0);
    const at = ms(e.eventTime);
    switch (e.eventType) {
      case EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: {
        const type = e.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
        scheduled.set(id, { type, at, batch: summaryBatch(e) });
        if (type === 'processBatch' && lastBatchCompletedAt.length > 0) {
          refill.push(at - lastBatchCompletedAt.shift()!);
        }
        break;
      }
      case EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: {
        const sid = Number(e.activityTaskStartedEventAttributes?.scheduledEventId ?? 0);
        const s = scheduled.get(sid);
        started.set(sid, at);
        if (s?.type === 'processBatch') {
          scheduleToStart.push(at - s.at);
          const who = e.activityTaskStartedEventAttributes?.identity ?? '?';
          batchesByWorker[who] = (batchesByWorker[who] ?? 0) + 1;
        }
        break;
      }
      case EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: {
        const sid = Number(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? 0);
        const s = scheduled.get(sid);
        if (s?.type === 'processBatch') {
          const st = started.get(sid);
          if (st !== undefined) execution.push(at - st);
          if (st !== undefined && s.batch !== undefined)
            perBatch.push({ batch: s.batch, scheduledAt: s.at, startedAt: st, completedAt: at });
          lastBatchCompletedAt.push(at);
        } else if (s?.type === 'prepareBackfill') {
          prepareMs = at - s.at;
        } else if (s?.type === 'normaliseSource') {
          normaliseMs = at - s.at;
        }
        break;
      }
      case EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
        workflowTasks += 1;
        break;
    }
  }
  lastBatchCompletedAt = [];
  const first = events[0] ? ms(events[0].eventTime) : 0;
  const last = events.length ? ms(events[events.length - 1]!.eventTime) : 0;
  return {
    batches: execution.length,
    scheduleToStartMs: summarize(scheduleToStart),
    executionMs: summarize(execution),
    refillMs: summarize(refill),
    prepareMs,
    normaliseMs,
    workflowTasks,
    batchesByWorker,
    spanMs: last - first,
    perBatch,
  };
}

/**
 * The 0-based batch number from the activity's summary, "batch N of M" or, while the source is still being read,
 * "batch N (the source ...)" (JSON-encoded string payload).
 */
function summaryBatch(e: HistoryEvent): number | undefined {
  const data = e.userMetadata?.summary?.data;
  if (!data) return undefined;
  const m = /batch (\d+) (of \d+|\(the source)/.exec(Buffer.from(data).toString('utf8'));
  return m ? Number(m[1]) - 1 : undefined;
}

/**
 * Fixed time per batch outside its members' work, from the history and the simulator's lookup log: scheduled ->
 * its first lookup admitted (matching, start, reading the batch and the audit/pending state), and its last lookup
 * admitted -> completed (the last member's decide + POST, the final audit flush and re-read, completion, recorded
 * by the server). `batchOfLookup[i]` is the batch of the i-th admitted lookup at `lookupTimes[i]`.
 */
export function batchOverheads(
  perBatch: BatchTimings['perBatch'],
  lookupTimes: readonly number[],
  batchOfLookup: readonly number[],
): { toFirstLookupMs: number[]; afterLastLookupMs: number[] } {
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  for (let i = 0; i < lookupTimes.length; i++) {
    const b = batchOfLookup[i]!;
    const t = lookupTimes[i]!;
    if (!first.has(b) || t < first.get(b)!) first.set(b, t);
    if (!last.has(b) || t > last.get(b)!) last.set(b, t);
  }
  const toFirstLookupMs: number[] = [];
  const afterLastLookupMs: number[] = [];
  for (const x of perBatch) {
    const f = first.get(x.batch);
    const l = last.get(x.batch);
    // Only a batch whose lookups all fall inside its attempt (no retried batches, no clock trouble).
    if (f === undefined || l === undefined || f < x.scheduledAt - 5 || l > x.completedAt + 5) continue;
    toFirstLookupMs.push(Math.max(0, f - x.scheduledAt));
    afterLastLookupMs.push(Math.max(0, x.completedAt - l));
  }
  return { toFirstLookupMs, afterLastLookupMs };
}

/** Every run of the workflow id's chain, oldest first, each with its history measured. */
export async function chainHistories(client: Client, workflowId: string): Promise<RunHistory[]> {
  const runs: Array<{ runId: string; status: string; start: number; serverBytes: number | undefined }> = [];
  for await (const info of client.workflow.list({ query: `WorkflowId = ${JSON.stringify(workflowId)}` })) {
    runs.push({
      runId: info.runId,
      status: info.status.name,
      start: info.startTime.getTime(),
      serverBytes: info.historySize,
    });
  }
  runs.sort((a, b) => a.start - b.start);
  const out: RunHistory[] = [];
  for (const run of runs) {
    const handle = client.workflow.getHandle(workflowId, run.runId);
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const bytes = temporal.api.history.v1.History.encode(history).finish().length;
    let serverBytes = run.serverBytes;
    if (serverBytes === undefined) serverBytes = (await handle.describe()).historySize;
    out.push({
      runId: run.runId,
      status: run.status,
      events: events.length,
      bytes,
      serverBytes,
      timings: batchTimings(events),
      actions: historyActions(events),
    });
  }
  return out;
}
