import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import { runProcess } from '../support/child-process';
import {
  ACCESS_KEY,
  ACCESS_SECRET,
  readAudit,
  activitySchedule,
  startStack,
  startTestServer,
  waitFor,
  type Stack,
  type StackOptions,
} from '../support/stack';

// API and receiver faults (issue 3, items 3 and 4). Every run must end with the example data's known
// answer: faults the job is built to absorb may slow it down but never change an outcome.

let server: DevServer;
let examples: Examples;

beforeAll(async () => {
  [server, examples] = await Promise.all([startTestServer(), loadExamples()]);
});
afterAll(async () => {
  await server?.stop();
});

async function withStack(opts: Partial<StackOptions>, body: (stack: Stack) => Promise<void>): Promise<void> {
  const stack = await startStack({
    server,
    users: examples.users,
    channelFaults: examples.faults.channel,
    receiverBehaviours: examples.faults.receiver,
    ...opts,
  });
  try {
    await body(stack);
  } finally {
    await stack.close();
  }
}

function start(stack: Stack, workflowId: string, input: Partial<BackfillInput> = {}) {
  return stack.client.workflow.start(WORKFLOW_TYPE, {
    taskQueue: stack.config.BACKFILL_TASK_QUEUE,
    workflowId,
    args: [{ source: { type: 'csv', path: EXAMPLE_CSV }, batchSize: 20, ...input }],
  });
}

async function expectKnownAnswer(stack: Stack, result: BackfillResult, exactlyOnce = true): Promise<void> {
  const c = examples.expected.counts;
  expect(result).toMatchObject({
    processed: c.rows,
    upserts: c.upserts,
    deletes: c.deletes,
    unchanged: c.unchanged,
    failed: c.failed,
    skipped: c.skipped,
  });
  const audit = await readAudit(result.auditPath);
  expect(audit).toHaveLength(c.rows);
  const byLine = new Map(audit.map((e) => [e.line, e.outcome]));
  for (const o of examples.expected.outcomes)
    expect(byLine.get(o.line), `line ${o.line} (${o.memberId})`).toBe(o.outcome);
  // Each due delivery accepted: once, or more often only where an answer was lost on the way back
  // (then with the same webhook-id, so a deduplicating receiver sees it once).
  const accepted = stack.receiver.accepted();
  const ids = new Set(accepted.map((d) => d.webhookId));
  expect(ids.size).toBe(c.upserts + c.deletes);
  expect(new Set(accepted.map((d) => d.memberId)).size).toBe(ids.size);
  if (exactlyOnce) expect(accepted).toHaveLength(ids.size);
}

const BIN = path.resolve(__dirname, '../../bin/webhook-backfill.js');

/** The receiver's outage below, and the replays' longest backoff during it. */
const DOWN_MS = 20_000;
const DOWN_BACKOFF_S = 4;

/** No budget and no reserve: nothing but a 429 (or a grace warning) slows the job down. */
const NO_RESERVE = { CHANNEL_RATE_RESERVE: '0' };

describe('Channel Talk API faults', () => {
  it('429 storms with Retry-After: waits them out, no outcome changes', async () => {
    // The simulator allows 40 requests/s while the worker has no budget configured and leaves no reserve
    // (CHANNEL_RATE_RESERVE=0): the headers hold it back only after a 429, so it overruns.
    await withStack({ simulatorRateLimit: 40, env: NO_RESERVE }, async (stack) => {
      const result = (await (await start(stack, 'faults-429-retry-after')).result()) as BackfillResult;
      expect(stack.simulator.stats().rateLimited).toBeGreaterThan(0);
      await expectKnownAnswer(stack, result);
      // The run's own count of the 429s it met reaches its result and `report` (issue 24).
      expect(result.channelPace?.rateLimited).toBeGreaterThan(0);
      expect(result.channelPace!.rateLimited).toBeLessThanOrEqual(stack.simulator.stats().rateLimited);
      const report = await runProcess(
        process.execPath,
        [BIN, 'report', '--workflow-id', 'faults-429-retry-after'],
        stack.env,
      );
      expect(report.code, report.stderr).toBe(0);
      expect(report.stdout).toContain(
        `Channel Talk's rate limit: ${result.channelPace!.rateLimited} answers 429, ${result.channelPace!.warnings} grace-period warnings`,
      );
      // The HTML report of the run carries the same totals.
      const html = path.join(stack.dataDir, 'report.html');
      const page = await runProcess(
        process.execPath,
        [BIN, 'report', '--workflow-id', 'faults-429-retry-after', '--format', 'html', '--out', html],
        stack.env,
      );
      expect(page.code, page.stderr).toBe(0);
      expect(await readFile(html, 'utf8')).toContain(
        `answers 429: <span data-count="rate-limited">${result.channelPace!.rateLimited}</span>`,
      );
    });
  });

  it('429 storms without Retry-After: waits for x-ratelimit-reset instead', async () => {
    await withStack({ simulatorRateLimit: 40, simulatorRetryAfter: false, env: NO_RESERVE }, async (stack) => {
      const result = (await (await start(stack, 'faults-429-reset')).result()) as BackfillResult;
      expect(stack.simulator.stats().rateLimited).toBeGreaterThan(0);
      await expectKnownAnswer(stack, result);
    });
  });

  it('CHANNEL_RATE_LIMIT equal to the API limit: zero 429s', async () => {
    await withStack({ simulatorRateLimit: 60, env: { CHANNEL_RATE_LIMIT: '60' } }, async (stack) => {
      const result = (await (await start(stack, 'faults-within-budget')).result()) as BackfillResult;
      expect(stack.simulator.stats().rateLimited).toBe(0);
      await expectKnownAnswer(stack, result);
    });
  });

  it('5xx bursts, resets and malformed bodies on every member: retried per member, same answer', async () => {
    // On top of the example faults, every other member fails twice in a different way first.
    const extra: NonNullable<StackOptions['channelFaults']> = {};
    examples.expected.outcomes.forEach((o, i) => {
      if (examples.faults.channel[o.memberId] || i % 2 === 1) return;
      extra[o.memberId] = [{ status5xx: 2 }, { reset: 2 }, { malformed: 2 }, { reset: 1, status5xx: 1 }][i % 4]!;
    });
    await withStack({ channelFaults: { ...examples.faults.channel, ...extra } }, async (stack) => {
      const result = (await (await start(stack, 'faults-5xx-bursts')).result()) as BackfillResult;
      expect(stack.simulator.stats().faults).toBeGreaterThan(Object.keys(extra).length);
      await expectKnownAnswer(stack, result);
    });
  });

  it('answers slower than the timeout: those members fail with a timeout reason, the rest is unaffected', async () => {
    const slow = examples.expected.outcomes
      .filter((o) => o.outcome === 'unchanged')
      .slice(0, 3)
      .map((o) => o.memberId);
    // A timeout well above what a loaded CI machine takes to answer (300 ms failed a fourth member once, with four
    // test files running beside it), and the slow answers well past it.
    const faults = { ...examples.faults.channel, ...Object.fromEntries(slow.map((m) => [m, { delayMs: 2_500 }])) };
    await withStack({ channelFaults: faults, env: { CHANNEL_TIMEOUT_MS: '1000' } }, async (stack) => {
      const result = (await (await start(stack, 'faults-slow')).result()) as BackfillResult;
      const c = examples.expected.counts;
      expect(result).toMatchObject({
        processed: c.rows,
        failed: c.failed + slow.length,
        unchanged: c.unchanged - slow.length,
      });
      const audit = await readAudit(result.auditPath);
      for (const member of slow) {
        const entry = audit.find((e) => e.memberId === member);
        expect(entry?.outcome).toBe('failed');
        expect(entry?.reason).toMatch(/timeout/i);
      }
    });
  });

  it('credentials revoked mid-run: the run pauses itself, marks nobody failed, and finishes after resume', async () => {
    await withStack({ env: { CHANNEL_RATE_LIMIT: '80' } }, async (stack) => {
      const handle = await start(stack, 'faults-401', { batchSize: 10 });
      await waitFor('some progress', async () =>
        (await handle.query(progressQuery)).processed >= 30 ? true : undefined,
      );
      stack.simulator.setCredentials('revoked-key', 'revoked-secret');
      const paused = await waitFor('the run to pause itself', async () => {
        const p: Progress = await handle.query(progressQuery);
        return p.paused ? p : undefined;
      });
      expect(paused.pauseReason).toMatch(/credentials/i);
      // Nothing is counted failed for the credentials; lookups stop.
      await new Promise((r) => setTimeout(r, 1_500));
      const requests = stack.simulator.stats().requests;
      const held: Progress = await handle.query(progressQuery);
      await new Promise((r) => setTimeout(r, 1_500));
      expect(stack.simulator.stats().requests).toBe(requests);
      expect((await handle.query(progressQuery)).processed).toBe(held.processed);
      const description = await handle.describe();
      expect(description.status.name).toBe('RUNNING');

      // A lookup cut short by the stop used up some of its member's fault counters; give them back so
      // the known answer (a member failing exactly CHANNEL_MAX_ATTEMPTS times) still holds.
      stack.simulator.setFaults(examples.faults.channel);
      stack.simulator.setCredentials(ACCESS_KEY, ACCESS_SECRET);
      await handle.signal(resumeSignal);
      const result = (await handle.result()) as BackfillResult;
      await expectKnownAnswer(stack, result);
      const audit = await readAudit(result.auditPath);
      expect(audit.some((e) => /401|403|credential/i.test(e.reason ?? ''))).toBe(false);
    });
  });
});

describe('webhook receiver faults', () => {
  it('503 for a while: replays wait in their own activities and are delivered once it recovers', async () => {
    await withStack({}, async (stack) => {
      stack.receiver.setDefaultBehaviour({ status: 503 });
      const handle = await start(stack, 'receiver-503', { batchSize: 50 });
      const waiting = await waitFor('replays deferred', async () => {
        const p: Progress = await handle.query(progressQuery);
        return p.pendingReplays >= 10 ? p : undefined;
      });
      expect(waiting.pendingReplays).toBeGreaterThanOrEqual(10);
      stack.receiver.setDefaultBehaviour(undefined);
      const result = (await handle.result()) as BackfillResult;
      await expectKnownAnswer(stack, result);
      const audit = await readAudit(result.auditPath);
      expect(audit.filter((e) => e.deferred === true).length).toBeGreaterThanOrEqual(10);
      // Left out of the input: the product's replay timeout and backoffs.
      expect(await activitySchedule(handle, 'replayDeferred')).toMatchObject({
        startToCloseSeconds: 120,
        maxBackoffSeconds: 30,
      });
      expect(await activitySchedule(handle, 'processBatch')).toMatchObject({ maxBackoffSeconds: 30 });
    });
  });

  it('slow answers beyond the webhook timeout: retried with the same webhook-id and delivered', async () => {
    const due = examples.expected.outcomes
      .filter((o) => o.outcome === 'upsert' && !examples.faults.receiver[o.memberId])
      .slice(0, 4);
    const behaviours = {
      ...examples.faults.receiver,
      ...Object.fromEntries(due.map((o) => [o.memberId, { status: 200, delayMs: 1_500, times: 1 }])),
    };
    await withStack({ receiverBehaviours: behaviours, env: { WEBHOOK_TIMEOUT_MS: '400' } }, async (stack) => {
      const result = (await (await start(stack, 'receiver-slow')).result()) as BackfillResult;
      // The slow receiver did accept the timed-out attempt: those members arrive twice, same id.
      await expectKnownAnswer(stack, result, false);
      for (const o of due) {
        const attempts = stack.receiver.deliveries().filter((d) => d.memberId === o.memberId);
        expect(attempts.length).toBeGreaterThanOrEqual(2);
        expect(new Set(attempts.map((d) => d.webhookId)).size).toBe(1);
      }
    });
  });

  it(
    'receiver down entirely for longer than the replays take to reach their longest backoff, then back: every due replay is delivered',
    { timeout: 180_000 },
    async () => {
      // What a minute's outage is with the product's backoff (1, 2, 4 ... 30 s: capped after ~30 s, six or seven
      // probes), in a third of the time: the backoff capped at DOWN_BACKOFF_S, the probe reaches its cap within a few
      // seconds and then probes at it until the receiver is back.
      await withStack({}, async (stack) => {
        await stack.receiver.stop();
        const handle = await start(stack, 'receiver-down', { batchSize: 50, replayMaxBackoffSeconds: DOWN_BACKOFF_S });
        // Down for everyone: the run says so and waits (no batch starts until it answers; receiver-outage.test.ts).
        await waitFor(
          'the run waiting on the unavailable receiver with replays waiting',
          async () => {
            const p: Progress = await handle.query(progressQuery);
            return p.receiverUnavailable && p.pendingReplays > 0 ? p : undefined;
          },
          60_000,
        );
        await new Promise((r) => setTimeout(r, DOWN_MS - 5_000));
        await stack.receiver.start();
        const result = (await handle.result()) as BackfillResult;
        await expectKnownAnswer(stack, result);
        // The setting reached the replays' retry policy (the attempt timeout left at its default), and the probe
        // kept trying at the capped backoff.
        const schedule = await activitySchedule(handle, 'replayDeferred');
        expect(schedule).toMatchObject({ startToCloseSeconds: 120, maxBackoffSeconds: DOWN_BACKOFF_S });
        expect(schedule!.maxAttempt).toBeGreaterThanOrEqual(5);
      });
    },
  );
});
