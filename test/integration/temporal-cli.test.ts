import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTemporalCli, type DevServer } from '../../dev/temporal-cli';
import { webhookId } from '../../src/webhook/webhook-id';
import type { WebhookEvent } from '../../src/domain/types';
import type { BackfillResult, ControlAnswer, Progress } from '../../workflows/definitions';
import { EXAMPLE_CSV, loadExamples, type Examples } from '../support/examples';
import { readAudit, startStack, startTestServer, waitFor, type Stack } from '../support/stack';

// The README's Temporal CLI lines, run as written (plus --address for this test's server).
const run = promisify(execFile);
let server: DevServer;
let examples: Examples;
let stack: Stack;
let cli: string;

beforeAll(async () => {
  [server, examples] = await Promise.all([startTestServer(), loadExamples()]);
  cli = findTemporalCli()!.path;
  stack = await startStack({
    server,
    users: examples.users,
    channelFaults: examples.faults.channel,
    receiverBehaviours: examples.faults.receiver,
    taskQueue: 'webhook-backfill',
    env: { CHANNEL_RATE_LIMIT: '60' },
  });
});
afterAll(async () => {
  await stack?.close();
  await server?.stop();
});

async function temporal(...args: string[]): Promise<string> {
  const { stdout } = await run(cli, [...args, '--address', server.address], { timeout: 30_000 });
  return stdout;
}

async function queryProgress(): Promise<Progress> {
  const out = await temporal(
    'workflow',
    'query',
    '--workflow-id',
    'backfill-2024-11',
    '--name',
    'progress',
    '-o',
    'json',
  );
  const parsed = JSON.parse(out) as { queryResult: Progress[] };
  return parsed.queryResult[0]!;
}

describe('driven from the Temporal CLI as the README shows', () => {
  it('start, pause, query, resume: the run makes exactly the right deliveries', async () => {
    const input = JSON.stringify({ source: { type: 'csv', path: EXAMPLE_CSV } });
    await temporal(
      'workflow',
      'start',
      '--type',
      'backfillWebhooks',
      '--task-queue',
      'webhook-backfill',
      '--workflow-id',
      'backfill-2024-11',
      '--input',
      input,
    );

    // Pause early in the run, while most lookups are still to come (at 60/s, about 0.3 s in). `processed` counts
    // finished batches only, so waiting for it would pause near the end, when nothing may be left to pause.
    await waitFor('lookups', async () => (stack.simulator.stats().requests >= 20 ? true : undefined));
    await temporal('workflow', 'signal', '--workflow-id', 'backfill-2024-11', '--name', 'pause');
    const paused = await waitFor('paused', async () => {
      const p = await queryProgress();
      return p.paused ? p : undefined;
    });
    expect(paused.processed).toBeLessThan(examples.expected.counts.rows);
    await new Promise((r) => setTimeout(r, 1_500));
    const requests = stack.simulator.stats().requests;
    await new Promise((r) => setTimeout(r, 1_500));
    expect(stack.simulator.stats().requests).toBe(requests);

    // A lookup cut short by the stop used up some of its member's fault counters; give them back so
    // the known answer (a member failing exactly CHANNEL_MAX_ATTEMPTS times) still holds.
    stack.simulator.setFaults(examples.faults.channel);
    // Resumed as the README's update line does it: the answer says it resumed.
    const answer = await temporal(
      'workflow',
      'update',
      'execute',
      '--workflow-id',
      'backfill-2024-11',
      '--name',
      'resume',
      '-o',
      'json',
    );
    expect((JSON.parse(answer) as { result: ControlAnswer }).result).toEqual({
      outcome: 'resumed',
      paused: false,
      pauseReason: null,
      deleteGuard: expect.objectContaining({ status: expect.any(String) }) as unknown,
    });
    const out = await temporal('workflow', 'result', '--workflow-id', 'backfill-2024-11', '-o', 'json');
    const result = (JSON.parse(out) as { result: BackfillResult }).result;
    const c = examples.expected.counts;
    expect(result).toMatchObject({
      processed: c.rows,
      upserts: c.upserts,
      deletes: c.deletes,
      unchanged: c.unchanged,
      failed: c.failed,
      skipped: c.skipped,
    });

    const due = examples.expected.outcomes.filter((o) => o.outcome === 'upsert' || o.outcome === 'delete');
    const accepted = stack.receiver.accepted();
    expect(accepted).toHaveLength(due.length);
    const ids = new Set(accepted.map((d) => d.webhookId));
    for (const o of due)
      expect(ids.has(webhookId('backfill-2024-11', o.memberId, o.outcome as WebhookEvent)), o.memberId).toBe(true);
    expect((await readAudit(result.auditPath)).length).toBe(c.rows);
  });
});
