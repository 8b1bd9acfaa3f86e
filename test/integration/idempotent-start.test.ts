import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import { findTemporalCli, type DevServer } from '../../dev/temporal-cli';
import type { ChannelUser } from '../../src/domain/types';
import { webhookId, WEBHOOK_ID_PATTERN } from '../../src/webhook/webhook-id';
import type { Delivery } from '../../dev/simulator/webhook-receiver';
import {
  pauseSignal,
  progressQuery,
  resumeSignal,
  WORKFLOW_TYPE,
  type BackfillInput,
  type BackfillResult,
} from '../../workflows/definitions';
import { startStack, startTestServer, waitFor, type Stack } from '../support/stack';

// Issue 3, item 8: idempotent starts.
//  - Starting a workflow id that is running never makes a second run. The SDK client fails with
//    WorkflowExecutionAlreadyStartedError (conflict policy Fail, the default). The CLI's
//    `temporal workflow start` prints the running execution and exits 0 unless given --fail-existing,
//    which makes it exit non-zero (see docs/guarantees-starts.md).
//  - Re-running a completed backfill under the same runLabel (a new workflow id, or the same id once
//    the first run has closed) replays with the same webhook-ids, so a receiver that deduplicates on
//    `webhook-id` sees nothing new. A different runLabel gives different ids (the contrast).

const execFileAsync = promisify(execFile);
const HEADER = 'memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting';
/** The lookup of this member takes this long, so the first run cannot finish before it is paused. */
const SLOW_MS = 6_000;

interface Member {
  id: string;
  kind: 'upsert' | 'delete' | 'unchanged';
}

function membersOf(prefix: string): Member[] {
  return [
    ...[1, 2, 3, 4, 5].map((n) => ({ id: `${prefix}-up-${n}`, kind: 'upsert' as const })),
    ...[1, 2, 3].map((n) => ({ id: `${prefix}-gone-${n}`, kind: 'delete' as const })),
    ...[1, 2, 3, 4].map((n) => ({ id: `${prefix}-same-${n}`, kind: 'unchanged' as const })),
  ];
}

/** Channel Talk's side: upserts have a newer e-mail, deletes are absent (404), unchanged match. */
function channelUsers(members: Member[]): ChannelUser[] {
  return members
    .filter((m) => m.kind !== 'delete')
    .map((m) => ({
      id: `u-${m.id}`,
      memberId: m.id,
      type: 'member',
      email: `${m.id}@example.com`,
      mobileNumber: null,
      unsubscribeEmail: false,
      unsubscribeTexting: false,
    }));
}

function sourceCsv(members: Member[]): string {
  const rows = members.map(
    (m) => `${m.id},,${m.kind === 'upsert' ? `old-${m.id}@example.org` : `${m.id}@example.com`},false,false`,
  );
  return `${[HEADER, ...rows].join('\n')}\n`;
}

const RUNNING = membersOf('run');
const SLOW_ID = 'run-slow';
const RERUN = membersOf('rr');
const due = (members: Member[]) => members.filter((m) => m.kind !== 'unchanged');

let server: DevServer;
let stack: Stack;
let dir: string;
let runningCsv: string;
let rerunCsv: string;
let cli: string;

beforeAll(async () => {
  server = await startTestServer();
  cli = findTemporalCli()!.path;
  stack = await startStack({
    server,
    users: [
      ...channelUsers(RUNNING),
      ...channelUsers(RERUN),
      { id: 'u-slow', memberId: SLOW_ID, type: 'member', email: `${SLOW_ID}@example.com` },
    ],
    channelFaults: { [SLOW_ID]: { delayMs: SLOW_MS } },
  });
  dir = await mkdtemp(path.join(os.tmpdir(), 'idempotent-start-'));
  runningCsv = path.join(dir, 'running.csv');
  // The slow member first, in the first batch, so every batch is still open when the pause lands.
  await writeFile(runningCsv, sourceCsv([{ id: SLOW_ID, kind: 'unchanged' }, ...RUNNING]));
  rerunCsv = path.join(dir, 'rerun.csv');
  await writeFile(rerunCsv, sourceCsv(RERUN));
});

afterAll(async () => {
  await stack?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function start(
  workflowId: string,
  input: Partial<BackfillInput> & { source: BackfillInput['source'] },
  extra: { workflowIdConflictPolicy?: 'FAIL' | 'USE_EXISTING' } = {},
) {
  return stack.client.workflow.start(WORKFLOW_TYPE, {
    taskQueue: stack.config.BACKFILL_TASK_QUEUE,
    workflowId,
    args: [input],
    ...extra,
  });
}

async function runsOf(workflowId: string): Promise<{ runId: string; status: string }[]> {
  const runs: { runId: string; status: string }[] = [];
  for await (const wf of stack.client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
    runs.push({ runId: wf.runId, status: wf.status.name });
  return runs;
}

/** `temporal workflow start` against the test server; never throws, returns the exit code and output. */
async function cliStart(
  workflowId: string,
  input: unknown,
  flags: string[] = [],
): Promise<{ code: number; output: string }> {
  const args = [
    'workflow',
    'start',
    '--address',
    server.address,
    '--namespace',
    'default',
    '--task-queue',
    stack.config.BACKFILL_TASK_QUEUE,
  ];
  args.push('--type', WORKFLOW_TYPE, '--workflow-id', workflowId, '--input', JSON.stringify(input), ...flags);
  try {
    const { stdout, stderr } = await execFileAsync(cli, args, { timeout: 30_000 });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** The RunId the CLI printed ("Running execution: ... RunId <id>"). */
const cliRunId = (output: string) => /RunId\s+(\S+)/.exec(output)?.[1];

/** Runs a backfill to completion and returns the deliveries that reached the receiver meanwhile. */
async function runToEnd(handle: WorkflowHandle): Promise<{ result: BackfillResult; deliveries: Delivery[] }> {
  const from = stack.receiver.deliveries().length;
  const result = (await handle.result()) as BackfillResult;
  return { result, deliveries: stack.receiver.deliveries().slice(from) };
}

/**
 * memberId -> "event webhook-id" of the accepted deliveries. A member delivered again (at-least-once:
 * e.g. a replay interrupted by the pause after the receiver took it) must repeat the same id.
 */
function idsByMember(deliveries: Delivery[]): Map<string, string> {
  const ids = new Map<string, string>();
  for (const d of deliveries.filter((x) => x.status === 200)) {
    const id = `${d.event} ${d.webhookId}`;
    expect(ids.get(d.memberId!) ?? id, `${d.memberId} delivered under two different ids`).toBe(id);
    ids.set(d.memberId!, id);
  }
  return ids;
}

const expectedIds = (label: string, members: Member[]) =>
  new Map(due(members).map((m) => [m.id, `${m.kind} ${webhookId(label, m.id, m.kind as 'upsert' | 'delete')}`]));

describe('idempotent starts on a real Temporal dev server', () => {
  it('a second start of a running workflow id never makes a second run: the client fails, the CLI returns the running one or, with --fail-existing, fails', async () => {
    const workflowId = 'idem-running';
    const input = { source: { type: 'csv' as const, path: runningCsv }, batchSize: 4 };
    const first = await start(workflowId, input);
    // Hold the run open: the slow first lookup keeps it busy long enough for the pause to land.
    await first.signal(pauseSignal, 'held open by the idempotent-start test');
    await waitFor('the run to be paused', async () => (await first.query(progressQuery)).paused);

    // The SDK client: the default conflict policy (Fail) rejects the start.
    const again = await start(workflowId, { ...input, runLabel: 'another-label' }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
    expect((again as WorkflowExecutionAlreadyStartedError).workflowId).toBe(workflowId);
    expect((again as WorkflowExecutionAlreadyStartedError).workflowType).toBe(WORKFLOW_TYPE);

    // The CLI (v1.5.1), as an operator would type it. Plain `temporal workflow start` does NOT fail:
    // it exits 0 and prints the RUNNING execution's RunId (the new --input is ignored), because the CLI
    // starts through the Go SDK, which hands back the existing run unless told to fail; even
    // `--id-conflict-policy Fail` behaves so. Either way no second run is started.
    for (const flags of [[], ['--id-conflict-policy', 'Fail'], ['--id-conflict-policy', 'UseExisting']]) {
      const byCli = await cliStart(workflowId, { ...input, runLabel: 'another-label' }, flags);
      expect(byCli.code, `${flags.join(' ')}: ${byCli.output}`).toBe(0);
      expect(cliRunId(byCli.output), flags.join(' ')).toBe(first.firstExecutionRunId);
    }
    // `--fail-existing` is what makes the CLI refuse: non-zero exit, naming the running execution.
    const refused = await cliStart(workflowId, input, ['--fail-existing']);
    expect(refused.code, refused.output).not.toBe(0);
    expect(refused.output).toMatch(/already (started|running)/i);
    expect(refused.output).toContain(first.firstExecutionRunId);

    // Asking explicitly for the existing run returns it instead of starting another.
    const existing = await start(workflowId, input, { workflowIdConflictPolicy: 'USE_EXISTING' });
    expect(existing.firstExecutionRunId).toBe(first.firstExecutionRunId);

    // Still exactly one run, the first one, still running (so every attempt above met a running id).
    const description = await first.describe();
    expect(description.status.name).toBe('RUNNING');
    expect(description.runId).toBe(first.firstExecutionRunId);
    const runs = await waitFor('the run to be listed', async () => {
      const listed = await runsOf(workflowId);
      return listed.length > 0 ? listed : undefined;
    });
    expect(runs).toEqual([{ runId: first.firstExecutionRunId, status: 'RUNNING' }]);

    // Resumed, the one run finishes; every due member was delivered, under the first start's label
    // (the ignored second inputs asked for "another-label"), and nothing else was.
    await first.signal(resumeSignal);
    const result = (await first.result()) as BackfillResult;
    expect(result).toMatchObject({
      total: RUNNING.length + 1,
      processed: RUNNING.length + 1,
      upserts: 5,
      deletes: 3,
      unchanged: 5,
      failed: 0,
      skipped: 0,
    });
    const deliveries = stack.receiver.deliveries().filter((d) => d.memberId?.startsWith('run-'));
    expect(idsByMember(deliveries)).toEqual(expectedIds(workflowId, RUNNING));
    expect(deliveries.every((d) => d.webhookId !== null && WEBHOOK_ID_PATTERN.test(d.webhookId))).toBe(true);
    expect(await runsOf(workflowId)).toEqual([{ runId: first.firstExecutionRunId, status: 'COMPLETED' }]);
  });

  it('re-running a completed backfill with the same runLabel replays with the same webhook-ids', async () => {
    const source = { type: 'csv' as const, path: rerunCsv };
    const firstId = 'idem-nov-repair';

    // The first run: runLabel defaults to the workflow id.
    const firstHandle = await start(firstId, { source });
    const first = await runToEnd(firstHandle);
    expect(first.result).toMatchObject({ processed: RERUN.length, upserts: 5, deletes: 3, unchanged: 4, failed: 0 });
    const firstIds = idsByMember(first.deliveries);
    expect(firstIds).toEqual(expectedIds(firstId, RERUN));
    // What a receiver that deduplicates on webhook-id has seen.
    const seen = new Set(first.deliveries.map((d) => d.webhookId));
    const newTo = (deliveries: Delivery[]) => deliveries.filter((d) => !seen.has(d.webhookId));

    // A new workflow id, told to reuse the first run's label.
    const rerun = await runToEnd(await start('idem-nov-repair-again', { source, runLabel: firstId }));
    expect(rerun.result).toMatchObject({ processed: RERUN.length, upserts: 5, deletes: 3 });
    expect(idsByMember(rerun.deliveries)).toEqual(firstIds);
    expect(newTo(rerun.deliveries)).toEqual([]);

    // Reusing a closed id can be forbidden explicitly (client and CLI); nothing runs then.
    const rejected = await stack.client.workflow
      .start(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId: firstId,
        args: [{ source }],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      })
      .catch((e: unknown) => e);
    expect(rejected).toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
    // The CLI again swallows the refusal unless given --fail-existing: it exits 0 and prints the
    // CLOSED run's RunId under "Running execution:". Nothing was started either way.
    const swallowed = await cliStart(firstId, { source }, ['--id-reuse-policy', 'RejectDuplicate']);
    expect(swallowed.code, swallowed.output).toBe(0);
    expect(cliRunId(swallowed.output)).toBe(firstHandle.firstExecutionRunId);
    const refused = await cliStart(firstId, { source }, ['--id-reuse-policy', 'RejectDuplicate', '--fail-existing']);
    expect(refused.code, refused.output).not.toBe(0);
    expect(refused.output).toMatch(/already finished.*reject duplicate/i);
    expect(await runsOf(firstId)).toHaveLength(1);

    // The same workflow id once the first run has closed: Temporal's default reuse policy
    // (AllowDuplicate) starts a new run, and the default label (the workflow id) is the same again.
    const sameIdHandle = await start(firstId, { source });
    const sameId = await runToEnd(sameIdHandle);
    expect(idsByMember(sameId.deliveries)).toEqual(firstIds);
    expect(newTo(sameId.deliveries)).toEqual([]);
    const runs = await waitFor('both runs of the id listed', async () => {
      const listed = await runsOf(firstId);
      return listed.length === 2 ? listed : undefined;
    });
    expect(runs.map((r) => r.status)).toEqual(['COMPLETED', 'COMPLETED']);
    expect(new Set(runs.map((r) => r.runId)).size).toBe(2);
    expect(runs.map((r) => r.runId)).toContain(sameIdHandle.firstExecutionRunId);

    // Contrast: a fresh id without a label names its own webhook-ids, all new to the receiver, so the
    // equality above comes from the label and not from the data.
    const fresh = await runToEnd(await start('idem-nov-repair-fresh', { source }));
    expect(idsByMember(fresh.deliveries)).toEqual(expectedIds('idem-nov-repair-fresh', RERUN));
    expect(newTo(fresh.deliveries)).toHaveLength(due(RERUN).length);

    console.log(
      `idempotent re-runs: ${first.deliveries.length} deliveries in the first run; same-label re-runs delivered ` +
        `${rerun.deliveries.length} + ${sameId.deliveries.length}, of which new to a deduplicating receiver: ` +
        `${newTo(rerun.deliveries).length} + ${newTo(sameId.deliveries).length}; a fresh label: ${newTo(fresh.deliveries).length} new`,
    );
  });
});
