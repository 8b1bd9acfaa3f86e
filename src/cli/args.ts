import path from 'node:path';
import { DEFAULT_OUTAGE, type OutageWindow } from '../report/summary';
import { DEFAULT_GUARD } from '../domain/delete-guard';
import { backfillInputSchema } from '../workflow-input';
import type { BackfillInput, FileSourceSpec } from '../../workflows/definitions';
import { UsageError } from './errors';
import { COMMANDS, CommanderError, parseWithCommander, type OptionValues, type ParsedLine } from './program';

// The command line, parsed into a command without touching the network or the file system: commander reads the
// options (src/cli/program.ts defines them and the help), the checks below their values. Every problem is a
// UsageError (exit 2) with one line naming the option.

export interface StartCommand {
  name: 'start';
  workflowId: string;
  input: BackfillInput & { source: FileSourceSpec };
  /** `--from-plan ID`: the dry run whose plan to execute, its audit log found through Temporal. */
  planRun?: string;
  /** `verify --after ID`: the finished repair to verify, its audit log found through Temporal. */
  verifyRun?: string;
  /** `verify --clock-skew-ms N`, kept for a repair named by its run (its audit path is found later). */
  clockSkewMs?: number;
  wait: boolean;
  intervalSeconds?: number;
}
export interface SignalCommand {
  name: 'pause' | 'resume';
  workflowId: string;
  reason?: string;
  /** `resume --confirm-deletes`: lets the deletes the delete guard holds go. */
  confirmDeletes?: boolean;
}
export interface StatusCommand {
  name: 'status';
  workflowId: string;
  mode: 'follow' | 'once' | 'json';
  intervalSeconds?: number;
}
export interface PurgeCommand {
  name: 'purge';
  workflowId: string;
}
export type ReportOutput = 'summary' | 'summary-json' | 'csv' | 'json' | 'html';
export interface ReportCommand {
  name: 'report';
  workflowId?: string;
  audit?: string;
  output: ReportOutput;
  out?: string;
  outage: OutageWindow;
  /** The delete guard's thresholds a real run would use (the report says whether it would trip). */
  guard: { maxDeleteShare: number; minDecisions: number };
  /** What `onlyChangedSince` would skip, judged at this time (default: the outage's start). */
  onlyChangedSince: number;
  /**
   * `--verify`, with `--format html`: the verify run whose verdicts the page shows. With --workflow-id its workflow
   * id; with --audit its audit log.
   */
  verify?: string;
}
export type Command =
  /** `--help`, `help [command]`, `--version`: the text to print. */
  | { name: 'print'; text: string }
  | StartCommand
  | SignalCommand
  | StatusCommand
  | ReportCommand
  | { name: 'worker' }
  | PurgeCommand;

export interface ParseContext {
  cwd: string;
  now: Date;
}

type Values = OptionValues;

/** The workflow input's keys, as the options that set them. */
const FLAG_OF: Record<string, string> = {
  source: '--source',
  'source.path': '--source',
  'source.type': '--type',
  dryRun: '--dry-run',
  batchSize: '--batch-size',
  rateLimit: '--rate',
  runLabel: '--run-label',
  parallelBatches: '--parallel',
  fromPlan: '--from-plan',
  'fromPlan.auditPath': '--from-plan',
  expectChannelId: '--channel',
  onlyChangedSince: '--only-changed-since',
  maxDeleteShare: '--max-delete-share',
  deleteGuardMinDecisions: '--delete-guard-min-decisions',
  verifyAfter: '--after',
  'verifyAfter.auditPath': '--after',
  'verifyAfter.clockSkewMs': '--clock-skew-ms',
};

export function parseCommandLine(argv: readonly string[], ctx: ParseContext): Command {
  if (argv.length === 0) throw new UsageError(`missing command (${COMMANDS.join(', ')}); see webhook-backfill --help`);
  const parsed = parseOrUsageError(argv);
  if (parsed.kind === 'output') return { name: 'print', text: parsed.text };
  const { name, values, operands } = parsed;
  if (operands.length > 0)
    throw new UsageError(
      `unexpected argument "${operands[0]}" for "${name}" (options start with --); see webhook-backfill ${name} --help`,
    );
  switch (name) {
    case 'start':
    case 'verify':
      return parseStart(values, ctx, name === 'verify');
    case 'pause':
    case 'resume': {
      const reason = name === 'pause' ? optionalString(values, 'reason') : undefined;
      return {
        name,
        workflowId: requireWorkflowId(values),
        ...(reason !== undefined ? { reason } : {}),
        ...(values['confirm-deletes'] ? { confirmDeletes: true } : {}),
      };
    }
    case 'status': {
      if (values.once && values.json) throw new UsageError('--once and --json do not go together (--json prints once)');
      const intervalSeconds = optionalInterval(values);
      return {
        name: 'status',
        workflowId: requireWorkflowId(values),
        mode: values.json ? 'json' : values.once ? 'once' : 'follow',
        ...(intervalSeconds !== undefined ? { intervalSeconds } : {}),
      };
    }
    case 'report':
      return parseReport(values, ctx);
    case 'worker':
      return { name: 'worker' };
    case 'purge':
      return { name: 'purge', workflowId: requireWorkflowId(values) };
  }
}

/** Commander's parse, its errors as one-line usage errors that point at the help. */
function parseOrUsageError(argv: readonly string[]): ParsedLine {
  try {
    return parseWithCommander(argv);
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    const command = COMMANDS.find((c) => c === argv[0]);
    // Commander's own words ("error: unknown option '--bogus'", a "(Did you mean ...?)" on the next line).
    const problem = err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
    if (err.code === 'commander.unknownCommand') throw new UsageError(`${problem}; commands: ${COMMANDS.join(', ')}`);
    // `help frobnicate`: commander answers with the main help as an error.
    if (err.code === 'commander.help')
      throw new UsageError(`unknown command '${argv[1]}'; commands: ${COMMANDS.join(', ')}`);
    throw new UsageError(
      command
        ? `${command}: ${problem}; see webhook-backfill ${command} --help`
        : `${problem}; see webhook-backfill --help`,
    );
  }
}

function optionalString(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

function requireWorkflowId(values: Values): string {
  const id = optionalString(values, 'workflow-id');
  if (id === undefined) throw new UsageError('missing --workflow-id ID');
  if (id.trim() === '') throw new UsageError('--workflow-id must not be empty');
  return id;
}

function positiveInteger(values: Values, name: string, min = 1): number | undefined {
  const text = optionalString(values, name);
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim()) || Number(text) < min)
    throw new UsageError(`--${name} must be a ${min === 0 ? 'non-negative' : 'positive'} whole number, not "${text}"`);
  return Number(text);
}

const nonNegativeInteger = (values: Values, name: string) => positiveInteger(values, name, 0);

function positiveNumber(values: Values, name: string): number | undefined {
  const text = optionalString(values, name);
  if (text === undefined) return undefined;
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0)
    throw new UsageError(`--${name} must be a positive number, not "${text}"`);
  return value;
}

function optionalInterval(values: Values): number | undefined {
  const seconds = positiveNumber(values, 'interval');
  if (seconds !== undefined && seconds < 0.2) throw new UsageError('--interval must be at least 0.2 seconds');
  return seconds;
}

/** The source's type from its extension, if it tells. */
export function sourceTypeOf(file: string): FileSourceSpec['type'] | undefined {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  return undefined;
}

/** `backfill-2024-11-20T09-30-00Z`: sortable, and safe in file names (the id names the run's data directory). */
export function defaultWorkflowId(now: Date): string {
  return `backfill-${now.toISOString().slice(0, 19).replace(/:/g, '-')}Z`;
}

/** `start`, or `verify` (a start with --after: the same options less the ones a verify run cannot take). */
function parseStart(values: Values, ctx: ParseContext, verify = false): StartCommand {
  const after = verify ? optionalString(values, 'after') : undefined;
  if (verify && (after === undefined || after.trim() === ''))
    throw new UsageError('missing --after RUN (the finished repair to verify: its workflow id or audit log)');
  const afterFile = after !== undefined && looksLikePath(after) ? path.resolve(ctx.cwd, after) : undefined;
  const verifyRun = after !== undefined && afterFile === undefined ? after : undefined;
  const clockSkewMs = verify ? nonNegativeInteger(values, 'clock-skew-ms') : undefined;
  const source = optionalString(values, 'source');
  if (source === undefined) throw new UsageError('missing --source FILE (the member source, CSV or JSONL)');
  if (source.trim() === '') throw new UsageError('--source must not be empty');
  const typeText = optionalString(values, 'type');
  let type: FileSourceSpec['type'];
  if (typeText !== undefined) {
    if (typeText !== 'csv' && typeText !== 'jsonl')
      throw new UsageError(`--type must be csv or jsonl, not "${typeText}"`);
    type = typeText;
  } else {
    const guessed = sourceTypeOf(source);
    if (!guessed)
      throw new UsageError(`cannot tell the format of ${source} from its extension: pass --type csv or --type jsonl`);
    type = guessed;
  }
  const workflowId = optionalString(values, 'workflow-id') ?? defaultWorkflowId(ctx.now);
  if (workflowId.trim() === '') throw new UsageError('--workflow-id must not be empty');

  const batchSize = positiveInteger(values, 'batch-size');
  const parallelBatches = positiveInteger(values, 'parallel');
  const rateLimit = positiveNumber(values, 'rate');
  const runLabel = optionalString(values, 'run-label');
  const plan = optionalString(values, 'from-plan');
  if (plan !== undefined && plan.trim() === '') throw new UsageError('--from-plan must not be empty');
  const planFile = plan !== undefined && looksLikePath(plan) ? path.resolve(ctx.cwd, plan) : undefined;
  const planRun = plan !== undefined && planFile === undefined ? plan : undefined;
  const expectChannelId = optionalString(values, 'channel');
  const sinceText = optionalString(values, 'only-changed-since');
  if (sinceText !== undefined) parseIsoTime(sinceText, '--only-changed-since');
  const maxDeleteShare = deleteShare(values);
  const deleteGuardMinDecisions = positiveInteger(values, 'delete-guard-min-decisions');
  const input: StartCommand['input'] = {
    source: { type, path: path.resolve(ctx.cwd, source) },
    ...(values['dry-run'] ? { dryRun: true } : {}),
    ...(batchSize !== undefined ? { batchSize } : {}),
    ...(parallelBatches !== undefined ? { parallelBatches } : {}),
    ...(rateLimit !== undefined ? { rateLimit } : {}),
    ...(runLabel !== undefined ? { runLabel } : {}),
    ...(planFile !== undefined ? { fromPlan: { auditPath: planFile } } : {}),
    ...(expectChannelId !== undefined ? { expectChannelId } : {}),
    ...(sinceText !== undefined ? { onlyChangedSince: sinceText.trim() } : {}),
    ...(maxDeleteShare !== undefined ? { maxDeleteShare } : {}),
    ...(deleteGuardMinDecisions !== undefined ? { deleteGuardMinDecisions } : {}),
    ...(afterFile !== undefined
      ? { verifyAfter: { auditPath: afterFile, ...(clockSkewMs !== undefined ? { clockSkewMs } : {}) } }
      : {}),
  };
  // The workflow validates its input again; checking here turns a typo into exit 2 before anything starts.
  // (A plan named by its run is found later; a stand-in path lets the rest be checked now.)
  const checked = backfillInputSchema.safeParse({
    ...input,
    ...(planRun !== undefined ? { fromPlan: { auditPath: '/plan' } } : {}),
    ...(verifyRun !== undefined
      ? { verifyAfter: { auditPath: '/after', ...(clockSkewMs !== undefined ? { clockSkewMs } : {}) } }
      : {}),
  });
  if (!checked.success) {
    const problems = checked.error.issues.map((issue) => {
      const key = issue.path.join('.');
      return `${FLAG_OF[key] ?? (key || 'input')}: ${issue.message}`;
    });
    throw new UsageError(`invalid options: ${problems.join('; ')}`);
  }
  if (values.interval !== undefined && !values.wait) throw new UsageError('--interval goes with --wait');
  const intervalSeconds = optionalInterval(values);
  return {
    name: 'start',
    workflowId,
    input,
    ...(planRun !== undefined ? { planRun } : {}),
    ...(verifyRun !== undefined ? { verifyRun, ...(clockSkewMs !== undefined ? { clockSkewMs } : {}) } : {}),
    wait: values.wait === true,
    ...(intervalSeconds !== undefined ? { intervalSeconds } : {}),
  };
}

/** `--max-delete-share X`: a share of the decisions, 0 < X <= 1. */
function deleteShare(values: Values): number | undefined {
  const text = optionalString(values, 'max-delete-share');
  if (text === undefined) return undefined;
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0 || value > 1) {
    throw new UsageError(`--max-delete-share must be a number above 0 and at most 1 (e.g. 0.5), not "${text}"`);
  }
  return value;
}

/** `--from-plan` takes a dry run's workflow id or its audit log's path: a path has a slash or a .jsonl/.json name. */
export function looksLikePath(text: string): boolean {
  return /[\\/]/.test(text) || /\.jsonl?$/i.test(text);
}

/** An ISO 8601 time that says its zone: a bare local time would mean different instants on different machines. */
export function parseIsoTime(text: string, option: string): number {
  const zoned = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(text.trim());
  const ms = Date.parse(text.trim());
  if (!zoned || !Number.isFinite(ms))
    throw new UsageError(
      `${option} must be an ISO 8601 time with Z or an offset (e.g. 2024-11-01T00:40:00+09:00), not "${text}"`,
    );
  return ms;
}

function parseReport(values: Values, ctx: ParseContext): ReportCommand {
  const workflowId = optionalString(values, 'workflow-id');
  const audit = optionalString(values, 'audit');
  if (workflowId !== undefined && audit !== undefined)
    throw new UsageError('pass either --workflow-id or --audit, not both');
  if (workflowId === undefined && audit === undefined)
    throw new UsageError('missing --workflow-id ID (or --audit FILE)');
  if (workflowId !== undefined && workflowId.trim() === '') throw new UsageError('--workflow-id must not be empty');
  if (audit !== undefined && audit.trim() === '') throw new UsageError('--audit must not be empty');

  const format = optionalString(values, 'format');
  if (format !== undefined && format !== 'csv' && format !== 'json' && format !== 'html')
    throw new UsageError(`--format must be csv, json or html, not "${format}"`);
  let output: ReportOutput;
  if (values.summary) {
    if (format === 'csv' || format === 'html')
      throw new UsageError(
        'the summary is text or JSON: use --summary --format json, or --format csv without --summary',
      );
    output = format === 'json' ? 'summary-json' : 'summary';
  } else {
    output = format ?? 'summary';
  }

  const startText = optionalString(values, 'outage-start');
  const endText = optionalString(values, 'outage-end');
  const outage: OutageWindow = {
    start: startText !== undefined ? parseIsoTime(startText, '--outage-start') : DEFAULT_OUTAGE.start,
    end: endText !== undefined ? parseIsoTime(endText, '--outage-end') : DEFAULT_OUTAGE.end,
  };
  if (outage.start >= outage.end)
    throw new UsageError('the outage window must end after it starts (--outage-start, --outage-end)');

  const out = optionalString(values, 'out');
  if (out !== undefined && out.trim() === '') throw new UsageError('--out must not be empty');
  const verify = optionalString(values, 'verify');
  if (verify !== undefined && output !== 'html') throw new UsageError('--verify goes with --format html');
  if (verify !== undefined && verify.trim() === '') throw new UsageError('--verify must not be empty');
  const sinceText = optionalString(values, 'only-changed-since');
  const guard = {
    maxDeleteShare: deleteShare(values) ?? DEFAULT_GUARD.maxDeleteShare,
    minDecisions: positiveInteger(values, 'delete-guard-min-decisions') ?? DEFAULT_GUARD.minDecisions,
  };
  return {
    name: 'report',
    ...(workflowId !== undefined ? { workflowId } : {}),
    ...(audit !== undefined ? { audit: path.resolve(ctx.cwd, audit) } : {}),
    output,
    ...(out !== undefined ? { out: path.resolve(ctx.cwd, out) } : {}),
    outage,
    guard,
    onlyChangedSince: sinceText !== undefined ? parseIsoTime(sinceText, '--only-changed-since') : outage.start,
    ...(verify === undefined ? {} : { verify: audit !== undefined ? path.resolve(ctx.cwd, verify) : verify }),
  };
}
