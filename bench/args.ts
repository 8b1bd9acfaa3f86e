// `npm run bench -- [options]`: the command line of the benchmark, and the formatting of its figures.
// Pure (no I/O), so test/unit/bench-args.test.ts can check it directly.
import { parseArgs } from 'node:util';

export interface BenchOptions {
  /** Members in the synthetic data set. */
  n: number;
  /** Simulator token bucket of R requests/s and CHANNEL_RATE_LIMIT=R on the workers; undefined = no limit. */
  rate: number | undefined;
  /** The simulator bucket's capacity with --rate (default R): --burst 10 is an API that allows only 10 at once. */
  burst: number | undefined;
  /** Worker processes sharing the task queue (and the rate budget). */
  workers: number;
  /** node: this tree built and started as `npm start` (and the Dockerfile) start it; tsx: `npm run worker`. */
  workerRuntime: 'node' | 'tsx';
  /** Latency the simulator adds to every lookup. */
  latencyMs: number;
  skipScript: boolean;
  /** Project run and script run alternate this many times on one stack; medians are reported. */
  repeat: number;
  /** Where the figures go as JSON; undefined = bench-results/<timestamp>.json. */
  json: string | undefined;
  /** Workflow input batchSize; undefined = not sent (the product's default, what a user gets). */
  batchSize: number | undefined;
  /** Workflow input parallelBatches; undefined = not sent (the product's default). */
  parallelBatches: number | undefined;
  /** Worker env BACKFILL_MEMBER_CONCURRENCY; undefined = not set (the worker's default). */
  memberConcurrency: number | undefined;
  /** Lookups in flight in the reference script (default 32, the usual loop script's). */
  scriptConcurrency: number;
  /**
   * The reference script: customer (bench/customer-script.ts, what a customer would write instead of using us:
   * the default, issue 26) or own (bench/plain-script.ts, our own client, decision and sender without Temporal:
   * a measure of our own overhead).
   */
  script: BenchScript;
  /** The customer script's HTTP client: Node's global fetch (default) or undici's request. */
  scriptHttp: 'fetch' | 'undici';
  /** Workflow input maxHistoryEvents; undefined = the workflow's default. */
  maxHistoryEvents: number | undefined;
  /** Extra options for the worker's node (e.g. --max-old-space-size=160), for experiments. */
  workerNodeArgs: string[];
  /** Extra environment for the worker(s), e.g. MALLOC_ARENA_MAX. */
  workerEnv: Record<string, string>;
  /** Write V8 CPU profiles of the worker and the script (node --cpu-prof) and summarise them. */
  profile: boolean;
  /** Keep the work directory (CSV, audit log, worker log, profiles) instead of deleting it. */
  keep: boolean;
  seed: number | undefined;
  /** The project run is abandoned (and reported as not finished) after this long. */
  timeoutMinutes: number;
  /** The workers' store (BACKFILL_STORE). postgres: the file store first, then PostgreSQL, compared (bench/compare-stores.ts). */
  store: BenchStore;
  /** Only the store given, no comparison (what the comparison runs for each store). */
  storeAlone: boolean;
  help: boolean;
}

export const BENCH_STORES = ['file', 'postgres'] as const;
export const BENCH_SCRIPTS = ['customer', 'own'] as const;
export type BenchScript = (typeof BENCH_SCRIPTS)[number];
export type BenchStore = (typeof BENCH_STORES)[number];

export class BenchUsageError extends Error {
  override name = 'BenchUsageError';
}

export const DEFAULT_N = 20_000;
/**
 * The bench sends no tuning by default: the workflow input is `{"source": ...}` only, as the README starts it, and
 * the worker has no BACKFILL_MEMBER_CONCURRENCY, so what it measures is what a user gets (issue 13).
 */
export const DEFAULT_SCRIPT_CONCURRENCY = 32;
/** Pairs (project run, script run) per invocation: single pairs on this shared machine spread by +-30%. */
export const DEFAULT_REPEAT = 5;
/** With --rate and no --n, the data set lasts about this long at the rate, long enough to judge a sustained rate. */
export const RATE_RUN_SECONDS = 60;

export const BENCH_HELP = `npm run bench -- [options]

Runs the backfill end to end on a real Temporal dev server (worker as a child process, Channel Talk simulator,
webhook receiver) over a synthetic data set with a known answer, verifies the outcome, then runs a plain
non-durable script over the same data and prints the ratio of their throughputs.

  --n N                   members (default ${DEFAULT_N}; with --rate R and no --n: R*${RATE_RUN_SECONDS})
  --rate R                simulator limited to R requests/s, CHANNEL_RATE_LIMIT=R (default: no limit)
  --burst B               with --rate: the simulator's bucket holds only B requests (default R)
  --workers W             worker processes on the task queue (default 1)
  --worker-runtime R      node: what ships (default): this tree built as \`npm run build\` does, started as
                          \`npm start\` (and the Dockerfile) start it, with the same environment and node options;
                          tsx: \`tsx src/worker.ts\` as \`npm run worker\` runs it for development
  --latency-ms L          latency the simulator adds to every lookup (default 0)
  --script S              the reference script: customer (default: bench/customer-script.ts, what a customer
                          would write instead of using us, importing nothing from this project) or own
                          (bench/plain-script.ts: our own client, decision and sender without Temporal, i.e. a
                          measure of our own overhead)
  --script-http H         the customer script's HTTP client: fetch (default, Node's global fetch) or undici
  --skip-script           do not run the reference script
  --repeat K              alternate project run and script run K times on the same stack, report medians (default ${DEFAULT_REPEAT})
  --json FILE             write the figures here (default bench-results/<timestamp>.json)
  --batch-size B          workflow input batchSize, 1..1000 (default: not sent, the product's default)
  --parallel P            workflow input parallelBatches, 1..32 (default: not sent, the product's default)
  --member-concurrency C  BACKFILL_MEMBER_CONCURRENCY on the worker(s) (default: not set, the worker's default)
  --script-concurrency S  lookups in flight in the plain script (default ${DEFAULT_SCRIPT_CONCURRENCY})
  --max-history-events H  workflow input maxHistoryEvents (default: the workflow's)
  --worker-node-arg=A     pass option A to the worker's node (repeatable; write it with =), e.g. --worker-node-arg=--max-old-space-size=160
  --worker-env=NAME=V     set an environment variable for the worker(s) (repeatable), e.g. --worker-env=MALLOC_ARENA_MAX=2
  --profile               CPU-profile the worker and the script (node --cpu-prof), print where the time goes
  --keep                  keep the work directory (CSV, audit log, logs, profiles)
  --seed S                synthetic data set seed
  --timeout-min T         give up on the project run after T minutes (default 30)
  --store S               the workers' store: file (default) or postgres. postgres runs the whole benchmark twice,
                          file store then BACKFILL_STORE=postgres (a throwaway PostgreSQL started like the tests
                          start it), and prints both side by side: wall time, members/s, worker RSS, database size
  --store-alone           with --store: only that store, no comparison
  --help
`;

function int(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const text = raw.replace(/_/g, '');
  // 1e6 and 1m are accepted for convenience: --n 1000000 is easy to mistype.
  const scaled = /^\d+(\.\d+)?[kKmM]$/.test(text)
    ? Number(text.slice(0, -1)) * (/[kK]$/.test(text) ? 1e3 : 1e6)
    : Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(scaled) || scaled < min || scaled > max) {
    throw new BenchUsageError(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return scaled;
}

function positive(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value <= 0)
    throw new BenchUsageError(`--${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return value;
}

export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      allowPositionals: false,
      strict: true,
      options: {
        n: { type: 'string' },
        rate: { type: 'string' },
        burst: { type: 'string' },
        workers: { type: 'string' },
        'worker-runtime': { type: 'string' },
        'latency-ms': { type: 'string' },
        'skip-script': { type: 'boolean' },
        repeat: { type: 'string' },
        json: { type: 'string' },
        'batch-size': { type: 'string' },
        parallel: { type: 'string' },
        'member-concurrency': { type: 'string' },
        'script-concurrency': { type: 'string' },
        script: { type: 'string' },
        'script-http': { type: 'string' },
        'max-history-events': { type: 'string' },
        'worker-node-arg': { type: 'string', multiple: true },
        'worker-env': { type: 'string', multiple: true },
        profile: { type: 'boolean' },
        keep: { type: 'boolean' },
        seed: { type: 'string' },
        'timeout-min': { type: 'string' },
        store: { type: 'string' },
        'store-alone': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new BenchUsageError((err as Error).message);
  }
  const str = (k: string) => values[k] as string | undefined;
  const rate = positive('rate', str('rate'));
  const n =
    int('n', str('n'), 1, 100_000_000) ??
    (rate === undefined ? DEFAULT_N : Math.max(100, Math.round(rate * RATE_RUN_SECONDS)));
  const batchSize = int('batch-size', str('batch-size'), 1, 1000);
  const parallelBatches = int('parallel', str('parallel'), 1, 32);
  const memberConcurrency = int('member-concurrency', str('member-concurrency'), 1, 10_000);
  const runtime = str('worker-runtime') ?? 'node';
  if (runtime !== 'tsx' && runtime !== 'node') {
    throw new BenchUsageError(`--worker-runtime must be "node" or "tsx", got ${JSON.stringify(runtime)}`);
  }
  const json = str('json');
  if (json !== undefined && json.trim() === '') throw new BenchUsageError('--json needs a file name');
  const store = str('store') ?? 'file';
  if (!(BENCH_STORES as readonly string[]).includes(store)) {
    throw new BenchUsageError(`--store must be ${BENCH_STORES.join(' or ')}, got ${JSON.stringify(store)}`);
  }
  const script = str('script') ?? 'customer';
  if (!(BENCH_SCRIPTS as readonly string[]).includes(script)) {
    throw new BenchUsageError(`--script must be ${BENCH_SCRIPTS.join(' or ')}, got ${JSON.stringify(script)}`);
  }
  const scriptHttp = str('script-http') ?? 'fetch';
  if (scriptHttp !== 'fetch' && scriptHttp !== 'undici') {
    throw new BenchUsageError(`--script-http must be "fetch" or "undici", got ${JSON.stringify(scriptHttp)}`);
  }
  const burst = int('burst', str('burst'), 1, 1_000_000);
  if (burst !== undefined && rate === undefined) throw new BenchUsageError('--burst needs --rate');
  return {
    n,
    rate,
    burst,
    workers: int('workers', str('workers'), 1, 16) ?? 1,
    workerRuntime: runtime,
    latencyMs: int('latency-ms', str('latency-ms'), 0, 60_000) ?? 0,
    skipScript: values['skip-script'] === true,
    repeat: int('repeat', str('repeat'), 1, 20) ?? DEFAULT_REPEAT,
    json,
    batchSize,
    parallelBatches,
    memberConcurrency,
    scriptConcurrency: int('script-concurrency', str('script-concurrency'), 1, 10_000) ?? DEFAULT_SCRIPT_CONCURRENCY,
    script: script as BenchScript,
    scriptHttp,
    maxHistoryEvents: int('max-history-events', str('max-history-events'), 200, 9000),
    workerNodeArgs: ((values['worker-node-arg'] as unknown as string[] | undefined) ?? []).map((a) => {
      if (!a.startsWith('--'))
        throw new BenchUsageError(`--worker-node-arg must be a node option starting with --, got ${JSON.stringify(a)}`);
      return a;
    }),
    workerEnv: Object.fromEntries(
      ((values['worker-env'] as unknown as string[] | undefined) ?? []).map((a) => {
        const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(a);
        if (!m) throw new BenchUsageError(`--worker-env must be NAME=value, got ${JSON.stringify(a)}`);
        return [m[1]!, m[2]!];
      }),
    ),
    profile: values.profile === true,
    keep: values.keep === true,
    seed: int('seed', str('seed'), 0, 0xffffffff),
    timeoutMinutes: positive('timeout-min', str('timeout-min')) ?? 30,
    store: store as BenchStore,
    storeAlone: values['store-alone'] === true,
    help: values.help === true,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Figures

/** `1234567` -> `1,234,567`; fractions keep `digits` decimals. */
export function fmtNumber(value: number | undefined, digits = 0): string {
  if (value === undefined || !Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Bytes in binary megabytes with one decimal, e.g. `187.4 MB`. */
export function fmtMb(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) return '-';
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** Milliseconds as `850 ms`, `12.3 s` or `4 min 05 s`. */
export function fmtDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const total = Math.round(ms / 1000);
  return `${Math.floor(total / 60)} min ${String(total % 60).padStart(2, '0')} s`;
}

export function fmtPercent(ratio: number | undefined, digits = 1): string {
  if (ratio === undefined || !Number.isFinite(ratio)) return '-';
  return `${(ratio * 100).toFixed(digits)}%`;
}

/** A plain-text table: the first row is the header, columns are padded, numbers (and '-') right-aligned. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return '';
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  const numeric = (cell: string) => /^[-+]?[\d,.]+( ?(%|ms|s|MB|x|\/s))?$|^-$/.test(cell);
  const line = (row: readonly string[]) =>
    row
      .map((cell, i) => (i > 0 && numeric(cell) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const [head, ...body] = rows;
  return [line(head!), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** Met / not met, as the report prints it next to a target. */
export function verdict(met: boolean | undefined): string {
  return met === undefined ? 'not measured' : met ? 'MET' : 'NOT MET';
}

/** How far single pairs spread around their median: min, max and (max - min) / median. */
export function spread(values: readonly number[]): { min: number; max: number; relative: number } | undefined {
  if (values.length === 0) return undefined;
  const min = Math.min(...values);
  const max = Math.max(...values);
  return { min, max, relative: (max - min) / median(values) };
}

/** The tuning a run used, as the report prints it: "product defaults" when none was given. */
export function describeTuning(o: Pick<BenchOptions, 'batchSize' | 'parallelBatches' | 'memberConcurrency'>): string {
  const given = [
    o.batchSize === undefined ? undefined : `batchSize ${o.batchSize}`,
    o.parallelBatches === undefined ? undefined : `parallelBatches ${o.parallelBatches}`,
    o.memberConcurrency === undefined ? undefined : `member concurrency ${o.memberConcurrency}`,
  ].filter((x): x is string => x !== undefined);
  return given.length === 0
    ? 'product defaults (input {"source": ...} only, no worker tuning)'
    : `tuned: ${given.join(', ')} (the rest product defaults)`;
}

/** The median (the mean of the middle two for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** p50/p95/max/mean of some numbers (undefined when empty). */
export function summarize(
  values: readonly number[],
): { count: number; mean: number; p50: number; p95: number; max: number } | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  return { count: sorted.length, mean, p50: at(0.5), p95: at(0.95), max: sorted[sorted.length - 1]! };
}

/**
 * The sustained request rate from the admission times of the lookups (epoch ms, ascending): the mean rate over
 * the whole lookup phase (first to last request), and over its middle 90% of requests (the 5th to the 95th
 * percentile request), which leaves out the start-up and the tail when fewer batches than parallelBatches remain.
 */
export function sustainedRate(
  times: readonly number[],
): { whole: number; middle90: number; seconds: number } | undefined {
  if (times.length < 2) return undefined;
  const first = times[0]!;
  const last = times[times.length - 1]!;
  const lo = Math.floor(times.length * 0.05);
  const hi = Math.max(lo + 1, Math.ceil(times.length * 0.95) - 1);
  const span = (a: number, b: number) => Math.max(1, b - a) / 1000;
  return {
    whole: (times.length - 1) / span(first, last),
    middle90: (hi - lo) / span(times[lo]!, times[hi]!),
    seconds: (last - first) / 1000,
  };
}

/** The most requests admitted in any sliding one-second window (ascending epoch ms). */
export function maxInAnySecond(times: readonly number[]): number {
  let best = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while (times[end]! - times[start]! >= 1000) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}
