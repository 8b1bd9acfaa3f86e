// The command line of `webhook-backfill`, defined once: every command and option with its help text, parsed and
// documented by commander (`webhook-backfill --help`, `webhook-backfill <command> --help` are generated from it).
import { Command, CommanderError } from 'commander';
import { packageVersion } from './io';

export const COMMANDS = ['start', 'verify', 'pause', 'resume', 'status', 'report', 'worker', 'purge'] as const;
export type CommandName = (typeof COMMANDS)[number];

/** An option as commander takes it (`--name <VALUE>` takes a value, `--name` is a switch) and its help line. */
interface OptionSpec {
  flags: string;
  help: string;
}

interface CommandSpec {
  /** The line in the main help's list of commands. */
  summary: string;
  /** After `Usage: webhook-backfill <command> `. */
  usage: string;
  /** One paragraph (its line breaks are for the source only: commander wraps it to the terminal). */
  description: string;
  options: readonly OptionSpec[];
  /** Printed after the options (equivalent `temporal` commands, exit codes). */
  after?: string;
}

const WORKFLOW_ID: OptionSpec = { flags: '--workflow-id <ID>', help: 'the run (its workflow id)' };
const ONLY_CHANGED_SINCE = '--only-changed-since <ISO>';
const MAX_DELETE_SHARE = '--max-delete-share <X>';
const MIN_DECISIONS = '--delete-guard-min-decisions <N>';

/** The options of a run that `start` and `verify` share. */
const RUN_OPTIONS: readonly OptionSpec[] = [
  {
    flags: '--type <csv|jsonl>',
    help: "the source's format (default: from the extension: .csv, .jsonl or .ndjson)",
  },
  {
    flags: '--batch-size <N>',
    help: 'at most N members per batch activity (1-1000; default 1000, sized down for small sources and rate budgets)',
  },
  {
    flags: '--rate <N>',
    help: "requests/s to Channel Talk for this run (the workers' CHANNEL_RATE_LIMIT still caps it)",
  },
  { flags: '--parallel <N>', help: 'at most N batches in flight at once (1-32; default 4)' },
  {
    flags: '--run-label <L>',
    help: 'names the webhook ids (default: the workflow id); reuse it to re-run with the same ids',
  },
  {
    flags: '--workflow-id <ID>',
    help: 'default backfill-<UTC date-time>, e.g. backfill-2024-11-20T09-30-00Z',
  },
  { flags: '--wait', help: 'then follow the run like `status` until it ends (exit code as for status)' },
  {
    flags: '--interval <SECONDS>',
    help: 'with --wait: seconds between progress lines when not on a terminal (default 5)',
  },
  {
    flags: '--channel <ID>',
    help: "the channel the workers' credentials must open (expectChannelId); another one stops the run before any lookup",
  },
];

const SOURCE: OptionSpec = {
  flags: '--source <FILE>',
  help: 'the member source (CSV or JSONL), a path the workers can read; a relative path is made absolute against the current directory',
};

const ENVIRONMENT = `Environment (start, verify, pause, resume, status, report):
  TEMPORAL_ADDRESS      Temporal frontend                       (default localhost:7233)
  TEMPORAL_NAMESPACE    namespace                               (default default)
  BACKFILL_TASK_QUEUE   task queue the workers poll             (default webhook-backfill)
  BACKFILL_CODEC_KEY, BACKFILL_CODEC_KEY_ID   as on the workers, when payloads are encrypted
  The Channel Talk and webhook secrets are needed by \`worker\` only.`;

const EXIT_CODES = `Exit codes:
  0  ok
  1  the operation failed: the run failed or was terminated, no such workflow, Temporal unreachable,
     no worker answered, the audit log cannot be read
  2  usage or configuration error: unknown command or option, missing --workflow-id, bad value,
     bad environment variable
  3  status: the run is paused; resume: the run stays paused (the delete guard holds it)`;

const MAIN_AFTER = `
${ENVIRONMENT}

${EXIT_CODES}

The Temporal CLI drives the same workflow: temporal workflow start --type backfillWebhooks ...,
temporal workflow signal --name pause|resume, temporal workflow query --name progress (see the README).`;

const SPECS: Record<CommandName, CommandSpec> = {
  start: {
    summary: "start a run (a dry run, a repair, or the execution of a dry run's plan)",
    usage: '--source FILE [options]',
    description: 'Starts a backfill run and prints its workflow id.',
    options: [
      SOURCE,
      RUN_OPTIONS[0]!,
      { flags: '--dry-run', help: 'decide and record, replay nothing' },
      {
        flags: '--from-plan <DRY-RUN>',
        help: "replay only what a finished dry run planned, each member re-checked first: the dry run's workflow id, or its audit log's path (with a / or ending .jsonl)",
      },
      ...RUN_OPTIONS.slice(1),
      {
        flags: ONLY_CHANGED_SINCE,
        help: 'skip upserts whose every differing field Channel Talk last changed before this time (e.g. the outage start 2024-11-01T00:40:00+09:00); deletes are not affected',
      },
      {
        flags: MAX_DELETE_SHARE,
        help: 'the delete guard: pause when deletes pass this share of the decisions (default 0.5)',
      },
      { flags: MIN_DECISIONS, help: '...once at least N members are decided (default 100)' },
    ],
    after: `
Same as: temporal workflow start --type backfillWebhooks --task-queue webhook-backfill --workflow-id ID \\
  --input '{"source":{"type":"csv","path":"/data/members.csv"},"dryRun":true}'`,
  },
  verify: {
    summary: 'prove a repair: a dry run over a fresh export, of the members a finished run replayed',
    usage: '--after RUN --source FILE [options]',
    description: `Starts a verify run: the members the finished run RUN replayed (its delivered upserts and deletes), read
from a fresh export of your data, each looked up again; nothing is ever replayed. Each gets one verdict in
its own audit log: repaired, still differs (the fields), still present, changed since (Channel Talk changed
it after the repair) or failed. \`webhook-backfill report --workflow-id ID\` then prints the verdicts.`,
    options: [
      {
        flags: '--after <RUN>',
        help: "the repair to verify: its workflow id, or its audit log's path (with a / or ending .jsonl)",
      },
      { ...SOURCE, help: 'the fresh export (CSV or JSONL) the workers can read, as for start' },
      {
        flags: '--clock-skew-ms <N>',
        help: 'a Channel Talk change up to N ms before the delivery still counts as after it (default 0)',
      },
      ...RUN_OPTIONS,
    ],
    after: `
A PostgreSQL source: temporal workflow start ... --input
  '{"source":{"type":"postgres","table":"members"},"verifyAfter":{"auditPath":"<the run's auditPath>"}}'`,
  },
  pause: {
    summary: 'pause a run (no new lookup or replay starts)',
    usage: '--workflow-id ID [--reason TEXT]',
    description: `Pauses the run and prints what happened (paused, or already paused): no new lookup or replay starts;
batches in flight stop within about a second (on another worker than the one that took the pause, at
their next heartbeat: up to 10 s under a low rate budget) and are redone on resume. The reason shows in \`status\`
and in the progress query.`,
    options: [WORKFLOW_ID, { flags: '--reason <TEXT>', help: 'why, shown by status and the progress query' }],
    after: `
Same as: temporal workflow update execute --workflow-id ID --name pause [--input '"TEXT"']
(the pause signal, \`temporal workflow signal ... --name pause\`, does the same without an answer)`,
  },
  resume: {
    summary: 'resume a paused run',
    usage: '--workflow-id ID [--confirm-deletes]',
    description: `Resumes a paused run and prints what happened: resumed; already running; or still paused, with the
delete guard's reason and counts, and exit code 3. A run the delete guard paused stays guarded unless
--confirm-deletes is given.`,
    options: [
      WORKFLOW_ID,
      {
        flags: '--confirm-deletes',
        help: 'let the deletes the delete guard holds go out (check the channel and CHANNEL_API_URL first)',
      },
    ],
    after: `
Same as: temporal workflow update execute --workflow-id ID --name resume [--input '{"confirmDeletes":true}']
(the resume signal, \`temporal workflow signal ... --name resume\`, does the same without an answer)`,
  },
  status: {
    summary: 'progress, rate and ETA',
    usage: '--workflow-id ID [--once | --json] [--interval SECONDS]',
    description: `Follows the run until it ends: a progress bar redrawn in place on a terminal, one line every few
seconds otherwise, with the rate (members/s) and the ETA. A pause is shown and waited through.`,
    options: [
      WORKFLOW_ID,
      { flags: '--once', help: 'print one line and exit' },
      { flags: '--json', help: "print the progress query's result once, as JSON (plus workflowId and status)" },
      {
        flags: '--interval <SECONDS>',
        help: 'seconds between lines when not on a terminal (default 5; 1 on a terminal)',
      },
    ],
    after: `
Exits 0 when the run has completed (or, with --once/--json, is running), 1 when it failed, was
terminated, cancelled or timed out, 3 when --once/--json find it paused.

Same as: temporal workflow query --workflow-id ID --name progress`,
  },
  report: {
    summary: 'the audit log: a diff summary, every row as CSV or JSON, or an HTML page',
    usage: '(--workflow-id ID | --audit FILE) [options]',
    description: `Reads the run's audit log (its path comes from the run's progress query or result; the file is on the
workers' storage, so run this where it is readable, or copy it and pass --audit). With
BACKFILL_AUDIT_STORE=postgres and BACKFILL_DATABASE_URL set as on the workers, the log is read from the
PostgreSQL audit table instead (--audit then takes the run's auditPath, the key of its log).
With no option: the diff summary: outcomes, members differing per field, deletes per reason, failures and
skips per reason with their source lines, and how many differences Channel Talk changed inside the outage
window vs before it.`,
    options: [
      WORKFLOW_ID,
      { flags: '--audit <FILE>', help: 'the audit log itself, instead of the run' },
      { flags: '--summary', help: 'the diff summary (the default); with --format json, the summary as JSON' },
      {
        flags: '--format <csv|json|html>',
        help: 'every row of the audit log as CSV or as a JSON array (first record of a line wins); html: one self-contained page (no network, no script) to attach to a ticket: the run, outcomes and differences per field as charts, deliveries, the delete guard, failures with the next commands; memberIds only, never an email or phone number',
      },
      {
        flags: '--verify <ID>',
        help: "with --format html: add that verify run's verdicts (with --audit: its audit log)",
      },
      { flags: '--out <FILE>', help: 'write to FILE instead of stdout' },
      {
        flags: '--outage-start <ISO>',
        help: 'the outage window (default 2024-11-01T00:40:00+09:00 .. 2024-11-12T15:37:00+09:00); ISO 8601 times with Z or an offset',
      },
      { flags: '--outage-end <ISO>', help: "the outage window's end" },
      {
        flags: ONLY_CHANGED_SINCE,
        help: 'count the differences onlyChangedSince would skip (default: the outage start)',
      },
      { flags: MAX_DELETE_SHARE, help: 'the delete guard\'s share for "would a real run pause" (default 0.5)' },
      { flags: MIN_DECISIONS, help: "the delete guard's minimum of decisions (default 100)" },
    ],
  },
  worker: {
    summary: "run npm start's worker for the task queue, in this process",
    usage: '',
    description: `Runs the worker of \`npm start\` for BACKFILL_TASK_QUEUE in this process, configured by the environment
(CHANNEL_ACCESS_KEY, CHANNEL_ACCESS_SECRET, WEBHOOK_URL, ...; see the README). A bad or missing variable stops it with
one line (exit 2) before anything starts. Ctrl-C or SIGTERM shuts it down gracefully. Node options come from
NODE_OPTIONS: npm start's memory settings are NODE_OPTIONS='--max-old-space-size=128 --max-semi-space-size=8 --expose-gc'
MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072; its --liftoff-only and --no-allocation-site-pretenuring, which
NODE_OPTIONS does not take, this command sets in its own process (docs/cli.md).`,
    options: [],
  },
  purge: {
    summary: "remove a run's leftover work set and pending replays (personal data)",
    usage: '--workflow-id ID',
    description: `Removes the work set and the pending replays (they hold emails and phone numbers) left by the backfill ID:
under BACKFILL_DATA_DIR on this machine, and with BACKFILL_STORE=postgres in PostgreSQL (BACKFILL_DATABASE_URL).
The audit log is kept. Prints what it removed. Do not purge a run that is still going.`,
    options: [WORKFLOW_ID],
  },
};

/** Option values by long name without the dashes (`'batch-size'`), as given. */
export type OptionValues = Record<string, string | boolean | undefined>;

/** What commander made of the command line. */
export type ParsedLine =
  | { kind: 'output'; text: string } // --help, help [command], --version: the text to print
  | { kind: 'command'; name: CommandName; values: OptionValues; operands: string[] };

/** The commander program, built from SPECS; `onCommand` receives the command that ran and its options. */
function buildProgram(out: string[], onCommand: (parsed: ParsedLine) => void): Command {
  const program = new Command('webhook-backfill')
    .usage('<command> [options]')
    .description(
      'Replay the Channel Talk user webhooks missed in the November 2024 outage, as a Temporal workflow (backfillWebhooks).',
    )
    .exitOverride()
    .configureOutput({ writeOut: (text) => out.push(text), writeErr: () => undefined, outputError: () => undefined })
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .helpCommand('help [command]', "this text, or a command's")
    .addHelpText('after', MAIN_AFTER);
  for (const name of COMMANDS) {
    const spec = SPECS[name];
    const command = program
      .command(name)
      .summary(spec.summary)
      .usage(spec.usage)
      .description(spec.description.replace(/\n/g, ' '))
      .allowExcessArguments()
      .helpOption('-h, --help', 'print this help');
    for (const option of spec.options) command.option(option.flags, option.help);
    if (spec.after) command.addHelpText('after', spec.after);
    command.action((_options: unknown, self: Command) => {
      const values: OptionValues = {};
      const given = self.opts<Record<string, string | boolean | undefined>>();
      for (const option of self.options) if (option.long) values[option.long.slice(2)] = given[option.attributeName()];
      onCommand({ kind: 'command', name, values, operands: [...self.args] });
    });
  }
  return program;
}

/** Commander's verdict on `argv`: text to print, a command with its options, or a CommanderError (thrown). */
export function parseWithCommander(argv: readonly string[]): ParsedLine {
  const out: string[] = [];
  let parsed: ParsedLine | undefined;
  try {
    buildProgram(out, (p) => (parsed = p)).parse([...argv], { from: 'user' });
  } catch (err) {
    // Help and the version end commander's parse with exit code 0; `help <unknown>` is help as an error (exit 1).
    if (err instanceof CommanderError && err.exitCode === 0) return { kind: 'output', text: out.join('') };
    throw err;
  }
  if (!parsed) throw new Error('webhook-backfill: commander ran no command');
  return parsed;
}

export { CommanderError };
