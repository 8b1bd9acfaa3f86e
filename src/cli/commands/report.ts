import { createWriteStream } from 'node:fs';
import type { AuditReadStats } from '../../audit/audit-store';
import { AuditFileError, asAuditFileErrors } from '../../report/audit-file';
import { exportAudit } from '../../report/export';
import { renderSummary } from '../../report/render';
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
import type { AuditEntry } from '../../audit/audit-entry';
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

async function firstIsVerify(entries: AsyncIterable<AuditEntry>): Promise<boolean> {
  for await (const entry of entries) return isVerifyEntry(entry);
  return false;
}

export async function runReport(cmd: ReportCommand, io: CliIo): Promise<number> {
  // Checked first: a bad variable is a usage error before anything connects.
  const auditEnv = loadAuditEnv(io.env);
  let auditPath = cmd.audit;
  let verifyPath = cmd.audit !== undefined ? cmd.verify : undefined;
  let inProgress = false;
  let channelPace: ChannelPace | undefined;
  if (auditPath === undefined) {
    const session = await connectTemporal(loadCliEnv(io.env));
    try {
      const found = await locateAudit(session, cmd.workflowId!);
      auditPath = found.path;
      inProgress = found.running;
      channelPace = found.channelPace;
      if (cmd.verify !== undefined) verifyPath = (await locateAudit(session, cmd.verify)).path;
    } finally {
      await session.close();
    }
  }

  const stats: AuditReadStats = { entries: 0, repeated: 0, unreadable: 0 };
  const reader = openAuditReader(auditEnv);
  const entries = () => asAuditFileErrors(reader.store.entries(auditPath, stats));
  const output = cmd.out !== undefined ? fileOutput(cmd.out) : streamOutput(io.stdout);
  let rows = 0;
  try {
    // A verify run's log (its entries carry a verdict) answers another question: did the repair stick?
    const verify = cmd.output !== 'json' && cmd.output !== 'html' && (await firstIsVerify(entries()));
    if (cmd.output === 'html') {
      const builder = new HtmlReportBuilder(cmd.outage, { guard: cmd.guard, onlyChangedSince: cmd.onlyChangedSince });
      for await (const entry of entries()) builder.add(entry);
      const summary = builder.summary.result();
      rows = summary.rows;
      let verifyReport: { source: string; summary: VerifySummary } | undefined;
      if (verifyPath !== undefined) {
        const verifyBuilder = new VerifySummaryBuilder();
        for await (const entry of asAuditFileErrors(reader.store.entries(verifyPath))) verifyBuilder.add(entry);
        verifyReport = { source: verifyPath, summary: verifyBuilder.result() };
      }
      const generatedAt = io.now().toISOString();
      const model = buildHtmlModel({
        summary,
        facts: builder.facts(),
        auditPath,
        header: stats.header,
        inProgress,
        verify: verifyReport,
        generatedAt,
      });
      await output.write(renderHtmlReport(model, generatedAt));
    } else if (verify) {
      const builder = new VerifySummaryBuilder();
      for await (const entry of entries()) builder.add(entry);
      const summary = builder.result();
      rows = cmd.output === 'csv' ? summary.toLookAt.length : summary.members;
      const text =
        cmd.output === 'summary'
          ? renderVerifySummary(summary, { source: auditPath, inProgress })
          : cmd.output === 'csv'
            ? verifyCsv(summary)
            : `${JSON.stringify({ auditPath, inProgress, ...summary }, null, 2)}\n`;
      await output.write(text);
    } else if (cmd.output === 'summary' || cmd.output === 'summary-json') {
      const builder = new SummaryBuilder(cmd.outage, { guard: cmd.guard, onlyChangedSince: cmd.onlyChangedSince });
      for await (const entry of entries()) builder.add(entry);
      const summary = builder.result();
      rows = summary.rows;
      const text =
        cmd.output === 'summary'
          ? renderSummary(summary, {
              source: auditPath,
              unreadable: stats.unreadable,
              inProgress,
              header: stats.header,
              ...(channelPace ? { channelPace } : {}),
            })
          : `${JSON.stringify({ auditPath, inProgress, unreadableLines: stats.unreadable, header: stats.header ?? null, ...summary, ...(channelPace ? { channelPace } : {}) }, null, 2)}\n`;
      await output.write(text);
    } else {
      const format = cmd.output;
      rows = await exportAudit(entries(), format, (chunk) => output.write(chunk));
    }
    await output.close();
  } catch (err) {
    await output.close().catch(() => undefined);
    if (err instanceof AuditFileError) {
      const hint =
        reader.kind === 'postgres'
          ? cmd.audit !== undefined
            ? " (with BACKFILL_AUDIT_STORE=postgres, --audit takes the run's auditPath, the key of its log)"
            : ''
          : cmd.audit === undefined
            ? " (the audit log is on the workers' storage: run this where it is readable, or copy it and pass --audit FILE; if the workers keep it in PostgreSQL, set BACKFILL_AUDIT_STORE=postgres and BACKFILL_DATABASE_URL)"
            : '';
      throw new CliError(`${err.message}${hint}`);
    }
    throw err;
  } finally {
    await reader.close();
  }
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
  return EXIT.OK;
}
