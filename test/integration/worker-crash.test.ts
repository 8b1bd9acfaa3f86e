// Issue 3, item 1: the worker is SIGKILLed again and again during a run of 3,000 members, and started again
// each time. The run must still end exact: one audit entry per source line with the intended outcome, a
// delivery for every due member, none for anyone else, and every delivery of a member carrying the same
// webhook-id. Deliveries may repeat (at-least-once): the test prints how many did.
//
// The worker is the real `npm run worker` entry (src/worker.ts) in a child process; the dev server, the Channel
// Talk simulator and the webhook receiver live in this process and survive the kills.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/audit/audit-entry';
import { parseAuditHeaderLine } from '../../src/audit/audit-header';
import { DEFAULT_SYNTHETIC_SEED, syntheticCounts, syntheticUsers, writeSyntheticCsv } from '../../dev/synthetic';
import type { DevServer } from '../../dev/temporal-cli';
import { batchIndexPath, buildBatchIndex } from '../../src/source/batch-index';
import { prepareWorkFile, workFileSummaryPath } from '../../src/source/work-file';
import { runDataDir, runFiles } from '../../src/store/data-dir';
import { progressQuery, WORKFLOW_TYPE, type BackfillInput, type BackfillResult } from '../../workflows/definitions';
import {
  ACCESS_KEY,
  ACCESS_SECRET,
  startStack,
  startTestServer,
  waitFor,
  WEBHOOK_TOKEN,
  type Stack,
} from '../support/stack';
import { EXAMPLE_CSV, loadExamples } from '../support/examples';
import { auditPathOf, checkKnownAnswer } from '../support/known-answer';
import { workerProcess, type WorkerProcess } from '../support/worker-process';

const MEMBERS = 3_000;
const SEED = DEFAULT_SYNTHETIC_SEED;
/** Kills, each a fixed time after the restarted worker's lookups have visibly resumed (varied, not random). */
const KILL_AFTER_MS = [2_500, 1_200, 3_500, 800, 2_000];
/**
 * Requests/s for the whole run (split between the two parallel batches): the 3,000 lookups need ~15 s of worker
 * time, while each kill leaves the run little of it (the restarted worker waits out the killed batch's 3 s
 * heartbeat timeout, and the workflow task the dead worker's 10 s sticky-queue timeout), so every kill lands
 * mid-run: the test checks that the audit log was short of 3,000 entries at each one (~500-900 in practice).
 */
const RATE_LIMIT = '200';

let server: DevServer;
let dir: string;
let csv: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'worker-crash-'));
  csv = path.join(dir, 'members.csv');
  [server] = await Promise.all([startTestServer(), writeSyntheticCsv(csv, MEMBERS, SEED)]);
});
afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Audit entries as a reader of the file sees them; a torn last line (a kill mid-write) is no entry, the header neither. */
async function readAuditLenient(file: string): Promise<{ entries: AuditEntry[]; torn: number }> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const entries: AuditEntry[] = [];
  let torn = 0;
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '' || (i === 0 && parseAuditHeaderLine(line))) continue;
    try {
      entries.push(JSON.parse(line) as AuditEntry);
    } catch {
      torn += 1;
    }
  }
  return { entries, torn };
}

/** True when the simulator answered lookups within the last 150 ms. */
async function lookupsMoving(stack: Stack): Promise<boolean> {
  const before = stack.simulator.stats().requests;
  await new Promise((r) => setTimeout(r, 150));
  return stack.simulator.stats().requests > before;
}

/**
 * Attempts of processBatch beyond the first, from the run's history (Temporal writes one ActivityTaskStarted
 * event per activity, for its last attempt, carrying that attempt's number), and workflow tasks that timed out
 * (a task sent to the dead worker's sticky queue waits out its schedule-to-start timeout).
 */
async function historyFacts(handle: WorkflowHandle): Promise<{ batchRetries: number; workflowTaskTimeouts: number }> {
  const history = await handle.fetchHistory();
  const typeByScheduledId = new Map<string, string>();
  let retries = 0;
  let workflowTaskTimeouts = 0;
  for (const event of history.events ?? []) {
    if (event.workflowTaskTimedOutEventAttributes) workflowTaskTimeouts += 1;
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) typeByScheduledId.set(String(event.eventId), scheduled.activityType?.name ?? '');
    const started = event.activityTaskStartedEventAttributes;
    if (started && typeByScheduledId.get(String(started.scheduledEventId)) === 'processBatch')
      retries += (started.attempt ?? 1) - 1;
  }
  return { batchRetries: retries, workflowTaskTimeouts };
}

describe('worker crashes', () => {
  it('a run survives repeated SIGKILLs of its worker and still ends exact', async () => {
    const stack = await startStack({
      server,
      users: syntheticUsers(MEMBERS, SEED),
      worker: false,
      env: { CHANNEL_RATE_LIMIT: RATE_LIMIT },
    });
    let worker: WorkerProcess | undefined;
    try {
      worker = workerProcess({ env: stack.env, logFile: path.join(dir, 'worker.log') });
      await worker.start();

      const workflowId = 'backfill-worker-crash';
      const input: BackfillInput = { source: { type: 'csv', path: csv }, batchSize: 50, batchHeartbeatSeconds: 3 };
      const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId,
        args: [input],
      });
      const auditPath = await auditPathOf(handle, 60_000);

      // Kill while work is under way: wait until the (re)started worker's lookups move, let it work a while, kill.
      const auditAtKill: number[] = [];
      for (const delay of KILL_AFTER_MS) {
        const requestsBefore = stack.simulator.stats().requests;
        await waitFor('lookups to resume', async () => stack.simulator.stats().requests > requestsBefore + 10, 60_000);
        await new Promise((r) => setTimeout(r, delay));
        // Kill only while lookups are going on right now, so a batch is in flight (not between batches).
        await waitFor('lookups in progress', () => lookupsMoving(stack), 60_000);
        await worker.kill();
        auditAtKill.push((await readAuditLenient(auditPath)).entries.length);
        await worker.start();
      }

      const result = (await handle.result()) as BackfillResult;
      const expected = syntheticCounts(MEMBERS, SEED);

      // Every kill hit a run in progress, and the run went on after each one.
      expect(worker.kills).toBe(KILL_AFTER_MS.length);
      expect(worker.starts).toBe(KILL_AFTER_MS.length + 1);
      for (const [k, n] of auditAtKill.entries()) {
        expect(n, `audit entries at kill ${k + 1}`).toBeLessThan(MEMBERS);
        if (k > 0) expect(n, `audit entries at kill ${k + 1}`).toBeGreaterThan(auditAtKill[k - 1]!);
      }

      // Every kill cut a batch short: Temporal ran it (or the batch after) again, on the restarted worker.
      const { batchRetries: retriedBatches, workflowTaskTimeouts } = await historyFacts(handle);
      expect(retriedBatches).toBeGreaterThanOrEqual(KILL_AFTER_MS.length);
      expect(result.runs).toBe(1);

      expect(result).toMatchObject({
        total: MEMBERS,
        processed: MEMBERS,
        upserts: expected.upserts,
        deletes: expected.deletes,
        unchanged: expected.unchanged,
        failed: 0,
        skipped: 0,
        dryRun: false,
      });
      expect(result.auditPath).toBe(auditPath);

      const { entries, torn } = await readAuditLenient(auditPath);
      const deliveries = stack.receiver.deliveries();
      const check = checkKnownAnswer({ n: MEMBERS, seed: SEED, workflowId, audit: entries, deliveries });
      expect(check.problems).toEqual([]);
      expect(check.auditEntries).toBe(MEMBERS);
      expect(check.accepted).toBeGreaterThanOrEqual(expected.upserts + expected.deletes);
      expect(deliveries.every((d) => d.token === WEBHOOK_TOKEN)).toBe(true);

      // Six starts and five crashes of the worker wrote no secret and no contact data into its log.
      const log = await worker.log();
      expect(log).toContain('webhook-backfill worker starting');
      for (const secret of [ACCESS_KEY, ACCESS_SECRET, WEBHOOK_TOKEN]) expect(log).not.toContain(secret);
      expect(log).not.toMatch(/@example\.(com|org|net)|\+8210\d{8}|010-\d{4}-\d{4}/i);

      const lookedUpTwice = [...stack.simulator.stats().byMember.values()].filter((count) => count > 1).length;
      console.log(
        `worker-crash: ${worker.kills} SIGKILLs; audit entries at each kill ${auditAtKill.join(', ')}; ${retriedBatches} batch retries, ${workflowTaskTimeouts} workflow task timeouts; ` +
          `${check.accepted} deliveries accepted for ${expected.upserts + expected.deletes} due members; ` +
          `${check.membersAcceptedMoreThanOnce} members' deliveries reached the receiver more than once ` +
          `(${check.extraAcceptedDeliveries} repeated deliveries, same webhook-id each); ` +
          `${lookedUpTwice} members looked up more than once; ${torn} torn audit line(s)`,
      );
    } finally {
      await worker?.stop();
      await stack.close();
    }
  }, 180_000);
});

// Issue 26: the rest of a long source is normalised beside the batches (normaliseSource). The worker is killed
// while it writes the work file; the restarted worker's attempt resumes after the last whole batch, and the work set
// ends byte for byte what the whole preparation writes, with the source's exact total.
const LONG_SOURCE = 400_000;

describe('worker crash while the source is normalised', () => {
  it('another attempt resumes the work file: the same bytes and batch index, the exact total', async () => {
    const source = path.join(dir, 'long.csv');
    await writeSyntheticCsv(source, LONG_SOURCE, SEED);
    // No rate budget, so batches are batchSize (a budget would size them by its share); a dry run: nothing is sent.
    const stack = await startStack({ server, users: [], worker: false });
    let worker: WorkerProcess | undefined;
    try {
      worker = workerProcess({ env: stack.env, logFile: path.join(dir, 'worker-normalise.log') });
      await worker.start();
      const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId: 'backfill-normaliser-crash',
        args: [{ source: { type: 'csv', path: source }, dryRun: true } satisfies BackfillInput],
      });
      const workFile = runFiles(runDataDir(stack.dataDir, handle.workflowId, handle.firstExecutionRunId)).workFile;
      const index = batchIndexPath(workFile, 1000);
      // Killed once some batches are indexed and the summary (written last) is not there yet.
      await waitFor(
        'the normaliser part-way',
        async () => ((await stat(index).catch(() => undefined))?.size ?? 0) >= 5 * 8,
        60_000,
      );
      await worker.kill();
      expect(await stat(workFileSummaryPath(workFile)).catch(() => undefined), 'killed before it finished').toBe(
        undefined,
      );
      await worker.start();

      const progress = await waitFor(
        'the source read to its end',
        async () => {
          const p = await handle.query(progressQuery);
          return p.readingSource ? undefined : p;
        },
        90_000,
      );
      expect(progress).toMatchObject({ total: LONG_SOURCE, batchesTotal: LONG_SOURCE / 1000 });
      const whole = path.join(dir, 'whole', 'members.jsonl');
      const summary = await prepareWorkFile({ type: 'csv', path: source }, whole);
      await buildBatchIndex(whole, 1000);
      expect(summary.rows).toBe(LONG_SOURCE);
      expect((await readFile(workFile)).equals(await readFile(whole))).toBe(true);
      expect((await readFile(index)).equals(await readFile(batchIndexPath(whole, 1000)))).toBe(true);
      await handle.terminate('test over');
    } finally {
      await worker?.stop();
      await stack.close();
    }
  }, 180_000);
});

// A deferred replay has a heartbeat timeout (REPLAY_HEARTBEAT_SECONDS, workflows/backfill.ts) and heartbeats while it
// waits (keepReplayAlive, activities/replay-attempts.ts): a worker killed while it sends one no longer leaves the
// replay waiting out its whole attempt timeout (replayAttemptTimeoutSeconds, 120 s) before another worker tries it.
describe('worker crash while a deferred replay runs', () => {
  it('another worker sends the replay after its heartbeat timeout, well within the attempt timeout', async () => {
    const examples = await loadExamples();
    const faulted = new Set([...Object.keys(examples.faults.channel), ...Object.keys(examples.faults.receiver)]);
    const rows = (await readFile(EXAMPLE_CSV, 'utf8')).split('\n');
    const upserts = examples.expected.outcomes
      .filter((o) => o.outcome === 'upsert' && !faulted.has(o.memberId) && rows[o.line - 1]!.startsWith(o.memberId))
      .slice(0, 3);
    const source = path.join(dir, 'replay-crash.csv');
    await writeFile(source, [rows[0], ...upserts.map((o) => rows[o.line - 1])].join('\n') + '\n');
    const member = upserts[0]!.memberId;
    // The member's endpoint answers 503 with Retry-After 5 s: the batch hands the member over to its replay, whose
    // attempts come 5 s apart. One of them is then held unanswered (a receiver stuck mid-request) and its worker killed.
    const stack = await startStack({
      server,
      users: examples.users,
      worker: false,
      receiverBehaviours: { [member]: { status: 503, retryAfterSeconds: 5 } },
      env: { WEBHOOK_TIMEOUT_MS: '60000' },
    });
    const first = workerProcess({ env: stack.env, logFile: path.join(dir, 'worker-replay-a.log') });
    const second = workerProcess({ env: stack.env, logFile: path.join(dir, 'worker-replay-b.log') });
    try {
      await first.start();
      const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId: 'backfill-replay-crash',
        args: [{ source: { type: 'csv', path: source } } satisfies BackfillInput],
      });
      const sends = () => stack.receiver.deliveries().filter((d) => d.memberId === member);
      const scheduled = await waitFor('the replay scheduled', () => replayScheduled(handle), 60_000);
      expect(scheduled.heartbeatTimeoutSeconds).toBe(20);
      // A send of the replay's (the batch is done before its replay is scheduled), answered 503: the next comes 5 s on.
      const beforeReplay = sends().length;
      await waitFor('an attempt of the replay', async () => sends().length > beforeReplay, 60_000);
      const held = sends().length;
      stack.receiver.setBehaviour(member, { status: 200, delayMs: 600_000 });
      await waitFor('an attempt held by the receiver', async () => sends().length > held, 60_000);

      await first.kill();
      const killedAt = Date.now();
      const beforeKill = sends().length; // the held one among them: recorded as it came, with the 200 it was to get
      stack.receiver.setBehaviour(member, undefined);
      const started = second.start();
      const delivered = await waitFor(
        'the replay sent by another worker, well within the 120 s attempt timeout',
        async () =>
          sends()
            .slice(beforeKill)
            .find((d) => d.status === 200),
        90_000,
      );
      await started;
      const result = (await handle.result()) as BackfillResult;
      expect(result).toMatchObject({ processed: upserts.length, upserts: upserts.length, failed: 0 });
      // The killed attempt ended by its heartbeat timeout, and the attempt after it delivered.
      const retried = await replayScheduled(handle);
      expect(retried?.lastFailureTimeout).toBe(temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_HEARTBEAT);
      console.log(
        `worker-crash (replay): the replay delivered by the second worker ${delivered.receivedAt - killedAt} ms after the kill (load average ${os
          .loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')})`,
      );
    } finally {
      await first.stop();
      await second.stop();
      await stack.close();
    }
  }, 180_000);
});

/** The run's replayDeferred as its history has it: its heartbeat timeout, and how its last started attempt's predecessor failed. */
async function replayScheduled(
  handle: WorkflowHandle,
): Promise<{ heartbeatTimeoutSeconds?: number; lastFailureTimeout?: number | null } | undefined> {
  const events = (await handle.fetchHistory()).events ?? [];
  const event = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'replayDeferred');
  if (!event) return undefined;
  const seconds = event.activityTaskScheduledEventAttributes?.heartbeatTimeout?.seconds;
  const started = events.find(
    (e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId ?? '') === String(event.eventId),
  );
  return {
    ...(seconds !== undefined && seconds !== null ? { heartbeatTimeoutSeconds: Number(seconds) } : {}),
    lastFailureTimeout: started?.activityTaskStartedEventAttributes?.lastFailure?.timeoutFailureInfo?.timeoutType,
  };
}
