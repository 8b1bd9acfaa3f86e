import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import type { DevServer } from '../../dev/temporal-cli';
import { webhookId } from '../../src/webhook/webhook-id';
import type { WebhookEvent } from '../../src/domain/types';
import {
  pauseSignal,
  progressQuery,
  resumeSignal,
  WORKFLOW_TYPE,
  type BackfillInput,
  type BackfillResult,
  type Progress,
} from '../../workflows/definitions';
import { EXAMPLE_CSV, loadExamples, type Examples } from '../support/examples';
import { readAudit, startStack, startTestServer, waitFor, WEBHOOK_TOKEN, type Stack } from '../support/stack';

let server: DevServer;
let examples: Examples;

beforeAll(async () => {
  [server, examples] = await Promise.all([startTestServer(), loadExamples()]);
});
afterAll(async () => {
  await server?.stop();
});

async function withStack<T>(
  opts: Partial<Parameters<typeof startStack>[0]>,
  body: (stack: Stack) => Promise<T>,
): Promise<T> {
  const stack = await startStack({
    server,
    users: examples.users,
    channelFaults: examples.faults.channel,
    receiverBehaviours: examples.faults.receiver,
    ...opts,
  });
  try {
    return await body(stack);
  } finally {
    await stack.close();
  }
}

function start(stack: Stack, workflowId: string, input: Partial<BackfillInput>) {
  return stack.client.workflow.start(WORKFLOW_TYPE, {
    taskQueue: stack.config.BACKFILL_TASK_QUEUE,
    workflowId,
    args: [{ source: { type: 'csv', path: EXAMPLE_CSV }, ...input }],
  });
}

describe('backfillWebhooks on a real Temporal dev server', () => {
  it('repairs the example data exactly: every row one outcome, every due delivery once, nothing else', async () => {
    await withStack({}, async (stack) => {
      const workflowId = 'backfill-full-run';
      const handle = await start(stack, workflowId, { batchSize: 25 });
      const result = (await handle.result()) as BackfillResult;
      const { counts, outcomes } = examples.expected;

      expect(result).toMatchObject({
        processed: counts.rows,
        upserts: counts.upserts,
        deletes: counts.deletes,
        unchanged: counts.unchanged,
        failed: counts.failed,
        skipped: counts.skipped,
        total: counts.rows,
        dryRun: false,
      });

      const perField = { mobileNumber: 0, email: 0, unsubscribeEmail: 0, unsubscribeTexting: 0 };
      for (const o of outcomes)
        if (o.outcome === 'upsert') for (const f of o.fields ?? []) perField[f as keyof typeof perField]++;
      expect(result.fields).toEqual(perField);

      const audit = await readAudit(result.auditPath);
      expect(audit).toHaveLength(outcomes.length);
      const byLine = new Map(audit.map((e) => [e.line, e]));
      for (const want of outcomes) {
        const got = byLine.get(want.line);
        expect(got, `line ${want.line}`).toBeDefined();
        expect(got!.outcome, `line ${want.line} (${want.memberId})`).toBe(want.outcome);
        if (want.outcome !== 'skipped') expect(got!.memberId).toBe(want.memberId);
        if (want.outcome === 'upsert') expect(got!.fields).toEqual(want.fields);
        if (want.outcome === 'delete') expect(got!.reason).toBe(want.reason);
        if (want.outcome === 'failed') expect(got!.stage).toBe(want.reason);
      }

      // The receiver got exactly the due deliveries: one per upsert/delete, none for anything else,
      // and the members it refused with 400 were attempted but are recorded as failed.
      const accepted = stack.receiver.accepted();
      const due = outcomes.filter((o) => o.outcome === 'upsert' || o.outcome === 'delete');
      expect(accepted).toHaveLength(due.length);
      const acceptedByMember = new Map(accepted.map((d) => [d.memberId, d]));
      for (const o of due) {
        const delivery = acceptedByMember.get(o.memberId);
        expect(delivery, `delivery for ${o.memberId}`).toBeDefined();
        expect(delivery!.event).toBe(o.outcome);
        expect(delivery!.token).toBe(WEBHOOK_TOKEN);
        expect(delivery!.webhookId).toBe(webhookId(workflowId, o.memberId, o.outcome as WebhookEvent));
        expect((delivery!.body as { type: string }).type).toBe('user');
      }
      const attempted = new Set(stack.receiver.deliveries().map((d) => d.memberId));
      for (const o of outcomes.filter((x) => x.outcome === 'unchanged' || x.outcome === 'skipped')) {
        expect(attempted.has(o.memberId), `no delivery for ${o.memberId}`).toBe(false);
      }
      // Every attempt of one member's replay carries the same webhook-id.
      const idsPerMember = new Map<string, Set<string>>();
      for (const d of stack.receiver.deliveries()) {
        const set = idsPerMember.get(d.memberId ?? '') ?? new Set<string>();
        set.add(d.webhookId ?? '');
        idsPerMember.set(d.memberId ?? '', set);
      }
      for (const [member, ids] of idsPerMember) expect(ids.size, member).toBe(1);

      const progress = await handle.query(progressQuery);
      expect(progress).toMatchObject({ processed: counts.rows, paused: false, done: true });
      // 300 rows are more than one round of batches (4 x 25): the preparation read only that far, the batches
      // started while normaliseSource wrote the rest (issue 26), and the totals are the whole source's.
      expect(progress).toMatchObject({ total: counts.rows, batchesTotal: Math.ceil(counts.rows / 25) });
      expect(progress.readingSource).toBeUndefined();
      const events = (await handle.fetchHistory()).events ?? [];
      const scheduled = new Map<string, string>();
      const order: string[] = [];
      events.forEach((e) => {
        const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
        if (name) scheduled.set(String(e.eventId), name);
        if (name === 'processBatch' && !order.includes('batch')) order.push('batch');
        const done = e.activityTaskCompletedEventAttributes?.scheduledEventId;
        if (done && scheduled.get(String(done)) === 'normaliseSource') order.push('normalised');
      });
      expect(order).toEqual(['batch', 'normalised']);
    });
  });

  it('a long source whose last quoted field is never closed: found once the batches run, one bad row, the run ends exact', async () => {
    await withStack({}, async (stack) => {
      // The examples, then a quoted field never closed: found only by normaliseSource, after the first batches
      // started. Before them (a short source) it stops the run (bad-input.test); here it is a bad row.
      const dir = await mkdtemp(path.join(os.tmpdir(), 'backfill-unclosed-'));
      const source = path.join(dir, 'members.csv');
      await writeFile(source, `${await readFile(EXAMPLE_CSV, 'utf8')}zz-0001,,x@example.com,false,false,"Kim, Jun\n`);
      try {
        const handle = await start(stack, 'backfill-unclosed-quote', {
          source: { type: 'csv', path: source },
          batchSize: 25,
        });
        const result = (await handle.result()) as BackfillResult;
        const { counts } = examples.expected;
        expect(result).toMatchObject({
          total: counts.rows + 1,
          processed: counts.rows + 1,
          skipped: counts.skipped + 1,
          upserts: counts.upserts,
          deletes: counts.deletes,
          failed: counts.failed,
        });
        const audit = await readAudit(result.auditPath);
        expect(audit.find((e) => e.line === 302)).toMatchObject({
          outcome: 'skipped',
          reason: 'quoted field never closed: the rest of the file is one bad record (truncated or corrupt file)',
        });
        const { events } = await handle.fetchHistory();
        expect(
          (events ?? []).some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'normaliseSource'),
        ).toBe(true);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  it('dry run decides and records but sends nothing', async () => {
    await withStack({ env: { WEBHOOK_URL: '' } }, async (stack) => {
      const handle = await start(stack, 'backfill-dry-run', { dryRun: true, batchSize: 50 });
      const result = (await handle.result()) as BackfillResult;
      const want = examples.expected.dryRunCounts;
      expect(result).toMatchObject({
        dryRun: true,
        processed: want.rows,
        upserts: want.upserts,
        deletes: want.deletes,
        unchanged: want.unchanged,
        failed: want.failed,
        skipped: want.skipped,
      });
      expect(stack.receiver.deliveries()).toHaveLength(0);
      // The plan's per-field counts: every decided upsert, whatever a replay would have done.
      const perField = { mobileNumber: 0, email: 0, unsubscribeEmail: 0, unsubscribeTexting: 0 };
      for (const o of examples.expected.outcomes)
        if (o.dryRunOutcome === 'upsert') for (const f of o.fields ?? []) perField[f as keyof typeof perField]++;
      expect(result.fields).toEqual(perField);
      const audit = await readAudit(result.auditPath);
      expect(audit.every((e) => e.delivered !== true)).toBe(true);
      const byLine = new Map(audit.map((e) => [e.line, e]));
      for (const o of examples.expected.outcomes)
        expect(byLine.get(o.line)?.outcome, `line ${o.line}`).toBe(o.dryRunOutcome);
    });
  });

  it('pause stops new lookups and replays until resume, and the run still ends exact', async () => {
    await withStack({ env: { CHANNEL_RATE_LIMIT: '60' } }, async (stack) => {
      const handle = await start(stack, 'backfill-pause', { batchSize: 10 });
      await waitFor('some progress', async () =>
        (await handle.query(progressQuery)).processed >= 20 ? true : undefined,
      );
      await handle.signal(pauseSignal, 'operator check');
      const paused = await waitFor('paused with no batch in flight', async () => {
        const p = await handle.query(progressQuery);
        return p.paused ? p : undefined;
      });
      expect(paused.pauseReason).toBe('operator check');
      // Let in-flight work settle, then nothing may move while paused.
      await new Promise((r) => setTimeout(r, 1_500));
      const before = {
        progress: await handle.query(progressQuery),
        requests: stack.simulator.stats().requests,
        deliveries: stack.receiver.deliveries().length,
      };
      await new Promise((r) => setTimeout(r, 2_000));
      const after = {
        progress: await handle.query(progressQuery),
        requests: stack.simulator.stats().requests,
        deliveries: stack.receiver.deliveries().length,
      };
      expect(after.requests).toBe(before.requests);
      expect(after.deliveries).toBe(before.deliveries);
      expect(after.progress.processed).toBe(before.progress.processed);
      expect(after.progress.processed).toBeLessThan(examples.expected.counts.rows);

      // A lookup cut short by the stop used up some of its member's fault counters; give them back so
      // the known answer (a member failing exactly CHANNEL_MAX_ATTEMPTS times) still holds.
      stack.simulator.setFaults(examples.faults.channel);
      await handle.signal(resumeSignal);
      const result = (await handle.result()) as BackfillResult;
      const c = examples.expected.counts;
      expect(result).toMatchObject({
        processed: c.rows,
        upserts: c.upserts,
        deletes: c.deletes,
        unchanged: c.unchanged,
        failed: c.failed,
        skipped: c.skipped,
      });
      expect(stack.receiver.accepted()).toHaveLength(c.upserts + c.deletes);
    });
  });

  it('continues as new with small batches and a low threshold, carrying cursor and counters', async () => {
    await withStack({}, async (stack) => {
      const handle = await start(stack, 'backfill-can', { batchSize: 5, maxHistoryEvents: 200, parallelBatches: 2 });
      const result = (await handle.result()) as BackfillResult;
      const c = examples.expected.counts;
      expect(result.runs).toBeGreaterThanOrEqual(2);
      expect(result).toMatchObject({
        processed: c.rows,
        upserts: c.upserts,
        deletes: c.deletes,
        unchanged: c.unchanged,
        failed: c.failed,
        skipped: c.skipped,
      });
      expect(stack.receiver.accepted()).toHaveLength(c.upserts + c.deletes);
      // Every run of the chain stayed under the threshold plus one batch's worth of events.
      const runs = await waitFor('every run of the chain listed', async () => {
        const lengths: number[] = [];
        for await (const wf of stack.client.workflow.list({ query: `WorkflowId = 'backfill-can'` }))
          lengths.push(wf.historyLength);
        return lengths.length === result.runs ? lengths : undefined;
      });
      for (const length of runs) expect(length).toBeLessThan(400);
    });
  });

  it('bad workflow input fails the run before any lookup, naming the field', async () => {
    await withStack({}, async (stack) => {
      const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId: 'backfill-bad-input',
        args: [{ source: { type: 'xml', path: EXAMPLE_CSV }, batchSize: -1 }],
      });
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const message = String((err as WorkflowFailedError).cause?.message);
      expect(message).toContain('source.type');
      expect(message).toContain('batchSize');
      expect(stack.simulator.stats().requests).toBe(0);
    });
  });
});

export type { Progress };
