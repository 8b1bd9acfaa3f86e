// The text of `webhook-backfill --help` and `webhook-backfill <command> --help`.

export const COMMANDS = ['start', 'verify', 'pause', 'resume', 'status', 'report', 'worker'] as const;
export type CommandName = (typeof COMMANDS)[number];

const ENVIRONMENT = `Environment (start, pause, resume, status, report):
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

export const MAIN_HELP = `webhook-backfill: replay the Channel Talk user webhooks missed in the November 2024 outage,
as a Temporal workflow (backfillWebhooks).

Usage: webhook-backfill <command> [options]

Commands:
  start    start a run:  --source FILE [--type csv|jsonl] [--dry-run] [--batch-size N] [--rate N]
           [--run-label L] [--parallel N] [--workflow-id ID] [--from-plan DRY-RUN] [--wait]
           [--channel ID] [--only-changed-since ISO] [--max-delete-share X] [--delete-guard-min-decisions N]
  verify   prove a repair: a dry run over a fresh export, of the members a finished run replayed:
           --after RUN --source FILE [--type csv|jsonl] [--workflow-id ID] [--wait] [--clock-skew-ms N]
           [--batch-size N] [--rate N] [--parallel N] [--run-label L] [--channel ID]
  pause    pause a run (no new lookup or replay starts):  --workflow-id ID [--reason TEXT]
  resume   resume a paused run:  --workflow-id ID [--confirm-deletes]
  status   progress, rate and ETA:  --workflow-id ID [--once | --json] [--interval SECONDS]
  report   the audit log: a diff summary, or every row as CSV or JSON:
           --workflow-id ID | --audit FILE  [--summary] [--format csv|json] [--out FILE]
           [--outage-start ISO] [--outage-end ISO] [--only-changed-since ISO]
           [--max-delete-share X] [--delete-guard-min-decisions N]
  worker   run a worker for the task queue (configured like \`npm run worker\`)
  purge    remove a run's leftover work set and pending replays (personal data):  --workflow-id ID
  help [command]   this text, or a command's

${ENVIRONMENT}

${EXIT_CODES}

The Temporal CLI drives the same workflow: temporal workflow start --type backfillWebhooks ...,
temporal workflow signal --name pause|resume, temporal workflow query --name progress (see the README).
`;

export const COMMAND_HELP: Record<CommandName, string> = {
  start: `Usage: webhook-backfill start --source FILE [options]

Starts a backfill run and prints its workflow id.

  --source FILE        the member source (CSV or JSONL), a path the workers can read; a relative path
                       is made absolute against the current directory
  --type csv|jsonl     the source's format (default: from the extension: .csv, .jsonl or .ndjson)
  --dry-run            decide and record, replay nothing
  --batch-size N       at most N members per batch activity (1-1000; default 1000, sized down for small sources and rate budgets)
  --rate N             requests/s to Channel Talk for this run (the workers' CHANNEL_RATE_LIMIT still caps it)
  --parallel N         at most N batches in flight at once (1-32; default 4)
  --run-label L        names the webhook ids (default: the workflow id); reuse it to re-run with the same ids
  --workflow-id ID     default backfill-<UTC date-time>, e.g. backfill-2024-11-20T09-30-00Z
  --from-plan DRY-RUN  replay only what a finished dry run planned, each member re-checked first:
                       the dry run's workflow id, or its audit log's path (with a / or ending .jsonl)
  --wait               then follow the run like \`status\` until it ends (exit code as for status)
  --interval SECONDS   with --wait: seconds between progress lines when not on a terminal (default 5)
  --channel ID         the channel the workers' credentials must open (expectChannelId); another one
                       stops the run before any lookup
  --only-changed-since ISO
                       skip upserts whose every differing field Channel Talk last changed before this
                       time (e.g. the outage start 2024-11-01T00:40:00+09:00); deletes are not affected
  --max-delete-share X the delete guard: pause when deletes pass this share of the decisions (default 0.5)
  --delete-guard-min-decisions N
                       ...once at least N members are decided (default 100)

Same as: temporal workflow start --type backfillWebhooks --task-queue webhook-backfill --workflow-id ID \\
  --input '{"source":{"type":"csv","path":"/data/members.csv"},"dryRun":true}'
`,
  verify: `Usage: webhook-backfill verify --after RUN --source FILE [options]

Starts a verify run: the members the finished run RUN replayed (its delivered upserts and deletes), read
from a fresh export of your data, each looked up again; nothing is ever replayed. Each gets one verdict in
its own audit log: repaired, still differs (the fields), still present, changed since (Channel Talk changed
it after the repair) or failed. \`webhook-backfill report --workflow-id ID\` then prints the verdicts.

  --after RUN          the repair to verify: its workflow id, or its audit log's path (with a / or ending .jsonl)
  --source FILE        the fresh export (CSV or JSONL) the workers can read; --type csv|jsonl as for start
  --clock-skew-ms N    a Channel Talk change up to N ms before the delivery still counts as after it (default 0)
  --workflow-id, --wait, --interval, --batch-size, --rate, --parallel, --run-label, --channel: as for start

A PostgreSQL source: temporal workflow start ... --input
  '{"source":{"type":"postgres","table":"members"},"verifyAfter":{"auditPath":"<the run's auditPath>"}}'
`,
  pause: `Usage: webhook-backfill pause --workflow-id ID [--reason TEXT]

Pauses the run and prints what happened (paused, or already paused): no new lookup or replay starts;
batches in flight stop at their next heartbeat and are redone on resume. The reason shows in \`status\`
and in the progress query.

Same as: temporal workflow update execute --workflow-id ID --name pause [--input '"TEXT"']
(the pause signal, \`temporal workflow signal ... --name pause\`, does the same without an answer)
`,
  resume: `Usage: webhook-backfill resume --workflow-id ID [--confirm-deletes]

Resumes a paused run and prints what happened: resumed; already running; or still paused, with the
delete guard's reason and counts, and exit code 3. A run the delete guard paused stays guarded unless
--confirm-deletes is given: then the deletes it holds go out (check the channel and CHANNEL_API_URL first).

Same as: temporal workflow update execute --workflow-id ID --name resume [--input '{"confirmDeletes":true}']
(the resume signal, \`temporal workflow signal ... --name resume\`, does the same without an answer)
`,
  status: `Usage: webhook-backfill status --workflow-id ID [--once | --json] [--interval SECONDS]

Follows the run until it ends: a progress bar redrawn in place on a terminal, one line every few
seconds otherwise, with the rate (members/s) and the ETA. A pause is shown and waited through.

  --once               print one line and exit
  --json               print the progress query's result once, as JSON (plus workflowId and status)
  --interval SECONDS   seconds between lines when not on a terminal (default 5; 1 on a terminal)

Exits 0 when the run has completed (or, with --once/--json, is running), 1 when it failed, was
terminated, cancelled or timed out, 3 when --once/--json find it paused.

Same as: temporal workflow query --workflow-id ID --name progress
`,
  report: `Usage: webhook-backfill report (--workflow-id ID | --audit FILE) [options]

Reads the run's audit log (its path comes from the run's progress query or result; the file is on the
workers' storage, so run this where it is readable, or copy it and pass --audit). With
BACKFILL_AUDIT_STORE=postgres and BACKFILL_DATABASE_URL set as on the workers, the log is read from the
PostgreSQL audit table instead (--audit then takes the run's auditPath, the key of its log).

  (no option)          the diff summary: outcomes, members differing per field, deletes per reason,
                       failures and skips per reason with their source lines, and how many differences
                       Channel Talk changed inside the outage window vs before it
  --summary            the same; with --format json, the summary as JSON
  --format csv|json    every row of the audit log as CSV or as a JSON array (first record of a line wins)
  --format html        one self-contained HTML page (no network, no script) to attach to a ticket: the run,
                       outcomes and differences per field as charts, deliveries, the delete guard, failures
                       with the next commands; memberIds only, never an email or phone number
  --verify ID          with --format html: add that verify run's verdicts (with --audit: its audit log)
  --out FILE           write to FILE instead of stdout
  --outage-start ISO   the outage window (default 2024-11-01T00:40:00+09:00 ..
  --outage-end ISO     2024-11-12T15:37:00+09:00); ISO 8601 times with Z or an offset
  --only-changed-since ISO
                       count the differences onlyChangedSince would skip (default: the outage start)
  --max-delete-share X, --delete-guard-min-decisions N
                       the delete guard's thresholds for "would a real run pause" (default 0.5, 100)
`,
  worker: `Usage: webhook-backfill worker

Runs a worker for BACKFILL_TASK_QUEUE with the configuration in the environment: the command of
\`npm start\` (its node options and MALLOC_ARENA_MAX) as a child process (CHANNEL_ACCESS_KEY,
CHANNEL_ACCESS_SECRET, WEBHOOK_URL, ...; see the README). A bad or missing variable stops it with one
line (exit 2) before anything starts. Ctrl-C or SIGTERM shuts it down gracefully; so does killing this
command outright.
`,
};
