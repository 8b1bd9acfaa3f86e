// The customer's endpoint goes away mid-run (a deploy, a restart) for longer than the whole retry schedule of a
// replay, then comes back on the same port: nobody is given up on (issue 28). The schedule is kept short here
// (replayMaxAttempts 2, backoff capped at 2 s: about 2 s) so that a 12 s outage outlasts it many times over, and the
// replay probing the endpoint notices within 2 s that it is back. While the endpoint is down the run says so
// (progress `receiverUnavailable`) and starts no lookups; past receiverOutagePauseSeconds it pauses itself instead
// of failing anyone (the probe's attempts, 2 s apart, meet that pause: one cancelled while failing is not fatal).
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DevServer } from '../../dev/temporal-cli';
import {
  progressQuery,
  resumeSignal,
  WORKFLOW_TYPE,
  type BackfillInput,
  type BackfillResult,
  type Progress,
} from '../../workflows/definitions';
import { EXAMPLE_CSV, loadExamples, type Examples } from '../support/examples';
import type { RunWait } from '../../src/audit/run-wait';
import type { AuditSummary } from '../../src/report/summary';
import { cliInProcess } from '../support/cli';
import { readAudit, readAuditWaits, startStack, startTestServer, waitFor, type Stack } from '../support/stack';

const OUTAGE_MS = 12_000;
/** Members a batch may have in flight (BACKFILL_MEMBER_CONCURRENCY, default 16) times parallelBatches (4). */
const IN_FLIGHT = 16 * 4;

let server: DevServer;
let examples: Examples;
beforeAll(async () => {
  [server, examples] = await Promise.all([startTestServer(), loadExamples()]);
});
afterAll(async () => {
  await server?.stop();
});

/**
 * The outage is in the audit log (one receiver wait, ended as `ended` says, with what waited) and the report says
 * it: text, JSON and HTML, from the log alone (a report handed on after the workflow is gone).
 */
async function checkReport(auditPath: string, ended: RunWait['ended']): Promise<void> {
  const waits = (await readAuditWaits(auditPath)).filter((w) => w.kind === 'receiver-unavailable');
  expect(waits).toHaveLength(1);
  const wait = waits[0]!;
  expect(wait).toMatchObject({ ended });
  expect(wait.waitingReplays).toBeGreaterThan(0);
  expect(Date.parse(wait.until)).toBeGreaterThan(Date.parse(wait.since));
  const [text, json, html] = await Promise.all([
    cliInProcess(['report', '--audit', auditPath], {}),
    cliInProcess(['report', '--audit', auditPath, '--summary', '--format', 'json'], {}),
    cliInProcess(['report', '--audit', auditPath, '--format', 'html'], {}),
  ]);
  for (const r of [text, json, html]) expect(r.code, r.err).toBe(0);
  expect(text.out).toContain(`receiver unavailable since ${wait.since} for `);
  expect(text.out).toContain(`${wait.waitingReplays} replays waited`);
  const summary = JSON.parse(json.out) as AuditSummary;
  expect(summary.waits.receiver).toEqual([
    expect.objectContaining({ since: wait.since, until: wait.until, ended, waitingReplays: wait.waitingReplays }),
  ]);
  expect(html.out).toContain('id="waits"');
  expect(html.out).toContain(wait.since);
}

/** Starts a run over the examples, stops the receiver once replays flow, and hands the run over while it is down. */
async function withOutage(
  workflowId: string,
  ended: RunWait['ended'],
  input: Partial<BackfillInput>,
  whileDown: (stack: Stack, handle: Awaited<ReturnType<Stack['client']['workflow']['start']>>) => Promise<void>,
): Promise<void> {
  // No faults: every member the examples replay must be delivered.
  const stack = await startStack({ server, users: examples.users, channelFaults: {}, receiverBehaviours: {} });
  try {
    const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
      taskQueue: stack.config.BACKFILL_TASK_QUEUE,
      workflowId,
      args: [
        {
          source: { type: 'csv', path: EXAMPLE_CSV },
          batchSize: 25,
          rateLimit: 25,
          replayMaxAttempts: 2,
          replayMaxBackoffSeconds: 2,
          ...input,
        },
      ],
    });
    await waitFor('the first replays accepted', async () => stack.receiver.accepted().length >= 10);
    await stack.receiver.stop();
    await whileDown(stack, handle);
    await stack.receiver.start();

    const result = (await handle.result()) as BackfillResult;
    expect(result.failed).toBe(0);
    expect(result.processed).toBe(examples.expected.counts.rows);
    const audit = await readAudit(result.auditPath);
    expect(audit.filter((e) => e.outcome === 'failed')).toEqual([]);
    const due = audit.filter((e) => e.outcome === 'upsert' || e.outcome === 'delete');
    expect(due.length).toBe(result.upserts + result.deletes);
    expect(due.every((e) => e.delivered === true)).toBe(true);
    // Every due member accepted under its one webhook-id (again only where an answer was lost on the way back).
    const accepted = stack.receiver.accepted();
    const ids = new Set(accepted.map((d) => d.webhookId));
    expect(ids).toEqual(new Set(due.map((e) => e.webhookId)));
    expect(new Set(accepted.map((d) => d.memberId)).size).toBe(ids.size);
    expect((await handle.query(progressQuery)).receiverUnavailable).toBeUndefined();
    await checkReport(result.auditPath, ended);
  } finally {
    await stack.close();
  }
}

it(
  'receiver refusing connections for longer than the retry schedule, then back: shown, no lookups, 0 failed',
  { timeout: 180_000 },
  async () => {
    await withOutage('receiver-outage', 'answered', {}, async (stack, handle) => {
      const stoppedAt = Date.now();
      const down = await waitFor('the run in its receiver-unavailable state', async () => {
        const p: Progress = await handle.query(progressQuery);
        return p.receiverUnavailable ? p : undefined;
      });
      expect(down.failed).toBe(0);
      expect(Date.parse(down.receiverUnavailable!.since)).toBeGreaterThanOrEqual(stoppedAt - 1_000);
      const lookupsAtDown = stack.simulator.stats().requests;
      await new Promise((r) => setTimeout(r, OUTAGE_MS - (Date.now() - stoppedAt)));
      const beforeRestart: Progress = await handle.query(progressQuery);
      expect(beforeRestart.failed).toBe(0);
      expect(beforeRestart.pendingReplays).toBeGreaterThan(0);
      expect(beforeRestart.receiverUnavailable).toMatchObject({ since: down.receiverUnavailable!.since });
      // The Web UI's current details say it too.
      const meta = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
      expect(meta.currentDetails).toMatch(/^\*\*running\*\* · receiver unavailable since /);
      expect(meta.currentDetails).toContain(`receiver unavailable since ${down.receiverUnavailable!.since} (`);
      expect(meta.currentDetails).toMatch(/\d+ replays waiting for it/);
      // So does the report of the run (the outage is recorded in its audit log once it ends).
      const report = await cliInProcess(['report', '--workflow-id', 'receiver-outage'], {
        TEMPORAL_ADDRESS: server.address,
      });
      expect(report.code, report.err).toBe(0);
      expect(report.out).toContain(`receiver unavailable since ${down.receiverUnavailable!.since} (`);
      expect(report.out).toMatch(/so far\), still: \d+ replays wait for it/);
      // At 25 lookups/s the rest of the outage would have been well over 200 lookups: only those in flight ran.
      const lookupsWhileDown = stack.simulator.stats().requests - lookupsAtDown;
      console.log(`receiver-outage: ${lookupsWhileDown} lookups after the run saw the receiver down`);
      expect(lookupsWhileDown).toBeLessThanOrEqual(IN_FLIGHT);
    });
  },
);

it(
  'receiver down past receiverOutagePauseSeconds: the run pauses itself with that reason, and resumes once back',
  { timeout: 180_000 },
  async () => {
    await withOutage('receiver-outage-pause', 'paused', { receiverOutagePauseSeconds: 3 }, async (stack, handle) => {
      const paused = await waitFor('the run paused by the outage', async () => {
        const p: Progress = await handle.query(progressQuery);
        return p.paused ? p : undefined;
      });
      expect(paused.pauseReason).toMatch(/^receiver unavailable since \S+ \(more than 3 s\)/);
      expect(paused.failed).toBe(0);
      await stack.receiver.start();
      await handle.signal(resumeSignal);
    });
  },
);
