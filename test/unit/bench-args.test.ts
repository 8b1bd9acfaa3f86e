// The benchmark's command line and the arithmetic behind its figures (bench/args.ts): defaults, validation,
// the rate-run default size, the sustained-rate and busiest-second measures, and the table formatting.
import { describe, expect, it } from 'vitest';
import {
  BenchUsageError,
  DEFAULT_N,
  DEFAULT_REPEAT,
  DEFAULT_SCRIPT_CONCURRENCY,
  describeTuning,
  fmtDuration,
  fmtMb,
  fmtNumber,
  fmtPercent,
  formatTable,
  maxInAnySecond,
  median,
  parseBenchArgs,
  spread,
  summarize,
  sustainedRate,
  verdict,
} from '../../bench/args';

describe('parseBenchArgs', () => {
  it('defaults: 20,000 members, no rate limit, one worker as shipped (npm start), NO tuning input, script at 32, 5 pairs', () => {
    const o = parseBenchArgs([]);
    expect(o).toMatchObject({
      n: DEFAULT_N,
      rate: undefined,
      workers: 1,
      workerRuntime: 'node',
      latencyMs: 0,
      skipScript: false,
      repeat: 5,
      json: undefined,
      batchSize: undefined,
      parallelBatches: undefined,
      memberConcurrency: undefined,
      maxHistoryEvents: undefined,
      profile: false,
      keep: false,
      workerNodeArgs: [],
      workerEnv: {},
      timeoutMinutes: 30,
      store: 'file',
      storeAlone: false,
      // Issue 26: the reference is the script a customer would write, over Node's global fetch.
      script: 'customer',
      scriptHttp: 'fetch',
    });
    expect(DEFAULT_N).toBe(20_000);
    expect(DEFAULT_REPEAT).toBe(5);
    // The plain script is the usual loop script: 32 lookups in flight, whatever the project's tuning.
    expect(o.scriptConcurrency).toBe(32);
    expect(DEFAULT_SCRIPT_CONCURRENCY).toBe(32);
    expect(parseBenchArgs(['--parallel', '4', '--member-concurrency', '8']).scriptConcurrency).toBe(32);
    expect(parseBenchArgs(['--parallel', '4', '--script-concurrency', '10']).scriptConcurrency).toBe(10);
    expect(parseBenchArgs(['--repeat', '1']).repeat).toBe(1);
  });

  it('the reference script: customer (default) or own, and the customer script over fetch or undici', () => {
    expect(parseBenchArgs(['--script', 'own']).script).toBe('own');
    expect(parseBenchArgs(['--script', 'customer', '--script-http', 'undici'])).toMatchObject({
      script: 'customer',
      scriptHttp: 'undici',
    });
    expect(() => parseBenchArgs(['--script', 'plain'])).toThrow(/--script must be customer or own/);
    expect(() => parseBenchArgs(['--script-http', 'axios'])).toThrow(/--script-http must be/);
  });

  it('reads every option', () => {
    const o = parseBenchArgs([
      '--n',
      '1000000',
      '--rate',
      '200',
      '--workers',
      '2',
      '--worker-runtime',
      'node',
      '--latency-ms',
      '5',
      '--skip-script',
      '--repeat',
      '3',
      '--json',
      'out.json',
      '--batch-size',
      '1000',
      '--parallel',
      '4',
      '--member-concurrency',
      '32',
      '--max-history-events',
      '4000',
      '--profile',
      '--keep',
      '--seed',
      '7',
      '--timeout-min',
      '12.5',
      '--worker-node-arg=--max-old-space-size=160',
      '--worker-node-arg=--trace-gc',
      '--worker-env=MALLOC_ARENA_MAX=4',
      '--worker-env=UV_THREADPOOL_SIZE=2',
    ]);
    expect(o).toMatchObject({
      n: 1_000_000,
      rate: 200,
      workers: 2,
      workerRuntime: 'node',
      latencyMs: 5,
      skipScript: true,
      repeat: 3,
      json: 'out.json',
      batchSize: 1000,
      parallelBatches: 4,
      memberConcurrency: 32,
      maxHistoryEvents: 4000,
      profile: true,
      keep: true,
      seed: 7,
      timeoutMinutes: 12.5,
      workerNodeArgs: ['--max-old-space-size=160', '--trace-gc'],
      workerEnv: { MALLOC_ARENA_MAX: '4', UV_THREADPOOL_SIZE: '2' },
    });
  });

  it('knows the two stores; postgres compares it with the file store unless --store-alone', () => {
    expect(parseBenchArgs(['--store', 'postgres'])).toMatchObject({ store: 'postgres', storeAlone: false });
    expect(parseBenchArgs(['--store', 'postgres', '--store-alone'])).toMatchObject({
      store: 'postgres',
      storeAlone: true,
    });
    expect(parseBenchArgs(['--store', 'file']).store).toBe('file');
    expect(() => parseBenchArgs(['--store', 'pg'])).toThrow(/--store must be file or postgres, got "pg"/);
  });

  it('knows the two worker runtimes', () => {
    for (const runtime of ['tsx', 'node'] as const) {
      expect(parseBenchArgs(['--worker-runtime', runtime]).workerRuntime).toBe(runtime);
    }
  });

  it('accepts 1m, 20k and 1_000_000 for counts', () => {
    expect(parseBenchArgs(['--n', '1m']).n).toBe(1_000_000);
    expect(parseBenchArgs(['--n', '20k']).n).toBe(20_000);
    expect(parseBenchArgs(['--n', '1_000_000']).n).toBe(1_000_000);
    expect(parseBenchArgs(['--n', '2.5k']).n).toBe(2_500);
  });

  it('with --rate and no --n, sizes the data set to last about a minute at that rate', () => {
    expect(parseBenchArgs(['--rate', '10']).n).toBe(600);
    expect(parseBenchArgs(['--rate', '200']).n).toBe(12_000);
    expect(parseBenchArgs(['--rate', '1']).n).toBe(100); // never fewer than 100
    expect(parseBenchArgs(['--rate', '10', '--n', '50']).n).toBe(50); // an explicit --n wins
  });

  it.each([
    [['--n', '0'], /--n must be an integer from 1/],
    [['--n', 'lots'], /--n must be an integer/],
    [['--n', '1.5'], /--n must be an integer/],
    [['--rate', '0'], /--rate must be a positive number/],
    [['--rate=-3'], /--rate must be a positive number/],
    [['--batch-size', '1001'], /--batch-size must be an integer from 1 to 1000/],
    [['--parallel', '33'], /--parallel must be an integer from 1 to 32/],
    [['--max-history-events', '100'], /--max-history-events must be an integer from 200 to 9000/],
    [['--worker-runtime', 'bun'], /--worker-runtime must be "node" or "tsx"/],
    [['--worker-runtime', 'node-prebundled'], /--worker-runtime must be "node" or "tsx"/],
    [['--worker-env=malloc=2'], /--worker-env must be NAME=value/],
    [['--worker-env=NOVALUE'], /--worker-env must be NAME=value/],
    [['--worker-node-arg', 'max-old-space-size=1'], /--worker-node-arg must be a node option/],
    [['--json', ''], /--json needs a file name/],
    [['--nope'], /Unknown option '--nope'/],
    [['positional'], /positional/i],
  ])('rejects %j', (argv, message) => {
    expect(() => parseBenchArgs(argv)).toThrow(BenchUsageError);
    expect(() => parseBenchArgs(argv)).toThrow(message);
  });
});

describe('figures', () => {
  it('sustainedRate: whole lookup phase and its middle 90%', () => {
    // 101 requests exactly 100 ms apart: 10/s whatever the window.
    const even = Array.from({ length: 101 }, (_, i) => 1_000_000 + i * 100);
    expect(sustainedRate(even)).toEqual({ whole: 10, middle90: 10, seconds: 10 });
    // A slow tail (the last batch alone at half the rate) lowers the whole-phase figure, not the middle one.
    const tail = [...even, ...Array.from({ length: 10 }, (_, i) => 1_010_000 + (i + 1) * 200)];
    const r = sustainedRate(tail)!;
    expect(r.whole).toBeCloseTo(110 / 12, 5);
    expect(r.middle90).toBeGreaterThan(9.5);
    expect(sustainedRate([5])).toBeUndefined();
  });

  it('maxInAnySecond: a sliding one-second window, not calendar seconds', () => {
    expect(maxInAnySecond([])).toBe(0);
    // 3 requests in [0.6 s, 1.4 s] straddle a calendar-second boundary but share one sliding second.
    expect(maxInAnySecond([0, 600, 1000, 1400, 2600])).toBe(3);
    expect(maxInAnySecond([0, 999, 1999])).toBe(2);
    expect(maxInAnySecond([0, 1000, 2000])).toBe(1);
  });

  it('median and summarize', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
    expect(summarize([])).toBeUndefined();
    const s = summarize(Array.from({ length: 100 }, (_, i) => i + 1))!;
    expect(s).toEqual({ count: 100, mean: 50.5, p50: 50, p95: 95, max: 100 });
  });

  it('formats numbers, sizes, durations and verdicts', () => {
    expect(fmtNumber(1234567)).toBe('1,234,567');
    expect(fmtNumber(1234.567, 1)).toBe('1,234.6');
    expect(fmtNumber(undefined)).toBe('-');
    expect(fmtNumber(NaN)).toBe('-');
    expect(fmtMb(256 * 1024 * 1024)).toBe('256.0 MB');
    expect(fmtDuration(850)).toBe('850 ms');
    expect(fmtDuration(12_345)).toBe('12.3 s');
    expect(fmtDuration(245_000)).toBe('4 min 05 s');
    expect(fmtPercent(0.9512)).toBe('95.1%');
    expect(verdict(true)).toBe('MET');
    expect(verdict(false)).toBe('NOT MET');
    expect(verdict(undefined)).toBe('not measured');
  });

  it('formatTable pads columns and right-aligns numbers', () => {
    const text = formatTable([
      ['', 'project', 'script'],
      ['members/s', '1,234.5', '987.0'],
      ['wall time', '12.3 s', '-'],
      ['verified', 'exact', 'exact'],
    ]);
    expect(text.split('\n')).toEqual([
      '           project  script',
      '---------  -------  ------',
      'members/s  1,234.5   987.0',
      'wall time   12.3 s       -',
      'verified   exact    exact',
    ]);
    expect(formatTable([])).toBe('');
  });
});

describe('describeTuning: the report says whether the run used the product defaults', () => {
  it.each([
    [{}, 'product defaults (input {"source": ...} only, no worker tuning)'],
    [{ batchSize: 1000 }, 'tuned: batchSize 1000 (the rest product defaults)'],
    [
      { parallelBatches: 4, memberConcurrency: 8 },
      'tuned: parallelBatches 4, member concurrency 8 (the rest product defaults)',
    ],
  ])('%j', (given, text) => {
    const o = { batchSize: undefined, parallelBatches: undefined, memberConcurrency: undefined, ...given };
    expect(describeTuning(o)).toBe(text);
  });
  it('follows the parsed command line', () => {
    expect(describeTuning(parseBenchArgs([]))).toMatch(/^product defaults/);
    expect(describeTuning(parseBenchArgs(['--batch-size', '100']))).toBe(
      'tuned: batchSize 100 (the rest product defaults)',
    );
  });
});

describe('--burst', () => {
  it('is the simulator bucket size, only with --rate', () => {
    expect(parseBenchArgs(['--rate', '100', '--burst', '10']).burst).toBe(10);
    expect(parseBenchArgs(['--rate', '100']).burst).toBeUndefined();
    expect(() => parseBenchArgs(['--burst', '10'])).toThrow(/--burst needs --rate/);
    expect(() => parseBenchArgs(['--rate', '100', '--burst', '0'])).toThrow(BenchUsageError);
  });
});

describe('spread: how far the pairs fall from their median', () => {
  it('min, max, and (max - min) / median', () => {
    expect(spread([2.0, 2.4, 1.6, 2.2, 1.8])).toEqual({ min: 1.6, max: 2.4, relative: expect.closeTo(0.4, 10) });
    expect(spread([1.5])).toEqual({ min: 1.5, max: 1.5, relative: 0 });
    expect(spread([])).toBeUndefined();
  });
});
