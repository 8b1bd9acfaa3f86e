import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type DevServer } from '../../dev/temporal-cli';
import { WORKFLOW_TYPE, type BackfillResult } from '../../workflows/definitions';
import { CustomerRows, customerWrites } from '../../dev/customer-database';
import { VERDICTS } from '../../src/domain/verdicts';
import { OUTCOMES } from '../../src/domain/types';
import { EXAMPLE_CSV, loadExamples, type Examples } from '../support/examples';
import { readAudit, startStack, startTestServer, type Stack } from '../support/stack';
import { workerProcess, type WorkerProcess } from '../support/worker-process';

// The worker as deployed: JSON logs with run, batch and memberId, and Prometheus metrics with the job's
// own counters next to the SDK's.
let server: DevServer;
let examples: Examples;
let stack: Stack;
let worker: WorkerProcess;
let logDir: string;
let metricsUrl: string;

beforeAll(async () => {
  [server, examples] = await Promise.all([startTestServer(), loadExamples()]);
  stack = await startStack({
    server,
    users: examples.users,
    channelFaults: examples.faults.channel,
    receiverBehaviours: examples.faults.receiver,
    worker: false,
    simulatorRateLimit: 100,
  });
  logDir = await mkdtemp(path.join(os.tmpdir(), 'observability-'));
  const port = await freePort();
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
  worker = workerProcess({
    env: { ...stack.env, BACKFILL_METRICS_ADDRESS: `127.0.0.1:${port}`, LOG_FORMAT: 'json', LOG_LEVEL: 'DEBUG' },
    logFile: path.join(logDir, 'worker.log'),
  });
  await worker.start();
});
afterAll(async () => {
  await worker?.stop();
  await stack?.close();
  await server?.stop();
  if (logDir) await rm(logDir, { recursive: true, force: true });
});

function metric(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    // A counter without labels is exported as `name value`, with labels as `name{k="v",...} value`.
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(' ').pop());
  }
  return sum;
}

describe('observability', () => {
  it('exports job counters to Prometheus and writes JSON logs without personal data', async () => {
    const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
      taskQueue: stack.config.BACKFILL_TASK_QUEUE,
      workflowId: 'observability-run',
      args: [{ source: { type: 'csv', path: EXAMPLE_CSV }, batchSize: 50 }],
    });
    const result = (await handle.result()) as BackfillResult;

    const text = await (await fetch(metricsUrl)).text();
    expect(metric(text, 'backfill_outcomes_total', { outcome: 'upsert' })).toBe(result.upserts);
    expect(metric(text, 'backfill_outcomes_total', { outcome: 'delete' })).toBe(result.deletes);
    expect(metric(text, 'backfill_outcomes_total', { outcome: 'unchanged' })).toBe(result.unchanged);
    expect(metric(text, 'backfill_outcomes_total', { outcome: 'failed' })).toBe(result.failed);
    expect(metric(text, 'backfill_outcomes_total', { outcome: 'skipped' })).toBe(result.skipped);
    expect(metric(text, 'backfill_deliveries_total', { result: 'delivered' })).toBe(result.upserts + result.deletes);
    expect(metric(text, 'backfill_deliveries_total', { result: 'rejected' })).toBeGreaterThan(0);
    expect(metric(text, 'backfill_api_rate_limited_total', {})).toBe(stack.simulator.stats().rateLimited);
    expect(text).toMatch(/temporal_activity_execution_latency|temporal_request/); // the SDK's own metrics

    const lines = (await worker.log()).split('\n').filter((l) => l.startsWith('{'));
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.length).toBeGreaterThan(10);
    const batchDone = records.filter((r) => r.message === 'batch done');
    expect(batchDone.length).toBe(6);
    expect(batchDone.every((r) => r.workflowId === 'observability-run' && typeof r.batch === 'number')).toBe(true);
    const memberLines = records.filter((r) => r.message === 'member recorded');
    expect(memberLines.length).toBeGreaterThan(200);
    expect(
      memberLines.every(
        (r) => typeof r.memberId === 'string' && typeof r.line === 'number' && r.workflowId === 'observability-run',
      ),
    ).toBe(true);
    const log = lines.join('\n');
    expect(log).not.toMatch(/@example\.(com|org|net)/i);
    expect(log).not.toContain(stack.env.CHANNEL_ACCESS_SECRET);
    expect(log).not.toContain(stack.env.WEBHOOK_TOKEN);
  });

  it("counts a verify run's members by verdict, and none of them as a repair's outcome", async () => {
    const run = async (workflowId: string, input: Record<string, unknown>) =>
      (await stack.client.workflow.execute(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId,
        args: [{ source: { type: 'csv', path: EXAMPLE_CSV }, batchSize: 50, ...input }],
      })) as BackfillResult;
    const repair = await run('observability-repair', {});
    // The customer's logic drops two accepted deletes: their verdict is "still present", stored as a delete.
    const deletes = (await readAudit(repair.auditPath)).filter((e) => e.delivered && e.outcome === 'delete');
    expect(deletes.length).toBeGreaterThan(2);
    const db = await CustomerRows.fromCsv(EXAMPLE_CSV);
    const drops = { members: new Set(deletes.slice(0, 2).map((e) => e.memberId!)) };
    db.apply(customerWrites(stack.receiver.accepted(), drops));
    const exported = path.join(stack.dataDir, 'observability-export.csv');
    await db.exportCsv(exported);

    const before = await (await fetch(metricsUrl)).text();
    const verify = await run('observability-verify', {
      source: { type: 'csv', path: exported },
      verifyAfter: { auditPath: repair.auditPath },
    });
    const after = await (await fetch(metricsUrl)).text();
    const added = (name: string, labels: Record<string, string>) =>
      metric(after, name, labels) - metric(before, name, labels);

    expect(verify.verify!['still present']).toBe(2);
    for (const verdict of VERDICTS)
      expect(added('backfill_verdicts_total', { verdict }), verdict).toBe(verify.verify![verdict]);
    expect(added('backfill_verdicts_total', {})).toBe(verify.processed);
    // Nothing of the verify run among the outcomes, the deliveries or their labels.
    for (const outcome of OUTCOMES) expect(added('backfill_outcomes_total', { outcome }), outcome).toBe(0);
    expect(added('backfill_deliveries_total', {})).toBe(0);
    expect(after).not.toContain('still holds a member');
  });
});
