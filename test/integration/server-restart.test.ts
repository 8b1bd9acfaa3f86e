// Issue 3, item 2: the Temporal dev server (persistent --db-filename) is stopped and started again, on the same
// port, twice during a run. The run must complete with the same outcomes as an undisturbed run of the same data:
// first an undisturbed run is made and recorded, then the disturbed one, and the two are compared line by line
// (and both against the generator's known answer).
//
// Worker: the in-process one of startStack. The SDK's native connection (Rust core) keeps retrying its polls and
// completions while the server is gone and resumes on the same address once it is back, and so does the client's
// gRPC channel; nothing in the test needs to restart. (A child-process worker would reconnect the same way, but
// would only add its start-up time; worker restarts are what worker-crash.test.ts is about.)
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/audit/audit-entry';
import { parseAuditHeaderLine } from '../../src/audit/audit-header';
import { DEFAULT_SYNTHETIC_SEED, syntheticCounts, syntheticUsers, writeSyntheticCsv } from '../../dev/synthetic';
import { findTemporalCli, freePort, startDevServer, type DevServer } from '../../dev/temporal-cli';
import { progressQuery, WORKFLOW_TYPE, type BackfillInput, type BackfillResult } from '../../workflows/definitions';
import { readAudit, startStack, waitFor, type Stack } from '../support/stack';
import { checkKnownAnswer, auditPathOf } from '../support/known-answer';

const MEMBERS = 2_000;
const SEED = DEFAULT_SYNTHETIC_SEED + 2;
/** Both runs use one run label, so even their webhook-ids must be identical. */
const RUN_LABEL = 'server-restart';
/** Requests/s of the disturbed run: ~20 s of lookups, so both stops land mid-run. */
const RATE_LIMIT = '100';
/** Stop the server once this many audit entries exist, keep it down this long, start it again. */
const STOPS = [
  { atEntries: 400, downMs: 4_000 },
  { atEntries: 1_100, downMs: 2_000 },
];

let cli: string;
let dir: string;
let csv: string;
let server: DevServer | undefined;
let dbFile: string;
let port: number;

async function startServer(): Promise<DevServer> {
  server = await startDevServer({ cli, dbFile, port, headless: true, logFile: path.join(dir, 'server.log') });
  return server;
}

beforeAll(async () => {
  const found = findTemporalCli({ build: true, log: (l) => console.log(l) });
  if (!found) throw new Error('no Temporal CLI: set TEMPORAL_CLI or install Go so the tests can build it (see README)');
  cli = found.path;
  dir = await mkdtemp(path.join(os.tmpdir(), 'server-restart-'));
  csv = path.join(dir, 'members.csv');
  dbFile = path.join(dir, 'temporal.db');
  port = await freePort();
  await Promise.all([startServer(), writeSyntheticCsv(csv, MEMBERS, SEED)]);
});
afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function auditLength(file: string): Promise<number> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter((l, i) => l.trim() !== '' && !(i === 0 && parseAuditHeaderLine(l))).length;
}

/** The run's outcome per line, with everything that must not depend on how the run went. */
function outcomesByLine(entries: AuditEntry[]): Map<number, unknown> {
  return new Map(
    entries.map((e) => [
      e.line,
      {
        memberId: e.memberId,
        outcome: e.outcome,
        fields: e.fields,
        reason: e.reason,
        event: e.event,
        webhookId: e.webhookId,
        delivered: e.delivered,
      },
    ]),
  );
}

async function withStack<T>(env: Record<string, string>, body: (stack: Stack) => Promise<T>): Promise<T> {
  const stack = await startStack({ server: server!, users: syntheticUsers(MEMBERS, SEED), env });
  try {
    return await body(stack);
  } finally {
    await stack.close();
  }
}

function startRun(stack: Stack, workflowId: string) {
  const input: BackfillInput = {
    source: { type: 'csv', path: csv },
    batchSize: 50,
    runLabel: RUN_LABEL,
    batchHeartbeatSeconds: 10,
  };
  return stack.client.workflow.start(WORKFLOW_TYPE, {
    taskQueue: stack.config.BACKFILL_TASK_QUEUE,
    workflowId,
    args: [input],
  });
}

describe('Temporal server restart', () => {
  it('a run across two stops and restarts of the dev server ends with the same outcomes as an undisturbed run', async () => {
    const expected = syntheticCounts(MEMBERS, SEED);
    const wantCounts = {
      total: MEMBERS,
      processed: MEMBERS,
      upserts: expected.upserts,
      deletes: expected.deletes,
      unchanged: expected.unchanged,
      failed: 0,
      skipped: 0,
    };
    const checkRun = (audit: AuditEntry[], stack: Stack) =>
      checkKnownAnswer({
        n: MEMBERS,
        seed: SEED,
        workflowId: RUN_LABEL,
        audit,
        deliveries: stack.receiver.deliveries(),
      });

    // 1. Undisturbed.
    const baseline = await withStack({}, async (stack) => {
      const result = (await (await startRun(stack, 'backfill-undisturbed')).result()) as BackfillResult;
      const audit = await readAudit(result.auditPath);
      const check = checkRun(audit, stack);
      return {
        result,
        audit,
        check,
        accepted: [...new Set(stack.receiver.accepted().map((d) => `${d.memberId} ${d.event} ${d.webhookId}`))].sort(),
      };
    });
    expect(baseline.result).toMatchObject(wantCounts);
    expect(baseline.check.problems).toEqual([]);

    // 2. Disturbed: the server goes away twice mid-run.
    const disturbed = await withStack({ CHANNEL_RATE_LIMIT: RATE_LIMIT }, async (stack) => {
      const handle = await startRun(stack, 'backfill-server-restart');
      const auditPath = await auditPathOf(handle, 60_000);
      const atStop: number[] = [];
      for (const stop of STOPS) {
        await waitFor(
          `${stop.atEntries} audit entries`,
          async () => (await auditLength(auditPath)) >= stop.atEntries,
          90_000,
        );
        const oldPid = server!.process.pid;
        await server!.stop();
        atStop.push(await auditLength(auditPath));
        await new Promise((r) => setTimeout(r, stop.downMs));
        await startServer();
        expect(server!.process.pid).not.toBe(oldPid);
      }
      const result = (await handle.result()) as BackfillResult;
      const audit = await readAudit(result.auditPath);
      // The stops really were mid-run: the run had started and was far from done each time.
      for (const n of atStop) expect(n).toBeLessThan(MEMBERS * 0.8);
      const progress = await handle.query(progressQuery);
      return {
        result,
        audit,
        check: checkRun(audit, stack),
        atStop,
        progress,
        accepted: stack.receiver.accepted().map((d) => `${d.memberId} ${d.event} ${d.webhookId}`),
      };
    });

    expect(disturbed.result).toMatchObject(wantCounts);
    expect(disturbed.progress).toMatchObject({ processed: MEMBERS, done: true, paused: false });
    expect(disturbed.check.problems).toEqual([]);
    expect(disturbed.audit).toHaveLength(MEMBERS);
    // Line by line, the same outcomes, fields, reasons, events and webhook-ids as the undisturbed run.
    expect(outcomesByLine(disturbed.audit)).toEqual(outcomesByLine(baseline.audit));
    // The same deliveries, each member's at least once (a replay cut off by a stop may repeat, same id).
    expect([...new Set(disturbed.accepted)].sort()).toEqual(baseline.accepted);
    console.log(
      `server-restart: audit entries at each stop ${disturbed.atStop.join(', ')}; ` +
        `${disturbed.check.accepted} deliveries accepted for ${baseline.accepted.length} due members ` +
        `(${disturbed.check.membersAcceptedMoreThanOnce} members more than once); runs in chain ${disturbed.result.runs}`,
    );
  }, 170_000);
});
