import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  defaultWorkflowId,
  looksLikePath,
  parseCommandLine,
  parseIsoTime,
  sourceTypeOf,
  type Command,
} from '../../src/cli/args';
import { CliError, EXIT, UsageError, oneLine } from '../../src/cli/errors';
import { COMMANDS } from '../../src/cli/program';
import type { CliIo } from '../../src/cli/io';
import { main } from '../../src/cli/main';
import { RateMeter, etaSeconds, fitColumns, renderBar, renderProgress } from '../../src/cli/progress-bar';
import { loadCliEnv } from '../../src/cli/temporal-env';
import { loadConfig } from '../../src/config';
import { DEFAULT_OUTAGE } from '../../src/report/summary';
import type { Progress } from '../../workflows/definitions';

const ctx = { cwd: '/work/data', now: new Date('2024-11-20T09:30:05.123Z') };
const parse = (line: string): Command => parseCommandLine(line === '' ? [] : line.split(' '), ctx);

const REPORT_DEFAULTS = { guard: { maxDeleteShare: 0.5, minDecisions: 100 }, onlyChangedSince: DEFAULT_OUTAGE.start };

describe('parseCommandLine: commands', () => {
  it.each<[string, Command]>([
    [
      'start --source members.csv',
      {
        name: 'start',
        workflowId: 'backfill-2024-11-20T09-30-05Z',
        input: { source: { type: 'csv', path: '/work/data/members.csv' } },
        wait: false,
      },
    ],
    [
      'start --source /d/m.jsonl --dry-run --batch-size 50 --rate 7.5 --run-label nov --parallel 4 --workflow-id bf-1 --wait --interval 2',
      {
        name: 'start',
        workflowId: 'bf-1',
        input: {
          source: { type: 'jsonl', path: '/d/m.jsonl' },
          dryRun: true,
          batchSize: 50,
          parallelBatches: 4,
          rateLimit: 7.5,
          runLabel: 'nov',
        },
        wait: true,
        intervalSeconds: 2,
      },
    ],
    [
      'verify --after backfill-2024-11 --source fresh.csv --workflow-id v-1 --clock-skew-ms 2000 --wait',
      {
        name: 'start',
        workflowId: 'v-1',
        input: { source: { type: 'csv', path: '/work/data/fresh.csv' } },
        verifyRun: 'backfill-2024-11',
        clockSkewMs: 2000,
        wait: true,
      },
    ],
    [
      'verify --after runs/audit.jsonl --source fresh.jsonl --workflow-id v-2',
      {
        name: 'start',
        workflowId: 'v-2',
        input: {
          source: { type: 'jsonl', path: '/work/data/fresh.jsonl' },
          verifyAfter: { auditPath: '/work/data/runs/audit.jsonl' },
        },
        wait: false,
      },
    ],
    [
      'start --source export.txt --type jsonl',
      {
        name: 'start',
        workflowId: 'backfill-2024-11-20T09-30-05Z',
        input: { source: { type: 'jsonl', path: '/work/data/export.txt' } },
        wait: false,
      },
    ],
    [
      'start --source=m.NDJSON',
      {
        name: 'start',
        workflowId: 'backfill-2024-11-20T09-30-05Z',
        input: { source: { type: 'jsonl', path: '/work/data/m.NDJSON' } },
        wait: false,
      },
    ],
    [
      'start --source m.csv --from-plan bf-dry',
      {
        name: 'start',
        workflowId: 'backfill-2024-11-20T09-30-05Z',
        input: { source: { type: 'csv', path: '/work/data/m.csv' } },
        planRun: 'bf-dry',
        wait: false,
      },
    ],
    [
      'start --source m.csv --from-plan plans/audit.jsonl',
      {
        name: 'start',
        workflowId: 'backfill-2024-11-20T09-30-05Z',
        input: {
          source: { type: 'csv', path: '/work/data/m.csv' },
          fromPlan: { auditPath: '/work/data/plans/audit.jsonl' },
        },
        wait: false,
      },
    ],
    ['pause --workflow-id bf-1', { name: 'pause', workflowId: 'bf-1' }],
    ['pause --workflow-id bf-1 --reason CRM-freeze', { name: 'pause', workflowId: 'bf-1', reason: 'CRM-freeze' }],
    ['resume --workflow-id bf-1', { name: 'resume', workflowId: 'bf-1' }],
    ['status --workflow-id bf-1', { name: 'status', workflowId: 'bf-1', mode: 'follow' }],
    ['status --workflow-id bf-1 --once', { name: 'status', workflowId: 'bf-1', mode: 'once' }],
    ['status --workflow-id bf-1 --json', { name: 'status', workflowId: 'bf-1', mode: 'json' }],
    [
      'status --workflow-id bf-1 --interval 0.5',
      { name: 'status', workflowId: 'bf-1', mode: 'follow', intervalSeconds: 0.5 },
    ],
    [
      'report --workflow-id bf-1',
      { name: 'report', workflowId: 'bf-1', output: 'summary', outage: DEFAULT_OUTAGE, ...REPORT_DEFAULTS },
    ],
    [
      'report --workflow-id bf-1 --summary',
      { name: 'report', workflowId: 'bf-1', output: 'summary', outage: DEFAULT_OUTAGE, ...REPORT_DEFAULTS },
    ],
    [
      'report --workflow-id bf-1 --summary --format json',
      { name: 'report', workflowId: 'bf-1', output: 'summary-json', outage: DEFAULT_OUTAGE, ...REPORT_DEFAULTS },
    ],
    [
      'report --audit a.jsonl --format csv --out r.csv',
      {
        name: 'report',
        audit: '/work/data/a.jsonl',
        output: 'csv',
        out: '/work/data/r.csv',
        outage: DEFAULT_OUTAGE,
        ...REPORT_DEFAULTS,
      },
    ],
    [
      'report --workflow-id bf-1 --format html --out r.html --verify bf-1-verify',
      {
        name: 'report',
        workflowId: 'bf-1',
        output: 'html',
        out: '/work/data/r.html',
        verify: 'bf-1-verify',
        outage: DEFAULT_OUTAGE,
        ...REPORT_DEFAULTS,
      },
    ],
    [
      'report --audit a.jsonl --format html --verify v/audit.jsonl',
      {
        name: 'report',
        audit: '/work/data/a.jsonl',
        output: 'html',
        verify: '/work/data/v/audit.jsonl',
        outage: DEFAULT_OUTAGE,
        ...REPORT_DEFAULTS,
      },
    ],
    [
      'report --audit /x/a.jsonl --format json',
      { name: 'report', audit: '/x/a.jsonl', output: 'json', outage: DEFAULT_OUTAGE, ...REPORT_DEFAULTS },
    ],
    [
      'report --workflow-id bf-1 --outage-start 2024-11-01T00:00:00+09:00 --outage-end 2024-11-02T00:00:00Z',
      {
        name: 'report',
        workflowId: 'bf-1',
        output: 'summary',
        outage: { start: Date.parse('2024-10-31T15:00:00Z'), end: Date.parse('2024-11-02T00:00:00Z') },
        guard: REPORT_DEFAULTS.guard,
        onlyChangedSince: Date.parse('2024-10-31T15:00:00Z'),
      },
    ],
    [
      'report --audit /x/a.jsonl --only-changed-since 2024-11-05T00:00:00Z --max-delete-share 0.2 --delete-guard-min-decisions 10',
      {
        name: 'report',
        audit: '/x/a.jsonl',
        output: 'summary',
        outage: DEFAULT_OUTAGE,
        guard: { maxDeleteShare: 0.2, minDecisions: 10 },
        onlyChangedSince: Date.parse('2024-11-05T00:00:00Z'),
      },
    ],
    [
      'start --source m.csv --channel ch-42 --only-changed-since 2024-11-01T00:40:00+09:00 --max-delete-share 0.3 --delete-guard-min-decisions 50',
      {
        name: 'start',
        workflowId: 'backfill-2024-11-20T09-30-05Z',
        input: {
          source: { type: 'csv', path: '/work/data/m.csv' },
          expectChannelId: 'ch-42',
          onlyChangedSince: '2024-11-01T00:40:00+09:00',
          maxDeleteShare: 0.3,
          deleteGuardMinDecisions: 50,
        },
        wait: false,
      },
    ],
    ['resume --workflow-id bf-1 --confirm-deletes', { name: 'resume', workflowId: 'bf-1', confirmDeletes: true }],
    ['worker', { name: 'worker' }],
    ['purge --workflow-id bf-1', { name: 'purge', workflowId: 'bf-1' }],
  ])('%s', (line, expected) => {
    expect(parse(line)).toEqual(expected);
  });

  it.each([
    ['--help', 'Usage: webhook-backfill <command>'],
    ['-h', 'Usage: webhook-backfill <command>'],
    ['help', 'Usage: webhook-backfill <command>'],
    ['help report', 'Usage: webhook-backfill report '],
    ['status --workflow-id x --help', 'Usage: webhook-backfill status '],
    ['start --bogus -h', 'Usage: webhook-backfill start '],
    ['purge --help', 'Usage: webhook-backfill purge '],
    [
      '--version',
      (JSON.parse(readFileSync(path.join(__dirname, '../../package.json'), 'utf8')) as { version: string }).version,
    ],
  ])('%s prints the help or the version', (line, text) => {
    const command = parse(line);
    expect(command.name).toBe('print');
    expect(command.name === 'print' && command.text.startsWith(text)).toBe(true);
  });

  it('keeps a reason with spaces as one argument', () => {
    expect(parseCommandLine(['pause', '--workflow-id', 'bf-1', '--reason', 'waiting for the CRM freeze'], ctx)).toEqual(
      {
        name: 'pause',
        workflowId: 'bf-1',
        reason: 'waiting for the CRM freeze',
      },
    );
  });
});

describe('parseCommandLine: usage errors are one line, exit 2', () => {
  it.each<[string, RegExp]>([
    ['', /^missing command \(start, verify, pause, resume, status, report, worker, purge\)/],
    [
      'frobnicate',
      /^unknown command 'frobnicate'; commands: start, verify, pause, resume, status, report, worker, purge$/,
    ],
    ['stats --workflow-id x', /^unknown command 'stats' \(Did you mean status\?\); commands: /],
    ['verify --source fresh.csv', /^missing --after RUN/],
    [
      'verify --after bf --source fresh.csv --dry-run',
      /^verify: unknown option '--dry-run'; see webhook-backfill verify --help$/,
    ],
    ['verify --after bf --source fresh.csv --from-plan p', /^verify: unknown option '--from-plan'/],
    ['verify --after bf --source fresh.csv --clock-skew-ms 1.5', /--clock-skew-ms must be a non-negative whole number/],
    ['verify --after bf', /^missing --source FILE/],
    ['help frobnicate', /^unknown command 'frobnicate'/],
    ['--workflow-id x status', /^unknown option '--workflow-id'; see webhook-backfill --help$/],
    ['pause', /^missing --workflow-id ID$/],
    ['resume', /^missing --workflow-id ID$/],
    ['status', /^missing --workflow-id ID$/],
    [
      'status --workflow-id',
      /^status: option '--workflow-id <ID>' argument missing; see webhook-backfill status --help$/,
    ],
    ['status --workflow-id x --bogus', /^status: unknown option '--bogus'/],
    ['status --workflow-id x extra', /^unexpected argument "extra" for "status"/],
    ['status --workflow-id x --once --json', /--once and --json/],
    ['status --workflow-id x --interval 0', /--interval must be a positive number/],
    ['status --workflow-id x --once=yes', /^status: unknown option '--once=yes'/],
    ['start', /^missing --source FILE/],
    ['start --source members.xlsx', /cannot tell the format of members.xlsx .*--type csv or --type jsonl/],
    ['start --source m.csv --type xml', /^--type must be csv or jsonl, not "xml"$/],
    ['start --source m.csv --batch-size ten', /^--batch-size must be a positive whole number, not "ten"$/],
    ['start --source m.csv --batch-size 0', /^--batch-size must be a positive whole number/],
    ['start --source m.csv --batch-size 1.5', /^--batch-size must be a positive whole number/],
    ['start --source m.csv --batch-size 5000', /^invalid options: --batch-size: .*1000/],
    ['start --source m.csv --parallel 64', /^invalid options: --parallel: .*32/],
    ['start --source m.csv --rate -3', /^--rate must be a positive number, not "-3"$/],
    ['start --source m.csv --rate 0', /^--rate must be a positive number, not "0"$/],
    ['start --source m.csv --interval 2', /^--interval goes with --wait$/],
    [
      'start --source m.csv --dryrun',
      /^start: unknown option '--dryrun' \(Did you mean --dry-run\?\); see webhook-backfill start --help$/,
    ],
    ['start --source m.csv --from-plan', /^start: option '--from-plan <DRY-RUN>' argument missing/],
    ['report', /^missing --workflow-id ID \(or --audit FILE\)$/],
    ['report --workflow-id a --audit b', /^pass either --workflow-id or --audit, not both$/],
    ['report --workflow-id a --format xml', /^--format must be csv, json or html, not "xml"$/],
    ['report --workflow-id a --summary --format html', /^the summary is text or JSON/],
    ['report --workflow-id a --verify v', /^--verify goes with --format html$/],
    ['report --workflow-id a --format csv --verify v', /^--verify goes with --format html$/],
    ['report --workflow-id a --summary --format csv', /^the summary is text or JSON/],
    [
      'report --workflow-id a --outage-start 2024-11-01T00:40',
      /^--outage-start must be an ISO 8601 time with Z or an offset/,
    ],
    ['report --workflow-id a --outage-end yesterday', /^--outage-end must be an ISO 8601 time/],
    ['report --workflow-id a --outage-start 2024-12-01T00:00:00Z', /^the outage window must end after it starts/],
    ['worker --now', /^worker: unknown option '--now'/],
    [
      'start --source m.csv --only-changed-since 2024-11-01T00:40',
      /^--only-changed-since must be an ISO 8601 time with Z or an offset/,
    ],
    ['start --source m.csv --max-delete-share 1.5', /^--max-delete-share must be a number above 0 and at most 1/],
    ['start --source m.csv --max-delete-share 0', /^--max-delete-share must be a number above 0/],
    [
      'start --source m.csv --delete-guard-min-decisions 0',
      /^--delete-guard-min-decisions must be a positive whole number/,
    ],
    ['start --source m.csv --channel', /^start: option '--channel <ID>' argument missing/],
    ['pause --workflow-id x --confirm-deletes', /^pause: unknown option '--confirm-deletes'/],
    ['report --workflow-id a --only-changed-since soon', /^--only-changed-since must be an ISO 8601 time/],
    ['purge', /^missing --workflow-id ID$/],
    ['purge --workflow-id x --reason y', /^purge: unknown option '--reason'/],
  ])('%j', (line, message) => {
    let error: unknown;
    try {
      parse(line);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).exitCode).toBe(EXIT.USAGE);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain('\n');
  });
});

describe('small helpers', () => {
  it.each([
    ['a.csv', 'csv'],
    ['A.CSV', 'csv'],
    ['a.jsonl', 'jsonl'],
    ['a.ndjson', 'jsonl'],
    ['a.json', undefined],
    ['a', undefined],
  ])('sourceTypeOf(%s) = %s', (file, type) => {
    expect(sourceTypeOf(file)).toBe(type);
  });

  it.each([
    ['backfill-2024-11-dry', false],
    ['./audit.jsonl', true],
    ['/data/x/audit', true],
    ['audit.jsonl', true],
    ['plan.JSON', true],
  ])('looksLikePath(%s) = %s', (text, isPath) => {
    expect(looksLikePath(text)).toBe(isPath);
  });

  it('names a run after the UTC time, safe in file names', () => {
    expect(defaultWorkflowId(new Date('2024-01-02T03:04:05.999Z'))).toBe('backfill-2024-01-02T03-04-05Z');
  });

  it.each([
    ['2024-11-01T00:40:00+09:00', Date.parse('2024-10-31T15:40:00Z')],
    ['2024-11-01T00:40+0900', Date.parse('2024-10-31T15:40:00Z')],
    ['2024-10-31T15:40:00.000Z', Date.parse('2024-10-31T15:40:00Z')],
  ])('parseIsoTime(%s)', (text, ms) => {
    expect(parseIsoTime(text, '--x')).toBe(ms);
  });

  it.each([
    ['a\nb', 'a'],
    ['\n  spaced   out \n', 'spaced out'],
  ])('oneLine(%j) = %j', (text, line) => {
    expect(oneLine(text)).toBe(line);
  });

  it('documents every command and every exit code', () => {
    const helpOf = (line: string) => {
      const command = parse(line);
      return command.name === 'print' ? command.text : '';
    };
    const main = helpOf('--help');
    for (const command of COMMANDS) {
      expect(main).toMatch(new RegExp(`^  ${command} `, 'm'));
      expect(helpOf(`help ${command}`)).toMatch(new RegExp(`^Usage: webhook-backfill ${command}\\b`));
    }
    for (const code of Object.values(EXIT)) expect(main).toMatch(new RegExp(`^  ${code}  `, 'm'));
  });
});

describe('the environment of the workflow commands', () => {
  it('has the worker configuration defaults and needs no Channel Talk secrets', () => {
    const env = loadCliEnv({});
    const worker = loadConfig({ CHANNEL_ACCESS_KEY: 'k', CHANNEL_ACCESS_SECRET: 's' });
    expect(env).toMatchObject({
      TEMPORAL_ADDRESS: worker.TEMPORAL_ADDRESS,
      TEMPORAL_NAMESPACE: worker.TEMPORAL_NAMESPACE,
      BACKFILL_TASK_QUEUE: worker.BACKFILL_TASK_QUEUE,
    });
    expect(env.TEMPORAL_ADDRESS).toBe('localhost:7233');
  });

  it('reads the variables, empty meaning default', () => {
    expect(
      loadCliEnv({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_NAMESPACE: 'ops', BACKFILL_TASK_QUEUE: ' ' }),
    ).toMatchObject({
      TEMPORAL_ADDRESS: 'temporal:7233',
      TEMPORAL_NAMESPACE: 'ops',
      BACKFILL_TASK_QUEUE: 'webhook-backfill',
    });
  });

  it('rejects a bad codec key as a configuration error naming the variable, not its value', () => {
    let error: unknown;
    try {
      loadCliEnv({ BACKFILL_CODEC_KEY: 'not-a-key-s3cr3t' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(EXIT.USAGE);
    expect((error as Error).message).toMatch(/^invalid configuration: BACKFILL_CODEC_KEY /);
    expect((error as Error).message).not.toContain('s3cr3t');
  });
});

function progress(p: Partial<Progress>): Progress {
  return {
    processed: 0,
    upserts: 0,
    deletes: 0,
    unchanged: 0,
    failed: 0,
    skipped: 0,
    total: 300,
    batchesDone: 0,
    batchesTotal: 3,
    pendingReplays: 0,
    paused: false,
    pauseReason: null,
    dryRun: false,
    runs: 1,
    auditPath: '/data/audit.jsonl',
    done: false,
    ...p,
  };
}

describe('the progress line', () => {
  it.each<[string, Partial<Progress>, number | null, RegExp]>([
    ['preparing', { total: 0 }, null, /^preparing: reading the member source {2}upserts 0/],
    [
      'the source still being read beside the batches: the total a lower bound, no bar, no ETA',
      { processed: 5000, unchanged: 5000, total: 4001, readingSource: true },
      2000,
      /^5000\/4001\+ \(the source is still being read\) {2}2,?000(\.0)?\/s {2}upserts 0/,
    ],
    [
      'running, rate known',
      { processed: 150, upserts: 40, unchanged: 110 },
      10,
      /^\[#####\.\.\.\.\.] +50% 150\/300 {2}10\.0\/s {2}ETA 0:15 {2}upserts 40 deletes 0 unchanged 110 failed 0 skipped 0$/,
    ],
    ['running, rate not known yet', { processed: 100 }, null, /33% 100\/300 {2}…\/s {2}ETA …/],
    [
      'paused with a reason',
      { processed: 100, paused: true, pauseReason: 'CRM freeze' },
      10,
      /33% 100\/300 {2}PAUSED: CRM freeze {2}upserts/,
    ],
    ['done', { processed: 300, done: true }, 5, /100% 300\/300 {2}done/],
    ['a dry run', { processed: 30, dryRun: true }, 1, /^dry run {2}\[/],
    ['replays waiting', { processed: 30, pendingReplays: 2 }, 1, /2 replays retrying$/],
    ['one replay waiting', { processed: 30, pendingReplays: 1 }, 1, /1 replay retrying$/],
    [
      'the receiver down for everyone',
      {
        processed: 30,
        pendingReplays: 12,
        receiverUnavailable: { since: '2026-12-06T10:00:00.000Z', waitingReplays: 12 },
      } as Partial<Progress>,
      1,
      /skipped 0 {2}RECEIVER UNAVAILABLE since 2026-12-06T10:00:00.000Z, no lookups {2}12 replays retrying$/,
    ],
    [
      'the channel the credentials open',
      { processed: 30, channel: { id: 'ch-7', name: 'Acme' } } as Partial<Progress>,
      1,
      /skipped 0 {2}channel "Acme" \(id ch-7\)$/,
    ],
    [
      'a channel without a name',
      { processed: 30, channel: { id: 'ch-7', name: null } } as Partial<Progress>,
      1,
      /skipped 0 {2}channel ch-7$/,
    ],
    ['no channel (an older run)', { processed: 30, channel: null } as Partial<Progress>, 1, /skipped 0$/],
    [
      'a verify run: its verdicts, not the outcomes they are stored under',
      {
        processed: 30,
        upserts: 4,
        unchanged: 26,
        verify: { repaired: 26, 'still differs': 4, 'still present': 0, 'changed since': 0, failed: 0 },
      } as Partial<Progress>,
      1,
      /ETA 4:30 {2}repaired 26 still differs 4 still present 0 changed since 0 failed 0$/,
    ],
    [
      'the channel rate limit, giving way (issue 24)',
      {
        processed: 30,
        channelPace: {
          ratePerSecond: 36.2,
          limit: 200,
          remaining: 41,
          givingWay: true,
          rateLimited: 0,
          warnings: 2,
          waitedMs: 900,
        },
      } as Partial<Progress>,
      1,
      /skipped 0 {2}API 36\.2\/s remaining 41\/200 GIVING WAY to other traffic 2 grace warnings$/,
    ],
    [
      'the channel rate limit, no headers, 429s',
      {
        processed: 30,
        channelPace: {
          ratePerSecond: 12,
          limit: null,
          remaining: null,
          givingWay: false,
          rateLimited: 3,
          warnings: 0,
          waitedMs: 0,
        },
      } as Partial<Progress>,
      1,
      /skipped 0 {2}API 12(\.0)?\/s 3×429$/,
    ],
  ])('%s', (_what, p, rate, expected) => {
    expect(renderProgress(progress(p), { rate, barWidth: 10, unicode: false })).toMatch(expected);
  });

  it('fits a terminal line so it redraws in place', () => {
    const line = renderProgress(progress({ processed: 10 }), { rate: 1, barWidth: 24, unicode: true, columns: 40 });
    expect(line.length).toBeLessThanOrEqual(39);
    expect(line.endsWith('…')).toBe(true);
  });

  it.each<[string, number | undefined, string]>([
    ['short', 80, 'short'],
    ['exactly nine', 13, 'exactly nine'],
    ['exactly nine', 12, 'exactly ni…'],
    ['anything', undefined, 'anything'],
    ['anything', 0, 'anything'],
  ])('fitColumns(%j, %s) = %j', (line, columns, fitted) => {
    expect(fitColumns(line, columns)).toBe(fitted);
  });

  it.each<[number, number, string]>([
    [0, 10, '░░░░░░░░░░'],
    [0.5, 10, '█████░░░░░'],
    [1, 4, '████'],
    [2, 4, '████'],
  ])('bar at %s of %s', (fraction, width, bar) => {
    expect(renderBar(fraction, width)).toBe(bar);
  });

  it.each<[number, number, number | null, number | null]>([
    [300, 150, 10, 15],
    [300, 150, null, null],
    [300, 150, 0, null],
    [0, 0, 10, null],
  ])('ETA of %s/%s at %s/s', (total, processed, rate, eta) => {
    expect(etaSeconds({ total, processed }, rate)).toBe(eta);
  });
});

describe('RateMeter', () => {
  it('measures members/s over its window', () => {
    const meter = new RateMeter(10_000);
    meter.sample(0, 0);
    expect(meter.rate()).toBeNull();
    meter.sample(500, 0);
    expect(meter.rate()).toBeNull();
    meter.sample(2_000, 100);
    expect(meter.rate()).toBe(50);
    for (let t = 3_000; t <= 30_000; t += 1_000) meter.sample(t, 100 + ((t - 2_000) / 1_000) * 10);
    expect(meter.rate()).toBeCloseTo(10, 5); // the early burst has left the window
  });

  it('restarts after a pause, so waiting does not read as slowness', () => {
    const meter = new RateMeter(10_000);
    meter.sample(0, 0);
    meter.sample(5_000, 100);
    meter.sample(6_000, 100, true);
    expect(meter.rate()).toBeNull();
    meter.sample(60_000, 100);
    meter.sample(62_000, 140);
    expect(meter.rate()).toBe(20);
  });

  it('reads 0 when a started run stops moving', () => {
    const meter = new RateMeter(10_000);
    meter.sample(0, 100);
    meter.sample(5_000, 100);
    expect(meter.rate()).toBe(0);
  });
});

describe('main without a server', () => {
  function fakeIo(env: NodeJS.ProcessEnv = {}): CliIo & { out: () => string; err: () => string } {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (c: Buffer) => (out += c.toString()));
    stderr.on('data', (c: Buffer) => (err += c.toString()));
    return {
      stdout,
      stderr,
      env,
      cwd: '/tmp',
      now: () => new Date(),
      sleep: async () => undefined,
      out: () => out,
      err: () => err,
    };
  }

  it('prints help with the exit codes, exit 0', async () => {
    const io = fakeIo();
    expect(await main(['--help'], io)).toBe(0);
    expect(io.out()).toContain('Exit codes:');
    expect(io.err()).toBe('');
  });

  it('reports a usage error as one line on stderr, exit 2', async () => {
    const io = fakeIo();
    expect(await main(['pause'], io)).toBe(2);
    expect(io.err()).toBe('webhook-backfill: missing --workflow-id ID\n');
    expect(io.out()).toBe('');
  });

  it('reports a bad environment before connecting, exit 2', async () => {
    const io = fakeIo({ BACKFILL_CODEC_KEY: 'short' });
    expect(await main(['status', '--workflow-id', 'x'], io)).toBe(2);
    expect(io.err()).toMatch(/^webhook-backfill: invalid configuration: BACKFILL_CODEC_KEY [^\n]*\n$/);
  });

  it('reports an unreadable audit log, exit 1', async () => {
    const io = fakeIo();
    expect(await main(['report', '--audit', '/nonexistent/audit.jsonl'], io)).toBe(1);
    expect(io.err()).toBe('webhook-backfill: cannot read the audit log /nonexistent/audit.jsonl: no such file\n');
  });
});
