// Issue 28's acceptance scenario for the receiver, at its scale: 2,000 members at 200 lookups/s with the defaults,
// the webhook endpoint refusing connections for 5 minutes after the first 50 accepted replays, then back on the same
// port: every replay delivered, 0 failed, counters exact, one webhook-id per member. Minutes long, so opt-in:
// OUTAGE_TARGETS=1 npx vitest run test/integration/receiver-outage-target.test.ts (RECEIVER_OUTAGE_MS for another
// length). The suite's receiver-outage.test.ts holds the same rule in seconds.
import { expect, it } from 'vitest';
import { DEFAULT_SYNTHETIC_SEED, syntheticUsers } from '../../dev/synthetic';
import { progressQuery, WORKFLOW_TYPE, type BackfillResult } from '../../workflows/definitions';
import { readAudit, readAuditWaits, startStack, waitFor } from '../support/stack';
import { syntheticSuite } from '../support/synthetic-suite';
import { expectKnownCounts, checkKnownAnswer } from '../support/known-answer';

const RUN = process.env.OUTAGE_TARGETS === '1';
const MEMBERS = 2_000;
const RATE_LIMIT = 200;
const SEED = DEFAULT_SYNTHETIC_SEED;
const OUTAGE_MS = Number(process.env.RECEIVER_OUTAGE_MS ?? 300_000);

const suite = syntheticSuite({ members: MEMBERS, seed: SEED, prefix: 'receiver-outage-target-', enabled: RUN });

it.runIf(RUN)(
  `receiver refusing connections for ${OUTAGE_MS / 1000} s, ${MEMBERS} members at ${RATE_LIMIT}/s: 0 failed, exact`,
  { timeout: OUTAGE_MS + 600_000 },
  async () => {
    const stack = await startStack({ server: suite.server, users: syntheticUsers(MEMBERS, SEED) });
    try {
      const workflowId = 'receiver-outage-target';
      const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId,
        args: [{ source: { type: 'csv', path: suite.csv }, rateLimit: RATE_LIMIT }],
      });
      await waitFor('the first 50 replays accepted', async () => stack.receiver.accepted().length >= 50, 120_000);
      await stack.receiver.stop();
      const stoppedAt = Date.now();
      const down = await waitFor(
        'the receiver-unavailable state',
        async () => (await handle.query(progressQuery)).receiverUnavailable,
        120_000,
      );
      const lookupsAtDown = stack.simulator.stats().requests;
      await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt))));
      const lookupsWhileDown = stack.simulator.stats().requests - lookupsAtDown;
      await stack.receiver.start();
      const backAt = Date.now();

      const result = (await handle.result()) as BackfillResult;
      const doneAfterMs = Date.now() - backAt;
      expectKnownCounts(result, { n: MEMBERS, seed: SEED });
      const audit = await readAudit(result.auditPath);
      const check = checkKnownAnswer({
        n: MEMBERS,
        seed: SEED,
        workflowId,
        audit,
        deliveries: stack.receiver.deliveries(),
      });
      const waits = (await readAuditWaits(result.auditPath)).filter((w) => w.kind === 'receiver-unavailable');
      console.log(
        `receiver-outage-target: down ${OUTAGE_MS / 1000} s from ${down.since}; ${lookupsWhileDown} lookups while down; ` +
          `done ${(doneAfterMs / 1000).toFixed(1)} s after it was back; ${result.failed} failed; ` +
          `${check.extraAcceptedDeliveries} deliveries accepted twice; problems ${JSON.stringify(check.problems)}; ` +
          `recorded waits ${JSON.stringify(waits)}`,
      );
      expect(check.problems).toEqual([]);
      expect(waits.length).toBeGreaterThanOrEqual(1);
    } finally {
      await stack.close();
    }
  },
);
