// The customer's endpoint goes away mid-run (a deploy, a restart) for longer than the whole retry schedule of a
// replay, then comes back on the same port: nobody is given up on (issue 28). The schedule is kept short here
// (replayMaxAttempts 2: about 2 s) so that a 12 s outage outlasts it many times over.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DevServer } from '../../dev/temporal-cli';
import { progressQuery, WORKFLOW_TYPE, type BackfillResult, type Progress } from '../../workflows/definitions';
import { EXAMPLE_CSV, loadExamples, type Examples } from '../support/examples';
import { readAudit, startStack, startTestServer, waitFor } from '../support/stack';

const OUTAGE_MS = 12_000;

let server: DevServer;
let examples: Examples;
beforeAll(async () => {
  [server, examples] = await Promise.all([startTestServer(), loadExamples()]);
});
afterAll(async () => {
  await server?.stop();
});

it(
  'receiver refusing connections for longer than the retry schedule, then back: 0 failed, one webhook-id per member',
  { timeout: 180_000 },
  async () => {
    // No faults: every member the examples replay must be delivered.
    const stack = await startStack({ server, users: examples.users, channelFaults: {}, receiverBehaviours: {} });
    try {
      const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId: 'receiver-outage',
        args: [{ source: { type: 'csv', path: EXAMPLE_CSV }, batchSize: 25, rateLimit: 25, replayMaxAttempts: 2 }],
      });
      await waitFor('the first replays accepted', async () => stack.receiver.accepted().length >= 10);
      await stack.receiver.stop();
      const stoppedAt = Date.now();
      const during = await waitFor('replays waiting on the stopped receiver', async () => {
        const p: Progress = await handle.query(progressQuery);
        return p.pendingReplays > 0 ? p : undefined;
      });
      expect(during.failed).toBe(0);
      await new Promise((r) => setTimeout(r, OUTAGE_MS - (Date.now() - stoppedAt)));
      const beforeRestart: Progress = await handle.query(progressQuery);
      expect(beforeRestart.failed).toBe(0);
      expect(beforeRestart.pendingReplays).toBeGreaterThan(0);
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
    } finally {
      await stack.close();
    }
  },
);
