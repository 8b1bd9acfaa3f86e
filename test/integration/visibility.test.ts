import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultPayloadConverter } from '@temporalio/common';
import { effectiveBatchSize } from '../../activities/prepare';
import type { DevServer } from '../../dev/temporal-cli';
import {
  pauseSignal,
  progressQuery,
  resumeSignal,
  WORKFLOW_TYPE,
  type BackfillResult,
} from '../../workflows/definitions';
import { EXAMPLE_CSV, loadExamples, type Examples } from '../support/examples';
import { startStack, startTestServer, waitFor, type Stack } from '../support/stack';

// What the Web UI shows of a run: memo, live "current details", search attributes, activity summaries.
let server: DevServer;
let examples: Examples;
let stack: Stack;

beforeAll(async () => {
  [server, examples] = await Promise.all([startTestServer(), loadExamples()]);
  stack = await startStack({ server, users: examples.users, env: { CHANNEL_RATE_LIMIT: '60' } });
});
afterAll(async () => {
  await stack?.close();
  await server?.stop();
});

async function listIds(query: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of stack.client.workflow.list({ query })) ids.push(wf.workflowId);
  return ids;
}

describe('the run as the Web UI shows it', () => {
  it('keeps current details, search attributes, memo and activity summaries up to date', async () => {
    const workflowId = 'visibility-run';
    const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
      taskQueue: stack.config.BACKFILL_TASK_QUEUE,
      workflowId,
      args: [{ source: { type: 'csv', path: EXAMPLE_CSV }, batchSize: 20, runLabel: 'nov-outage' }],
    });
    await waitFor('progress', async () => ((await handle.query(progressQuery)).processed >= 40 ? true : undefined));
    await handle.signal(pauseSignal, 'checking the receiver');

    const paused = await waitFor('listed as paused', async () => {
      const ids = await listIds(`BackfillStatus = "paused" AND WorkflowId = "${workflowId}"`);
      return ids.length === 1 ? ids : undefined;
    });
    expect(paused).toEqual([workflowId]);
    const meta = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
    expect(meta.currentDetails).toContain('**paused**: checking the receiver');
    expect(meta.currentDetails).toMatch(/processed \*\*\d+ \/ 300\*\*/);
    expect(meta.currentDetails).toMatch(/members\/s, ETA/);

    await handle.signal(resumeSignal);
    const result = (await handle.result()) as BackfillResult;
    const done = await waitFor('listed as done with its counts', async () => {
      const ids = await listIds(
        `BackfillStatus = "done" AND BackfillProcessed = ${result.processed} AND BackfillFailed = ${result.failed}`,
      );
      return ids.includes(workflowId) ? ids : undefined;
    });
    expect(done).toContain(workflowId);
    const finalMeta = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
    expect(finalMeta.currentDetails).toContain('**done**');
    expect(finalMeta.currentDetails).toContain(`processed **300 / 300** (100%)`);

    const description = await handle.describe();
    expect(description.memo).toMatchObject({
      source: `csv: ${EXAMPLE_CSV}`,
      dryRun: false,
      runLabel: 'nov-outage',
      rows: 300,
    });

    const history = await handle.fetchHistory();
    const summaries = (history.events ?? [])
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) =>
        e.userMetadata?.summary ? defaultPayloadConverter.fromPayload<string>(e.userMetadata.summary) : undefined,
      );
    expect(summaries).toContain('read and check the member source');
    // The batch size is derived from the source, batchSize and the rate budget (activities/prepare.ts): 300 rows are
    // more than one round of 4 x 20, so the preparation reads only that far and does not even the batches out
    // (issue 26): 15 batches of 20. Every one is named in the history: "batch N of 15", or, launched while the rest
    // of the source was still being read, "batch N (the source is still being read)" (at least the first).
    const batchNames = summaries.filter((s): s is string => typeof s === 'string' && /^batch \d+ /.test(s));
    const total = Number(/^batch \d+ of (\d+)/.exec(batchNames.find((s) => / of \d+/.test(s)) ?? '')?.[1]);
    expect(total).toBe(Math.ceil(300 / effectiveBatchSize(undefined, 20, 4, 60)));
    expect(batchNames).toContain('batch 1 (the source is still being read)');
    for (let b = 1; b <= total; b++)
      expect(
        batchNames.some((s) => s === `batch ${b} of ${total}` || s === `batch ${b} (the source is still being read)`),
        `batch ${b}`,
      ).toBe(true);
    expect(summaries.every((s) => typeof s === 'string' && s.length > 0)).toBe(true);
  });
});
