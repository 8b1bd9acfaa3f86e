import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/audit/audit-entry';
import type { AuditHeader } from '../../src/audit/audit-header';
import type { AuditSummary } from '../../src/report/summary';
import { findTemporalCli, freePort, type DevServer } from '../../dev/temporal-cli';
import type { ComparedField, WebhookEvent } from '../../src/domain/types';
import { webhookId } from '../../src/webhook/webhook-id';
import { shippedWorkerCommand } from '../../dev/shipped-worker-command';
import { progressQuery, type BackfillInput, type Progress } from '../../workflows/definitions';
import { EXAMPLE_CSV, loadExamples, type Examples } from '../support/examples';
import {
  ACCESS_SECRET,
  WEBHOOK_TOKEN,
  readAuditHeader,
  startStack,
  startTestServer,
  waitFor,
  type Stack,
} from '../support/stack';
import { runProcess, type ProcessResult } from '../support/child-process';

// `webhook-backfill` driven as users run it: a child process per command, against a real Temporal dev
// server, with the worker itself started by `webhook-backfill worker` from the stack's environment.

const BIN = path.resolve(__dirname, '../../bin/webhook-backfill.js');

/** The node processes among the direct children of a process (Linux). */
function nodeChildren(pid: number): number[] {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  return children.map(Number).filter((c) => {
    try {
      return /(^|\/)node$/.test(readFileSync(`/proc/${c}/cmdline`, 'utf8').split('\0')[0] ?? '');
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** npm start's node options that NODE_OPTIONS takes (docs/cli.md): the heap caps. */
const WORKER_NODE_OPTIONS = shippedWorkerCommand()
  .nodeArgs.filter((arg) => /^--max-(old|semi)-space-size=/.test(arg))
  .join(' ');

const TASK_QUEUE = 'cli-test';
const OUTAGE = { start: Date.parse('2024-10-31T15:40:00Z'), end: Date.parse('2024-11-12T06:37:00Z') };

let server: DevServer;
let examples: Examples;
let stack: Stack;
let worker: ChildProcess | undefined;
let workerOutput = '';
let workerExit: Promise<number | null> | undefined;

type Result = ProcessResult;

/** Runs `node bin/webhook-backfill.js ...args` with only the Temporal variables (no Channel Talk secrets). */
function cli(args: string[], extraEnv: Record<string, string> = {}, timeoutMs = 60_000, tty = false): Promise<Result> {
  // On a terminal: util-linux `script` gives the command a pseudo-terminal (-e: its exit code).
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const [file, argv] = tty
    ? ['script', ['-qec', [process.execPath, BIN, ...args].map(quote).join(' '), '/dev/null']]
    : [process.execPath, [BIN, ...args]];
  return runProcess(
    file,
    argv,
    { TEMPORAL_ADDRESS: server.address, BACKFILL_TASK_QUEUE: TASK_QUEUE, ...extraEnv },
    timeoutMs,
  );
}

/** An error: exactly one line on stderr, nothing on stdout. */
function expectOneLineError(r: Result, code: number, message: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr).toMatch(/^webhook-backfill: [^\n]+\n$/);
  expect(r.stderr).toMatch(message);
}

async function progressOf(workflowId: string): Promise<Progress> {
  return stack.client.workflow.getHandle(workflowId).query(progressQuery);
}

beforeAll(async () => {
  [server, examples] = await Promise.all([startTestServer(), loadExamples()]);
  stack = await startStack({
    server,
    users: examples.users,
    channelFaults: examples.faults.channel,
    receiverBehaviours: examples.faults.receiver,
    taskQueue: TASK_QUEUE,
    env: { CHANNEL_RATE_LIMIT: '100' },
    worker: false,
  });
  // The worker of this test is `webhook-backfill worker`, configured by the environment only, with npm start's heap
  // caps through NODE_OPTIONS as docs/cli.md shows.
  worker = spawn(process.execPath, [BIN, 'worker'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...stack.env,
      NODE_OPTIONS: WORKER_NODE_OPTIONS,
      MALLOC_ARENA_MAX: '2',
      MALLOC_MMAP_THRESHOLD_: '131072',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  worker.stdout!.on('data', (c: Buffer) => (workerOutput += c.toString()));
  worker.stderr!.on('data', (c: Buffer) => (workerOutput += c.toString()));
  workerExit = new Promise((resolve) => worker!.on('exit', (code) => resolve(code)));
});

afterAll(async () => {
  if (worker && worker.exitCode === null) {
    worker.kill('SIGKILL');
    await workerExit;
  }
  await stack?.close();
  await server?.stop();
});

describe('webhook-backfill CLI', () => {
  const id = 'cli-run-1';

  it('start, pause, status (paused: exit 3), resume, follow to the end, report', { timeout: 150_000 }, async () => {
    const started = await cli([
      'start',
      '--source',
      EXAMPLE_CSV,
      '--workflow-id',
      id,
      '--batch-size',
      '50',
      '--rate',
      '30',
      '--parallel',
      '2',
      '--run-label',
      'cli-label',
    ]);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toMatch(
      new RegExp(
        `^started ${id} \\(run of ${EXAMPLE_CSV.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, task queue ${TASK_QUEUE}\\)\n`,
      ),
    );
    expect(started.stderr).toBe('');
    // The options reached the workflow as its one JSON argument, as `temporal workflow start --input` would send it.
    const history = await stack.client.workflow.getHandle(id).fetchHistory();
    const firstEvent = history.events![0]!.workflowExecutionStartedEventAttributes!;
    const input = JSON.parse(Buffer.from(firstEvent.input!.payloads![0]!.data!).toString('utf8')) as BackfillInput;
    expect(input).toEqual({
      source: { type: 'csv', path: EXAMPLE_CSV },
      batchSize: 50,
      parallelBatches: 2,
      rateLimit: 30,
      runLabel: 'cli-label',
    });
    expect(firstEvent.workflowType!.name).toBe('backfillWebhooks');

    // A second start under a running id is refused.
    const again = await cli(['start', '--source', EXAMPLE_CSV, '--workflow-id', id]);
    expectOneLineError(again, 1, /already running/);

    await waitFor('first batches', async () => (await progressOf(id)).processed >= 50, 60_000);
    const paused = await cli(['pause', '--workflow-id', id, '--reason', 'cli test pause']);
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stdout).toBe(`paused ${id}: no new lookup or replay starts until resume (cli test pause)\n`);
    await waitFor('paused', async () => (await progressOf(id)).paused);

    const json = await cli(['status', '--workflow-id', id, '--json']);
    expect(json.code, json.stderr).toBe(3);
    const shown = JSON.parse(json.stdout) as Progress & { workflowId: string; status: string };
    expect(shown).toMatchObject({
      workflowId: id,
      status: 'RUNNING',
      paused: true,
      pauseReason: 'cli test pause',
      total: examples.expected.counts.rows,
      done: false,
    });
    expect(shown.processed).toBeLessThan(examples.expected.counts.rows);

    const once = await cli(['status', '--workflow-id', id, '--once']);
    expect(once.code, once.stderr).toBe(3);
    expect(once.stdout).toMatch(
      new RegExp(`^${id} {2}\\[[#.]{20}\\] +\\d+% \\d+/300 {2}PAUSED: cli test pause {2}upserts \\d+`),
    );

    // The raw Temporal CLI sees the same run and the same query, in parallel with this one.
    const temporal = findTemporalCli()!.path;
    const raw = await promisify(execFile)(temporal, [
      'workflow',
      'query',
      '--workflow-id',
      id,
      '--name',
      'progress',
      '-o',
      'json',
      '--address',
      server.address,
    ]);
    expect((JSON.parse(raw.stdout) as { queryResult: Progress[] }).queryResult[0]).toMatchObject({
      paused: true,
      pauseReason: 'cli test pause',
    });

    // The pause cut some lookups short; they are redone after resume. The simulator counts its faults per
    // request, so give the redone and remaining members their faults afresh: the run then meets exactly
    // the faults the known answer (examples/expected.json) was computed for.
    stack.simulator.setFaults(examples.faults.channel);
    const resumed = await cli(['resume', '--workflow-id', id]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toBe(`resumed ${id}\n`);

    // Following without a terminal: one timestamped line per interval, until the run ends.
    const followed = await cli(['status', '--workflow-id', id, '--interval', '1'], {}, 120_000);
    expect(followed.code, followed.stderr).toBe(0);
    const lines = followed.stdout.trimEnd().split('\n');
    for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z {2}cli-run-1 {2}/);
    const c = examples.expected.counts;
    expect(lines.at(-1)).toContain(
      `completed  [####################]  100% 300/300  done  upserts ${c.upserts} deletes ${c.deletes} unchanged ${c.unchanged} failed ${c.failed} skipped ${c.skipped}  audit `,
    );
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.slice(0, -1).some((l) => /\d+% \d+\/300 {2}([\d.]+|…)\/s {2}ETA /.test(l))).toBe(true);

    // Everything below reads the finished run: run the commands side by side.
    const auditPath = (await stack.client.workflow.getHandle(id).result()).auditPath;
    const csvFile = path.join(stack.dataDir, 'report.csv');
    const [done, doneOnce, pauseDone, exported, summaryRun, text, csv] = await Promise.all([
      cli(['status', '--workflow-id', id, '--json']),
      cli(['status', '--workflow-id', id, '--once']),
      cli(['pause', '--workflow-id', id]),
      cli(['report', '--workflow-id', id, '--format', 'json']),
      cli(['report', '--workflow-id', id, '--summary', '--format', 'json']),
      cli(['report', '--workflow-id', id]),
      cli(['report', '--audit', auditPath, '--format', 'csv', '--out', csvFile]),
    ]);
    expect(done.code, done.stderr).toBe(0);
    const result = JSON.parse(done.stdout) as Progress & { status: string };
    expect(result).toMatchObject({
      status: 'COMPLETED',
      processed: c.rows,
      upserts: c.upserts,
      deletes: c.deletes,
      unchanged: c.unchanged,
      failed: c.failed,
      skipped: c.skipped,
      done: true,
      paused: false,
    });
    expect(doneOnce.code).toBe(0);
    expect(doneOnce.stdout).toContain(`${id}  completed  `);

    // Signals to a finished run are refused with a reason.
    expectOneLineError(pauseDone, 1, /is not running \(COMPLETED\)/);

    // The replays used the run label given to start: every due member delivered under its stable id, and
    // nothing else. Delivery is at least once: a pause that aborts a replay the receiver had already
    // accepted sends it again after resume, with the same webhook-id (receivers deduplicate on it).
    const due = examples.expected.outcomes.filter((o) => o.outcome === 'upsert' || o.outcome === 'delete');
    const accepted = stack.receiver.accepted();
    const ids = new Set(accepted.map((d) => d.webhookId));
    expect(ids.size).toBe(due.length);
    for (const o of due)
      expect(ids.has(webhookId('cli-label', o.memberId, o.outcome as WebhookEvent)), o.memberId).toBe(true);
    expect(accepted.length).toBeGreaterThanOrEqual(due.length);
    if (accepted.length > due.length)
      console.warn(`cli.test: ${accepted.length - due.length} duplicate deliveries (same webhook-id) after the pause`);

    // report --format json: one entry per source row, each with its known outcome.
    expect(exported.code, exported.stderr).toBe(0);
    const entries = JSON.parse(exported.stdout) as AuditEntry[];
    expect(entries).toHaveLength(c.rows);
    expect(new Set(entries.map((e) => e.line)).size).toBe(c.rows);
    const byLine = new Map(entries.map((e) => [e.line, e]));
    for (const o of examples.expected.outcomes) expect(byLine.get(o.line)?.outcome, `line ${o.line}`).toBe(o.outcome);

    // The audit log starts with its header: this run, and the channel the worker's credentials open (the simulator's).
    const header = await readAuditHeader(auditPath);
    expect(header).toMatchObject({
      format: 1,
      backfill: id,
      runLabel: 'cli-label',
      channel: { id: '1', name: 'Simulated channel' },
      dryRun: false,
      source: { type: 'csv', path: EXAMPLE_CSV },
      target: 'url',
    });
    for (const secret of [ACCESS_SECRET, WEBHOOK_TOKEN]) expect(JSON.stringify(header)).not.toContain(secret);
    // report prints the channel from it, and the summary's JSON carries it.
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout.split('\n')[1]).toBe(
      `Channel Talk channel "Simulated channel" (id 1), from the log's header (written ${header.ts} by backfill ${id})`,
    );

    // report --summary --format json: the example data's known answer.
    expect(summaryRun.code, summaryRun.stderr).toBe(0);
    const summary = JSON.parse(summaryRun.stdout) as AuditSummary & { auditPath: string; header: AuditHeader | null };
    expect(summary.header).toEqual(header);
    expect(summary.rows).toBe(c.rows);
    expect(summary.outcomes).toEqual({
      upsert: c.upserts,
      delete: c.deletes,
      unchanged: c.unchanged,
      failed: c.failed,
      skipped: c.skipped,
    });
    expect(summary.delivered).toBe(c.upserts + c.deletes);
    const expectedDeletes: Record<string, number> = {};
    for (const o of examples.expected.outcomes.filter((x) => x.outcome === 'delete'))
      expectedDeletes[o.reason!] = (expectedDeletes[o.reason!] ?? 0) + 1;
    expect(summary.deletes).toEqual(expectedDeletes);
    const differing = examples.expected.outcomes.filter((o) => (o.fields?.length ?? 0) > 0);
    expect(summary.differingMembers).toBe(differing.length);
    const expectedFields: Record<string, number> = {
      mobileNumber: 0,
      email: 0,
      unsubscribeEmail: 0,
      unsubscribeTexting: 0,
    };
    for (const o of differing) for (const f of o.fields!) expectedFields[f]! += 1;
    expect(summary.differingFields).toEqual(expectedFields);
    const failedLines = (stage: string) =>
      examples.expected.outcomes.filter((o) => o.outcome === 'failed' && o.reason === stage).map((o) => o.line);
    for (const stage of ['fetch', 'replay'] as const) {
      const groups = summary.failures.filter((g) => g.stage === stage);
      expect(
        groups.flatMap((g) => g.lines).sort((a, b) => a - b),
        stage,
      ).toEqual(failedLines(stage));
    }
    expect(summary.skipped.flatMap((g) => g.lines).sort((a, b) => a - b)).toEqual(
      examples.expected.outcomes.filter((o) => o.outcome === 'skipped').map((o) => o.line),
    );
    // The outage split, from the simulated users' own change times.
    const users = new Map(examples.users.map((u) => [u.memberId, u]));
    const inside = (t: unknown) => typeof t === 'number' && t >= OUTAGE.start && t <= OUTAGE.end;
    const timeOf = (memberId: string, f: ComparedField) => {
      const u = users.get(memberId)!;
      if (f === 'unsubscribeEmail') return u.unsubscribeEmailUpdatedAt ?? u.updatedAt;
      if (f === 'unsubscribeTexting') return u.unsubscribeTextingUpdatedAt ?? u.updatedAt;
      return u.updatedAt;
    };
    const insideMembers = differing.filter((o) =>
      o.fields!.some((f) => inside(timeOf(o.memberId, f as ComparedField))),
    ).length;
    expect(insideMembers).toBeGreaterThan(0);
    expect(summary.outage.members.inside).toBe(insideMembers);
    expect(summary.outage.members.before).toBeGreaterThan(0);
    const m = summary.outage.members;
    expect(m.inside + m.before + m.after + m.unknown).toBe(differing.length);

    // The text summary says the same.
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`Audit of ${id} (run label cli-label): ${c.rows} rows (${summary.auditPath})`);
    expect(text.stdout).toMatch(new RegExp(`upserts\\s+${c.upserts}\\n`));
    expect(text.stdout).toContain(
      `Replays delivered (accepted by the receiver): ${c.upserts + c.deletes} of ${c.upserts + c.deletes} upserts and deletes`,
    );
    expect(text.stdout).toMatch(new RegExp(`deletes\\s+${c.deletes}\\n`));
    expect(text.stdout).toMatch(new RegExp(`failed\\s+${c.failed}\\n`));
    expect(text.stdout).toMatch(new RegExp(`skipped\\s+${c.skipped}\\n`));
    expect(text.stdout).toMatch(new RegExp(`changed inside the window[^\\n]*\\s${insideMembers}\\n`));
    expect(text.stdout).not.toMatch(/@example\.|\+82/); // names, counts and lines only: no contact data

    // --audit and --out: the CSV of the same log, written to a file.
    expect(summary.auditPath).toBe(auditPath);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout).toBe(`wrote ${c.rows} rows to ${csvFile}\n`);
    const csvLines = (await readFile(csvFile, 'utf8')).trimEnd().split('\n');
    expect(csvLines).toHaveLength(c.rows + 1);
    expect(csvLines[0]).toMatch(/^line,memberId,outcome,fields,/);
  });

  it(
    'a dry run started with --wait on a terminal redraws its bar in place and plans without replaying; --from-plan executes it',
    { timeout: 120_000 },
    async () => {
      // The first run used up the simulated API faults: give this run the same ones, fresh.
      stack.simulator.setFaults(examples.faults.channel);
      const before = stack.receiver.accepted().length;
      const run = await cli(
        ['start', '--source', EXAMPLE_CSV, '--dry-run', '--workflow-id', 'cli-dry-1', '--wait'],
        {},
        80_000,
        true,
      );
      expect(run.code, run.stdout).toBe(0);
      const d = examples.expected.dryRunCounts;
      const [startedLine, drawing, rest] = run.stdout.split('\r\n');
      expect(startedLine).toBe(`started cli-dry-1 (dry run of ${EXAMPLE_CSV}, task queue ${TASK_QUEUE})`);
      expect(rest).toBe(''); // one line for "started", one for the bar: every redraw returned to its start
      const frames = drawing!.split('\r\x1b[K').filter((f) => f !== '');
      expect(frames.length).toBeGreaterThan(1);
      for (const frame of frames) expect(frame).toMatch(/^cli-dry-1 {2}/);
      expect(frames.at(-1)).toMatch(
        new RegExp(
          `^cli-dry-1 {2}completed {2}dry run {2}\\[█{24}\\] {2}100% 300/300 {2}done {2}upserts ${d.upserts} deletes ${d.deletes} unchanged ${d.unchanged} failed ${d.failed} skipped ${d.skipped} {2}audit /`,
        ),
      );
      expect(stack.receiver.accepted().length).toBe(before);

      const summary = JSON.parse(
        (await cli(['report', '--workflow-id', 'cli-dry-1', '--summary', '--format', 'json'])).stdout,
      ) as AuditSummary;
      expect(summary.dryRun).toBe(true);
      expect(summary.outcomes).toEqual({
        upsert: d.upserts,
        delete: d.deletes,
        unchanged: d.unchanged,
        failed: d.failed,
        skipped: d.skipped,
      });
      expect(summary.delivered).toBe(0);

      // start --from-plan <dry run>: the CLI finds the dry run's plan (its audit log) and the run replays
      // only planned members. Which of them are replayed after the re-check is the workflow's business.
      expectOneLineError(
        await cli(['start', '--source', EXAMPLE_CSV, '--from-plan', id, '--workflow-id', 'cli-plan-bad']),
        1,
        /cli-run-1 was not a dry run/,
      );
      const dryResult = await stack.client.workflow.getHandle('cli-dry-1').result();
      const deliveredBefore = stack.receiver.accepted().length;
      const planned = await cli(
        [
          'start',
          '--source',
          EXAMPLE_CSV,
          '--from-plan',
          'cli-dry-1',
          '--workflow-id',
          'cli-plan-1',
          '--wait',
          '--interval',
          '1',
        ],
        {},
        60_000,
      );
      expect(planned.code, planned.stderr).toBe(0);
      expect(planned.stdout.split('\n')[0]).toBe(
        `started cli-plan-1 (run of ${EXAMPLE_CSV}, the plan in ${dryResult.auditPath}, task queue ${TASK_QUEUE})`,
      );
      const planInput = (await stack.client.workflow.getHandle('cli-plan-1').fetchHistory()).events![0]!
        .workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
      expect((JSON.parse(Buffer.from(planInput.data!).toString('utf8')) as BackfillInput).fromPlan).toEqual({
        auditPath: dryResult.auditPath,
      });
      const plannedIds = new Set(
        examples.expected.outcomes
          .filter((o) => o.dryRunOutcome === 'upsert' || o.dryRunOutcome === 'delete')
          .map((o) => webhookId('cli-plan-1', o.memberId, o.dryRunOutcome as WebhookEvent)),
      );
      const replayed = stack.receiver.accepted().slice(deliveredBefore);
      expect(replayed.length).toBeGreaterThan(0);
      for (const delivery of replayed) expect(plannedIds.has(delivery.webhookId!), delivery.webhookId!).toBe(true);
    },
  );

  it('errors are one line with a meaningful exit code', { timeout: 60_000 }, async () => {
    const closedPort = await freePort();
    // Independent commands: run them side by side. (Option and environment errors are covered through
    // main() in test/unit/cli-args.test.ts; here the exit codes of real processes.)
    const cases: [string[], Record<string, string>, number, RegExp][] = [
      [['frobnicate'], {}, 2, /unknown command 'frobnicate'/],
      [['pause'], {}, 2, /missing --workflow-id/],
      [
        ['worker'],
        { CHANNEL_ACCESS_KEY: '', CHANNEL_ACCESS_SECRET: '' },
        2,
        /CHANNEL_ACCESS_KEY is required; CHANNEL_ACCESS_SECRET is required/,
      ],
      [['status', '--workflow-id', 'no-such-run', '--once'], {}, 1, /no workflow with id no-such-run/],
      [['resume', '--workflow-id', 'no-such-run'], {}, 1, /no workflow with id no-such-run/],
      [['report', '--workflow-id', 'no-such-run'], {}, 1, /no workflow with id no-such-run/],
      [
        ['status', '--workflow-id', id, '--once'],
        { TEMPORAL_ADDRESS: `127.0.0.1:${closedPort}` },
        1,
        /cannot reach Temporal at 127\.0\.0\.1:\d+/,
      ],
    ];
    const results = await Promise.all(cases.map(([args, env]) => cli(args, env)));
    cases.forEach(([args, , code, message], i) => {
      const r = results[i]!;
      expectOneLineError(r, code, message);
      expect(r.stdout, args.join(' ')).toBe('');
    });

    // A run that fails: --wait ends with its failure as the one error line.
    const failing = await cli([
      'start',
      '--source',
      '/nonexistent/members.csv',
      '--workflow-id',
      'cli-bad-source',
      '--wait',
      '--interval',
      '0.5',
    ]);
    expectOneLineError(failing, 1, /^webhook-backfill: run cli-bad-source failed: .*\/nonexistent\/members\.csv/);
    expect(failing.stdout).toMatch(/^started cli-bad-source /);
    const failedStatus = await cli(['status', '--workflow-id', 'cli-bad-source', '--json']);
    expect(failedStatus.code).toBe(1);
    expect(JSON.parse(failedStatus.stdout)).toMatchObject({ workflowId: 'cli-bad-source', status: 'FAILED' });

    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes:\n {2}0 {2}ok\n {2}1 {2}the operation failed/);
    expect(help.stdout).toMatch(/\n {2}3 {2}status: the run is paused/);
  });

  it(
    'the worker command runs the worker in its own process, node options from NODE_OPTIONS, stops cleanly on SIGTERM and never logs a secret',
    { timeout: 30_000 },
    async () => {
      expect(workerOutput).toContain('webhook-backfill worker starting');
      expect(workerOutput).not.toContain(ACCESS_SECRET);
      expect(workerOutput).not.toContain(WEBHOOK_TOKEN);
      // No second process: the CLI is the worker, and the heap cap it logs is NODE_OPTIONS's (not V8's default,
      // gigabytes on this machine).
      expect(WORKER_NODE_OPTIONS).toMatch(/--max-old-space-size=\d+/);
      expect(nodeChildren(worker!.pid!)).toEqual([]);
      const heapLimitMb = Number(/"?heapLimitMb"?[:=]\s*(\d+)/.exec(workerOutput)?.[1]);
      const cap = Number(/--max-old-space-size=(\d+)/.exec(WORKER_NODE_OPTIONS)![1]);
      expect(heapLimitMb).toBeGreaterThanOrEqual(cap);
      expect(heapLimitMb).toBeLessThan(cap * 2);
      worker!.kill('SIGTERM');
      expect(await workerExit).toBe(0);
      expect(workerOutput).toMatch(/Worker state changed[^\n]*STOPPED/);
    },
  );
});
