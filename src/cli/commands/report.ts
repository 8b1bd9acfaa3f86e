import { createWriteStream } from 'node:fs';
import type { AuditReadStats } from '../../audit/audit-store';
import { AuditFileError, asAuditFileErrors } from '../../report/audit-file';
import { exportAudit } from '../../report/export';
import { renderSummary, type ReceiverUnavailableNow } from '../../report/render';
import { SummaryBuilder } from '../../report/summary';
import { buildHtmlModel, HtmlReportBuilder } from '../../report/html-model';
import { renderHtmlReport } from '../../report/html-report';
import {
  isVerifyEntry,
  renderVerifySummary,
  VerifySummaryBuilder,
  verifyCsv,
  type VerifySummary,
} from '../../report/verify-report';
import type { LoggedEntry } from '../../audit/audit-entry';
import type { ReportCommand } from '../args';
import { CliError, EXIT } from '../errors';
import { write, type CliIo } from '../io';
import { loadAuditEnv, openAuditReader } from '../audit-source';
import { locateAudit } from '../run-state';
import { connectTemporal, loadCliEnv } from '../temporal-env';
import type { ChannelPace } from '../../../workflows/definitions';

// `report`: the audit log as a diff summary, CSV or JSON. The log is streamed, never loaded whole, from
// the store the workers write to: the JSONL file, or with BACKFILL_AUDIT_STORE=postgres the table.

interface Output {
  write(text: string): Promise<void>;
  close(): Promise<void>;
}

function fileOutput(file: string): Output {
  const stream = createWriteStream(file, { mode: 0o600 });
  let failure: Error | undefined;
  stream.on('error', (err) => {
    failure = err;
  });
  const fail = (err: unknown) =>
    new CliError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  return {
    write: (text) =>
      failure ? Promise.reject(fail(failure)) : write(stream, text).catch((err: unknown) => Promise.reject(fail(err))),
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (failure) return reject(fail(failure));
        stream.end(() => (failure ? reject(fail(failure)) : resolve()));
      }),
  };
}

function streamOutput(stream: NodeJS.WritableStream): Output {
  return { write: (text) => write(stream, text), close: async () => undefined };
}

async function firstIsVerify(entries: AsyncIterable<LoggedEntry>): Promise<boolean> {
  for await (const entry of entries) return isVerifyEntry(entry);
  return false;
}

/** The run whose log is reported: where its log is, the verify log beside it, whether it still runs, its rate totals. */
interface ReportedRun {
  auditPath: string;
  verifyPath: string | undefined;
  inProgress: boolean;
  channelPace: ChannelPace | undefined;
  /** A receiver outage under way (asked of the running run): not in its log yet. */
  receiverUnavailable?: ReceiverUnavailableNow | undefined;
}

/** The audit log being read: its entries (read again for each pass), what the reading met, and the reader. */
interface ReportedLog {
  entries: () => AsyncIterable<LoggedEntry>;
  stats: AuditReadStats;
  reader: ReturnType<typeof openAuditReader>;
}

export async function runReport(cmd: ReportCommand, io: CliIo): Promise<number> {
  // Checked first: a bad variable is a usage error before anything connects.
  const auditEnv = loadAuditEnv(io.env);
  const run = await locateRun(cmd, io);
  const stats: AuditReadStats = { entries: 0, repeated: 0, unreadable: 0 };
  const reader = openAuditReader(auditEnv);
  const log: ReportedLog = {
    entries: () => asAuditFileErrors(reader.store.entries(run.auditPath, stats)),
    stats,
    reader,
  };
  const output = cmd.out !== undefined ? fileOutput(cmd.out) : streamOutput(io.stdout);
  let rows = 0;
  try {
    // A verify run's log (its entries carry a verdict) answers another question: did the repair stick?
    const verify = cmd.output !== 'json' && cmd.output !== 'html' && (await firstIsVerify(log.entries()));
    const { output: format } = cmd;
    const report =
      format === 'html'
        ? await htmlReport(cmd, io, run, log)
        : verify
          ? await verifyReport(cmd, run, log)
          : format === 'summary' || format === 'summary-json'
            ? await summaryReport(cmd, io, run, log)
            : { rows: await exportAudit(log.entries(), format, (chunk) => output.write(chunk)), text: '' };
    rows = report.rows;
    if (report.text) await output.write(report.text);
    await output.close();
  } catch (err) {
    await output.close().catch(() => undefined);
    if (err instanceof AuditFileError) throw new CliError(`${err.message}${auditFileHint(cmd, reader.kind)}`);
    throw err;
  } finally {
    await reader.close();
  }
  await announce(cmd, io, rows, run.inProgress);
  return EXIT.OK;
}

/** The log named by --audit, or the run's (--workflow-id), asked of Temporal with its verify run (--verify). */
async function locateRun(cmd: ReportCommand, io: CliIo): Promise<ReportedRun> {
  if (cmd.audit !== undefined)
    return { auditPath: cmd.audit, verifyPath: cmd.verify, inProgress: false, channelPace: undefined };
  const session = await connectTemporal(loadCliEnv(io.env));
  try {
    const found = await locateAudit(session, cmd.workflowId!);
    const verifyPath = cmd.verify !== undefined ? (await locateAudit(session, cmd.verify)).path : undefined;
    const { running: inProgress, channelPace, receiverUnavailable } = found;
    return { auditPath: found.path, verifyPath, inProgress, channelPace, receiverUnavailable };
  } finally {
    await session.close();
  }
}

/** The one-file HTML page, with the verify run's verdicts when one is named. */
async function htmlReport(cmd: ReportCommand, io: CliIo, run: ReportedRun, log: ReportedLog) {
  const builder = new HtmlReportBuilder(cmd.outage, { guard: cmd.guard, onlyChangedSince: cmd.onlyChangedSince });
  for await (const entry of log.entries()) builder.add(entry);
  builder.summary.addWaits(log.stats.waits ?? []);
  const summary = builder.summary.result();
  let verifyReport: { source: string; summary: VerifySummary } | undefined;
  if (run.verifyPath !== undefined) {
    const verifyBuilder = new VerifySummaryBuilder();
    for await (const entry of asAuditFileErrors(log.reader.store.entries(run.verifyPath))) verifyBuilder.add(entry);
    verifyReport = { source: run.verifyPath, summary: verifyBuilder.result() };
  }
  const generatedAt = io.now().toISOString();
  const model = buildHtmlModel({
    summary,
    facts: builder.facts(),
    auditPath: run.auditPath,
    header: log.stats.header,
    inProgress: run.inProgress,
    verify: verifyReport,
    generatedAt,
    channelPace: run.channelPace,
    receiverUnavailable: run.receiverUnavailable,
  });
  return { rows: summary.rows, text: renderHtmlReport(model, generatedAt) };
}

/** A verify run's log: its verdicts (text, CSV of the members to look at, or JSON). */
async function verifyReport(cmd: ReportCommand, run: ReportedRun, log: ReportedLog) {
  const builder = new VerifySummaryBuilder();
  for await (const entry of log.entries()) builder.add(entry);
  const summary = builder.result();
  const { auditPath, inProgress } = run;
  const text =
    cmd.output === 'summary'
      ? renderVerifySummary(summary, { source: auditPath, inProgress })
      : cmd.output === 'csv'
        ? verifyCsv(summary)
        : `${JSON.stringify({ auditPath, inProgress, ...summary }, null, 2)}\n`;
  return { rows: cmd.output === 'csv' ? summary.toLookAt.length : summary.members, text };
}

/** A repair's log summed up, as text or JSON. */
async function summaryReport(cmd: ReportCommand, io: CliIo, run: ReportedRun, log: ReportedLog) {
  const builder = new SummaryBuilder(cmd.outage, { guard: cmd.guard, onlyChangedSince: cmd.onlyChangedSince });
  for await (const entry of log.entries()) builder.add(entry);
  builder.addWaits(log.stats.waits ?? []);
  const summary = builder.result();
  const { auditPath, inProgress, channelPace, receiverUnavailable } = run;
  const fromRun = { ...(channelPace ? { channelPace } : {}), ...(receiverUnavailable ? { receiverUnavailable } : {}) };
  const { stats } = log;
  const text =
    cmd.output === 'summary'
      ? renderSummary(summary, {
          source: auditPath,
          unreadable: stats.unreadable,
          inProgress,
          header: stats.header,
          now: io.now(),
          ...fromRun,
        })
      : `${JSON.stringify({ auditPath, inProgress, unreadableLines: stats.unreadable, header: stats.header ?? null, ...summary, ...fromRun }, null, 2)}\n`;
  return { rows: summary.rows, text };
}

/** Where to look when the log cannot be read: it depends on the store and on how the log was named. */
function auditFileHint(cmd: ReportCommand, kind: ReturnType<typeof openAuditReader>['kind']): string {
  if (kind === 'postgres')
    return cmd.audit !== undefined
      ? " (with BACKFILL_AUDIT_STORE=postgres, --audit takes the run's auditPath, the key of its log)"
      : '';
  return cmd.audit === undefined
    ? " (the audit log is on the workers' storage: run this where it is readable, or copy it and pass --audit FILE; if the workers keep it in PostgreSQL, set BACKFILL_AUDIT_STORE=postgres and BACKFILL_DATABASE_URL)"
    : '';
}

/** What was written where (with --out), and a note when the run is still going. */
async function announce(cmd: ReportCommand, io: CliIo, rows: number, inProgress: boolean): Promise<void> {
  if (cmd.out !== undefined) {
    const what =
      cmd.output === 'summary' || cmd.output === 'summary-json'
        ? `the summary of ${rows} rows`
        : cmd.output === 'html'
          ? `the HTML report of ${rows} rows`
          : `${rows} rows`;
    await write(io.stdout, `wrote ${what} to ${cmd.out}\n`);
  }
  if (inProgress && cmd.output !== 'summary')
    await write(
      io.stderr,
      `note: run ${cmd.workflowId} is still going: the report holds what it has recorded so far\n`,
    );
}
