import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { loadConfig } from '../../src/config';
import { findTemporalCli, type DevServer } from '../../dev/temporal-cli';
import type { ChannelUser } from '../../src/domain/types';
import { DEFAULT_OUTAGE, summarize } from '../../src/report/summary';
import { createBackfillWorker } from '../../src/worker-setup';
import {
  WORKFLOW_TYPE,
  progressQuery,
  resumeSignal,
  type BackfillResult,
  type ControlAnswer,
  type Progress,
} from '../../workflows/definitions';
import {
  readAudit,
  readAuditHeader,
  startStack,
  startTestServer,
  waitFor,
  workflowBundle,
  type Stack,
} from '../support/stack';
import { runProcess } from '../support/child-process';

const BIN = path.resolve(__dirname, '../../bin/webhook-backfill.js');

// Issue 9, items 1 to 5, through the real workflow on a real dev server against the simulator over
// loopback: the channel check and path confinement stop a run before any lookup; onlyChangedSince skips what
// predates the outage, and a dry run counts exactly what the real run does.

const HEADER = 'memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting';
const OUTAGE_START = '2024-11-01T00:40:00+09:00';
const START_MS = Date.parse(OUTAGE_START);
const DAY = 86_400_000;

let server: DevServer;
let stack: Stack;
let outside: string;

function user(memberId: string, over: Partial<ChannelUser> = {}): ChannelUser {
  return {
    id: `u-${memberId}`,
    memberId,
    type: 'member',
    email: `${memberId}@example.com`,
    mobileNumber: null,
    unsubscribeEmail: false,
    unsubscribeTexting: false,
    ...over,
  };
}

// Each member differs from the stored row (the stored e-mail is old, or a consent flag), changed at a known time.
const USERS: ChannelUser[] = [
  user('before-email', { updatedAt: START_MS - 30 * DAY }),
  user('inside-email', { updatedAt: START_MS + 2 * DAY }),
  user('after-email', { updatedAt: START_MS + 40 * DAY }),
  user('before-consent', {
    unsubscribeEmail: true,
    updatedAt: START_MS + 3 * DAY,
    unsubscribeEmailUpdatedAt: START_MS - DAY,
  }),
  user('inside-consent', {
    unsubscribeTexting: true,
    updatedAt: START_MS - DAY,
    unsubscribeTextingUpdatedAt: START_MS + DAY,
  }),
  user('no-time-email'),
  user('unchanged', { updatedAt: START_MS - DAY }),
];
const ROWS = [
  'before-email,,old-before@example.org,false,false',
  'inside-email,,old-inside@example.org,false,false',
  'after-email,,old-after@example.org,false,false',
  'before-consent,,before-consent@example.com,false,false',
  'inside-consent,,inside-consent@example.com,false,false',
  'no-time-email,,old-notime@example.org,false,false',
  'unchanged,,unchanged@example.com,false,false',
  'gone,,gone@example.com,false,false', // not on Channel Talk: a delete, whatever onlyChangedSince says
];

beforeAll(async () => {
  server = await startTestServer();
  stack = await startStack({ server, users: USERS });
  outside = await mkdtemp(path.join(os.tmpdir(), 'backfill-outside-'));
  await writeFile(path.join(outside, 'members.csv'), [HEADER, ...ROWS].join('\n') + '\n');
}, 120_000);
afterAll(async () => {
  await stack?.close();
  await server?.stop();
  if (outside) await rm(outside, { recursive: true, force: true });
});

const source = () => ({ type: 'csv', path: path.join(outside, 'members.csv') });

async function run(
  workflowId: string,
  input: Record<string, unknown>,
  taskQueue = stack.config.BACKFILL_TASK_QUEUE,
): Promise<BackfillResult> {
  const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
    taskQueue,
    workflowId,
    args: [{ source: source(), ...input }],
  });
  return (await handle.result()) as BackfillResult;
}

async function failure(workflowId: string, input: Record<string, unknown>, taskQueue?: string): Promise<string> {
  const err = await run(workflowId, input, taskQueue).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return (err as WorkflowFailedError).cause?.message ?? '';
}

const lookups = () => stack.simulator.stats().byMember.size;

// Workers of their own, with configuration the stack's worker does not have.
async function withWorker<T>(env: Record<string, string>, body: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = `safety-${Math.random().toString(36).slice(2)}`;
  const worker = await createBackfillWorker(loadConfig({ ...stack.env, ...env, BACKFILL_TASK_QUEUE: taskQueue }), {
    workflowBundle: await workflowBundle(),
  });
  void worker.run();
  try {
    return await body(taskQueue);
  } finally {
    await worker.close();
  }
}

describe('the channel check stops a run before any lookup', () => {
  it('expectChannelId names another channel: both ids in one line, no lookup', async () => {
    const before = lookups();
    const message = await failure('safety-wrong-channel', { expectChannelId: 'ch-expected-42', dryRun: true });
    expect(message).toBe(
      'wrong channel: the worker\'s credentials open channel "Simulated channel" (id 1), but expectChannelId is ch-expected-42',
    );
    expect(lookups()).toBe(before);
  });

  it('the right expectChannelId runs, and the channel is in the run (prepare result) and its audit header', async () => {
    const result = await run('safety-right-channel', { expectChannelId: '1', dryRun: true });
    expect(result.total).toBe(ROWS.length);
    // A dry run's log starts with the header too; the records follow it.
    expect(await readAuditHeader(result.auditPath)).toMatchObject({
      backfill: 'safety-right-channel',
      channel: { id: '1', name: 'Simulated channel' },
      dryRun: true,
    });
    expect(await readAudit(result.auditPath)).toHaveLength(ROWS.length);
  });

  it('credentials refused by GET /open/v5/channel: names the variables, never their values', async () => {
    const before = stack.simulator.stats();
    const message = await withWorker({ CHANNEL_ACCESS_SECRET: 'a-wrong-secret-value' }, (q) =>
      failure('safety-bad-credentials', { dryRun: true }, q),
    );
    expect(message).toBe(
      "Channel Talk refused the worker's credentials (CHANNEL_ACCESS_KEY / CHANNEL_ACCESS_SECRET): GET /open/v5/channel answered 401",
    );
    expect(message).not.toContain('a-wrong-secret-value');
    const after = stack.simulator.stats();
    expect(after.byMember.size).toBe(before.byMember.size);
    // The worker's start-up line asks too; the run's preparation asked at least once.
    expect(after.channelInfo - before.channelInfo).toBeGreaterThanOrEqual(1);
    expect(after.requests).toBe(before.requests);
  }, 60_000);

  it('a base URL with a wrong path: says CHANNEL_API_URL looks wrong', async () => {
    const before = lookups();
    const message = await withWorker({ CHANNEL_API_URL: `${stack.simulator.url}/api/v1` }, (q) =>
      failure('safety-wrong-path', { dryRun: true }, q),
    );
    expect(message).toBe('CHANNEL_API_URL looks wrong: GET /open/v5/channel answered 404');
    expect(lookups()).toBe(before);
  }, 60_000);

  it('a file source outside BACKFILL_SOURCE_DIRS is refused before any request', async () => {
    const before = stack.simulator.stats().requests;
    const allowed = path.join(stack.dataDir, 'sources');
    const message = await withWorker({ BACKFILL_SOURCE_DIRS: `${allowed},/srv/none` }, (q) =>
      failure('safety-source-outside', { dryRun: true }, q),
    );
    expect(message).toBe(
      `invalid workflow input: source.path ${JSON.stringify(source().path)} is not under the worker's BACKFILL_SOURCE_DIRS (${allowed}, /srv/none)`,
    );
    expect(stack.simulator.stats().requests).toBe(before);
  }, 60_000);
});

describe('auditPath must lie under BACKFILL_DATA_DIR', () => {
  it.each([
    // The ../ climbs out of the data dir with a string no prefix check would catch: `<dataDir>/../<outside>`.
    ['an absolute path elsewhere', 'auditPath', () => ({ auditPath: '/etc/x.jsonl' }), () => '/etc/x.jsonl'],
    [
      'a ../ escape',
      'auditPath',
      () => ({ auditPath: `${stack.dataDir}/../${path.basename(outside)}/escape.jsonl` }),
      () => path.join(outside, 'escape.jsonl'),
    ],
    [
      'a symlink out of the data dir',
      'auditPath',
      () => ({ auditPath: path.join(stack.dataDir, 'link', 'via-link.jsonl') }),
      () => path.join(outside, 'via-link.jsonl'),
    ],
    [
      'only.auditPath elsewhere',
      'only.auditPath',
      () => ({ only: { auditPath: path.join(outside, 'old.jsonl'), outcomes: ['failed'] } }),
      () => path.join(outside, 'old.jsonl'),
    ],
    [
      'fromPlan.auditPath through the symlink',
      'fromPlan.auditPath',
      () => ({ fromPlan: { auditPath: path.join(stack.dataDir, 'link', 'plan.jsonl') } }),
      () => path.join(outside, 'plan.jsonl'),
    ],
  ])('%s is refused, nothing written', async (_name, key, input, realTarget) => {
    if (!existsSync(path.join(stack.dataDir, 'link'))) await symlink(outside, path.join(stack.dataDir, 'link'));
    const entriesBefore = await readdir(stack.dataDir);
    const before = stack.simulator.stats().requests;
    const given = input();
    const message = await failure(`safety-audit-${key}-${Math.random().toString(36).slice(2)}`, {
      dryRun: true,
      ...given,
    });
    expect(message).toMatch(
      new RegExp(
        `^invalid workflow input: ${key.replace('.', '\\.')} ".*" is not under the worker's BACKFILL_DATA_DIR`,
      ),
    );
    expect(existsSync(realTarget())).toBe(false);
    expect(await readdir(stack.dataDir)).toEqual(entriesBefore); // no backfill directory either
    expect(stack.simulator.stats().requests).toBe(before);
  });
});

describe('a hand-made "carried" (the continue-as-new state) is refused', () => {
  // Issue 22: a client-made `carried` skipped the preparation, and a completed run's cleanup removed whatever
  // directory it named. Its paths point outside the worker's storage: a directory with a canary file in it, an
  // audit log beside it; zero batches, so the run would have gone straight to the cleanup.
  const handMade = (dir: string) => ({
    prepared: {
      options: {
        source: source(),
        dryRun: false,
        batchSize: 50,
        runLabel: 'x',
        parallelBatches: 1,
        rateLimit: null,
        maxHistoryEvents: 10_000,
        replayMaxAttempts: 3,
        batchHeartbeatSeconds: 20,
        target: { type: 'url' },
        only: null,
        fromPlan: null,
      },
      paths: {
        dir,
        workFile: path.join(dir, 'members.jsonl'),
        auditPath: path.join(dir, 'audit.jsonl'),
        pendingDir: dir,
      },
      rows: 0,
      batches: 0,
    },
    nextBatch: 0,
    redo: [],
    batchesDone: 0,
    counters: { processed: 0, upserts: 0, deletes: 0, unchanged: 0, failed: 0, skipped: 0 },
    deferred: [],
    paused: false,
    pauseReason: null,
    runs: 1,
  });

  it.each([
    ['a directory outside the storage', () => path.join(outside, 'victim')],
    ['a ../ climb out of the data dir', () => `${stack.dataDir}/../${path.basename(outside)}/victim-dots`],
    ['a symlink out of the data dir', () => path.join(stack.dataDir, 'link', 'victim-link')],
  ])('%s survives: the run fails naming the key, nothing is created or removed', async (_name, victim) => {
    if (!existsSync(path.join(stack.dataDir, 'link'))) await symlink(outside, path.join(stack.dataDir, 'link'));
    const dir = victim();
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'canary.txt'), 'still here');
    const entriesBefore = await readdir(stack.dataDir);
    const outsideBefore = await readdir(outside);
    const before = stack.simulator.stats().requests;
    const message = await failure(`safety-carried-${Math.random().toString(36).slice(2)}`, { carried: handMade(dir) });
    expect(message).toMatch(/^invalid workflow input: "carried" is the workflow's own continue-as-new state/);
    expect(await readFile(path.join(dir, 'canary.txt'), 'utf8')).toBe('still here');
    expect(await readdir(dir)).toEqual(['canary.txt']); // no audit log, no work file
    expect(await readdir(outside)).toEqual(outsideBefore);
    expect(await readdir(stack.dataDir)).toEqual(entriesBefore);
    expect(stack.simulator.stats().requests).toBe(before);
  });
});

describe('onlyChangedSince', () => {
  const counts = (r: BackfillResult) => ({
    upserts: r.upserts,
    deletes: r.deletes,
    unchanged: r.unchanged,
    skipped: r.skipped,
    failed: r.failed,
  });

  it('skips differences that predate it; the dry run counts what the real run does', async () => {
    const dry = await run('safety-since-dry', { dryRun: true, onlyChangedSince: OUTAGE_START });
    const real = await run('safety-since-real', { onlyChangedSince: OUTAGE_START });
    // before-email and before-consent skipped; inside/after/no-time replayed; gone deleted.
    expect(counts(real)).toEqual({ upserts: 4, deletes: 1, unchanged: 1, skipped: 2, failed: 0 });
    expect(counts(dry)).toEqual(counts(real));

    const audit = await readAudit(real.auditPath);
    const byMember = new Map(audit.map((e) => [e.memberId, e]));
    for (const id of ['before-email', 'before-consent']) {
      expect(byMember.get(id), id).toMatchObject({
        outcome: 'skipped',
        reason: `differs since before ${OUTAGE_START}: not hidden by the outage`,
      });
    }
    for (const id of ['inside-email', 'after-email', 'inside-consent', 'no-time-email'])
      expect(byMember.get(id)?.outcome, id).toBe('upsert');
    expect(byMember.get('gone')?.outcome).toBe('delete');
    const delivered = new Set(stack.receiver.deliveries().map((d) => d.memberId));
    expect(delivered.has('before-email')).toBe(false);
    expect(delivered.has('inside-email')).toBe(true);
  }, 90_000);

  it('without it every difference is replayed', async () => {
    const result = await run('safety-since-off', { dryRun: true });
    expect(counts(result)).toEqual({ upserts: 6, deletes: 1, unchanged: 1, skipped: 0, failed: 0 });
    // The report of that dry run says how many the option would skip: as many as the run with it skipped.
    const summary = summarize(await readAudit(result.auditPath), DEFAULT_OUTAGE, { onlyChangedSince: START_MS });
    expect(summary.onlyChangedSince.wouldSkip).toBe(2);
    expect(summary.deleteGuard).toMatchObject({ decisions: 8, deletes: 1, wouldTripAt: null });
  });
});

describe('the delete guard', () => {
  // None of these members is on the simulated channel: every lookup answers 404, every decision is a delete (the
  // credentials of another channel look exactly like this). Four batches of 50 in flight at once.
  const GHOSTS = 300;
  const ghostRows = Array.from({ length: GHOSTS }, (_, i) => `ghost-${i},,ghost-${i}@example.org,false,false`);
  const ghostDeliveries = () => stack.receiver.deliveries().filter((d) => d.memberId?.startsWith('ghost-'));
  const progress = (h: { query: (q: typeof progressQuery) => Promise<Progress> }) => h.query(progressQuery);

  it('every lookup a 404: pauses with at most deleteGuardMinDecisions deletes delivered; resume keeps it paused; confirmDeletes finishes; report and audit show it', async () => {
    await writeFile(path.join(outside, 'ghosts.csv'), [HEADER, ...ghostRows].join('\n') + '\n');
    const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
      taskQueue: stack.config.BACKFILL_TASK_QUEUE,
      workflowId: 'safety-guard-404',
      args: [{ source: { type: 'csv', path: path.join(outside, 'ghosts.csv') }, batchSize: 50, parallelBatches: 4 }],
    });
    const paused = await waitFor('paused by the delete guard', async () => {
      const p = await progress(handle);
      return p.paused ? p : undefined;
    });
    expect(paused.pauseReason).toMatch(
      /^delete guard: (\d+) of \1 decisions so far are deletes \(all of them\): check the channel and CHANNEL_API_URL, then resume with \{"confirmDeletes": true\}$/,
    );
    expect(paused.deleteGuard).toMatchObject({ status: 'tripped' });
    expect(paused.deleteGuard!.decisions).toBeGreaterThanOrEqual(100);
    expect(ghostDeliveries().length).toBeLessThanOrEqual(100);
    const beforeResume = ghostDeliveries().length;

    // A plain resume keeps the guard on.
    await handle.signal(resumeSignal);
    await new Promise((r) => setTimeout(r, 1_500));
    const still = await progress(handle);
    expect(still.paused).toBe(true);
    expect(still.pauseReason).toMatch(/^delete guard: /);
    expect(ghostDeliveries().length).toBe(beforeResume);

    // Acknowledged (issue 22): the CLI's resume says the run stays paused, with the guard's reason and counts, and
    // exits 3; the raw Temporal CLI's update answers the same.
    const plain = await runProcess(process.execPath, [BIN, 'resume', '--workflow-id', 'safety-guard-404'], stack.env);
    expect(plain.code, plain.stderr).toBe(3);
    expect(plain.stdout).toMatch(
      /^still paused: safety-guard-404 stays paused \(delete guard: (\d+) of \1 decisions .*\); (\d+) of \2 decisions so far are deletes, \d+ held back; check the channel and CHANNEL_API_URL, then resume --confirm-deletes to let the deletes go\n$/,
    );
    // `temporal workflow update execute --name resume` on this run, as an operator types it.
    const updateResume = (...extra: string[]) =>
      runProcess(
        findTemporalCli()!.path,
        ['workflow', 'update', 'execute', '--workflow-id', 'safety-guard-404', '--name', 'resume', ...extra],
        { ...stack.env, TEMPORAL_ADDRESS: server.address },
      );
    const raw = await updateResume('-o', 'json');
    expect(raw.code, raw.stderr).toBe(0);
    expect((JSON.parse(raw.stdout) as { result: ControlAnswer }).result).toMatchObject({
      outcome: 'still-paused',
      paused: true,
      deleteGuard: { status: 'tripped' },
    });
    // An argument the run would misread is rejected before it reaches the run.
    const bad = await updateResume('--input', '{"confirmDeletes":"yes"}');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr + bad.stdout).toMatch(/unable to update workflow: resume takes an optional \{.*confirmDeletes/);
    expect((await progress(handle)).paused).toBe(true);
    expect(ghostDeliveries().length).toBe(beforeResume);

    // Confirmed as a user does it, from the CLI (the same signal and argument as `temporal workflow signal`).
    const resumed = await runProcess(
      process.execPath,
      [BIN, 'resume', '--workflow-id', 'safety-guard-404', '--confirm-deletes'],
      stack.env,
    );
    expect(resumed, resumed.stderr).toMatchObject({
      code: 0,
      stdout: 'resumed safety-guard-404: deletes confirmed, the delete guard lets them go\n',
    });
    const result = (await handle.result()) as BackfillResult;
    expect(result).toMatchObject({ total: GHOSTS, processed: GHOSTS, deletes: GHOSTS, failed: 0 });
    expect(new Set(ghostDeliveries().map((d) => d.memberId)).size).toBe(GHOSTS);

    // The audit: every delete recorded after the confirmation says when it was confirmed; the report shows it.
    const audit = await readAudit(result.auditPath);
    const stamped = audit.filter((e) => e.outcome === 'delete' && typeof e.deletesConfirmedAt === 'string');
    expect(stamped.length).toBe(GHOSTS - beforeResume);
    const summary = summarize(audit);
    expect(summary.deleteGuard).toMatchObject({
      decisions: GHOSTS,
      deletes: GHOSTS,
      wouldTripAt: 100,
      confirmed: { deletes: GHOSTS - beforeResume },
    });
    expect(summary.deleteGuard.confirmed!.at).toBe(stamped[0]!.deletesConfirmedAt);

    // The history: the resume signal, the three accepted resume updates (the rejected one left nothing), the
    // confirmation with its argument.
    const history = await handle.fetchHistory();
    const signals = (history.events ?? []).filter(
      (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'resume',
    );
    expect(signals).toHaveLength(1);
    const updates = (history.events ?? [])
      .map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input)
      .filter((input) => input?.name === 'resume')
      .map((input) => {
        const data = input!.args?.payloads?.[0]?.data;
        return data ? Buffer.from(data).toString() : '(none)';
      });
    expect(updates).toEqual(['null', '(none)', '{"confirmDeletes":true}']);

    // The completed run removed its work set and pending replays (personal data); the audit log stays.
    const dir = path.dirname(result.auditPath);
    expect(existsSync(result.auditPath)).toBe(true);
    expect(existsSync(path.join(dir, 'members.jsonl'))).toBe(false);
    expect(existsSync(path.join(dir, 'pending'))).toBe(false);
  }, 120_000);

  it('a batch whose own view clears sends the deletes it held itself: delivered once each, no replay activity', async () => {
    // One batch of 200: every fifth member is gone (a delete), the others unchanged. The deletes among its first 100
    // decisions are held; past them its view has cleared (20% deletes), so the batch sends them before it ends.
    const rows: string[] = [];
    for (let i = 0; i < 200; i++) {
      const id = `held-${i}`;
      if (i % 5 !== 0) stack.simulator.setUser(id, user(id));
      rows.push(`${id},,${id}@example.com,false,false`);
    }
    await writeFile(path.join(outside, 'held.csv'), [HEADER, ...rows].join('\n') + '\n');
    const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
      taskQueue: stack.config.BACKFILL_TASK_QUEUE,
      workflowId: 'safety-guard-held-by-batch',
      args: [{ source: { type: 'csv', path: path.join(outside, 'held.csv') }, batchSize: 200, parallelBatches: 1 }],
    });
    const result = (await handle.result()) as BackfillResult;
    expect(result).toMatchObject({ total: 200, processed: 200, deletes: 40, unchanged: 160, failed: 0 });
    const audit = await readAudit(result.auditPath);
    const held = audit.filter((e) => e.heldByDeleteGuard === true);
    expect(held.length).toBeGreaterThan(0);
    for (const e of held) expect(e).toMatchObject({ outcome: 'delete', event: 'delete', delivered: true });
    expect(held.filter((e) => e.deferred === true)).toEqual([]);
    const deletes = stack.receiver.deliveries().filter((d) => d.memberId?.startsWith('held-'));
    expect(deletes).toHaveLength(40);
    expect(new Set(deletes.map((d) => d.memberId)).size).toBe(40);
    const scheduled = ((await handle.fetchHistory()).events ?? []).map(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name,
    );
    expect(scheduled.filter((name) => name === 'processBatch')).toHaveLength(1);
    expect(scheduled.filter((name) => name === 'replayDeferred')).toEqual([]);
  }, 60_000);

  it('a dry run never trips (it delivers nothing) and keeps its audit log; BACKFILL_KEEP_WORK_DATA keeps the work set', async () => {
    const dry = await run('safety-guard-dry', {
      source: { type: 'csv', path: path.join(outside, 'ghosts.csv') },
      dryRun: true,
      batchSize: 100,
    });
    expect(dry.deletes).toBe(GHOSTS);
    expect(summarize(await readAudit(dry.auditPath)).deleteGuard.wouldTripAt).toBe(100);
    expect(existsSync(path.join(path.dirname(dry.auditPath), 'members.jsonl'))).toBe(false);

    const kept = await withWorker({ BACKFILL_KEEP_WORK_DATA: 'true' }, (q) =>
      run('safety-keep-work', { dryRun: true }, q),
    );
    expect(existsSync(path.join(path.dirname(kept.auditPath), 'members.jsonl'))).toBe(true);
  }, 60_000);
});
