// The deferred replay activity against both pending stores (files under the run's directory, the PostgreSQL
// table), a real file audit log and a real webhook receiver over loopback: a pending replay that is lost (file
// deleted, row gone) ends that member `failed` with the reason in the audit log, instead of failing the run.
import { mkdir, mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { replayDeferred, type ReplayDeferredInput } from '../../activities/replay-deferred';
import { loadConfig } from '../../src/config';
import { createFileWorkStore } from '../../src/store/work-store';
import type { AuditEntry } from '../../src/audit/audit-entry';
import { createFileAuditStore, newReadStats } from '../../src/audit/audit-store';
import { createFilePendingStore, type PendingReplay, type PendingStore } from '../../src/audit/pending-store';
import { createPostgresPendingStore } from '../../src/audit/postgres-pending-store';
import { noMetrics } from '../../src/observability';
import { startWebhookReceiver, type WebhookReceiver } from '../../dev/simulator/webhook-receiver';
import { createStoreTables } from '../../src/store/postgres-schema';
import { ReceiverHealth } from '../../src/webhook/receiver-health';
import { createWebhookSender, type WebhookSender } from '../../src/webhook/sender';
import { scopedWebhookId } from '../../src/webhook/webhook-id';
import type { SendResult } from '../../src/domain/types';
import { startTestPostgres, type TestPostgres } from '../support/postgres';
import { readAudit, waitFor } from '../support/stack';

let root: string;
let pg: TestPostgres;
let receiver: WebhookReceiver;
let sender: WebhookSender;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'replay-deferred-test-'));
  [pg, receiver] = await Promise.all([startTestPostgres(), startWebhookReceiver()]);
  await createStoreTables(pg.pool());
  sender = createWebhookSender({ url: receiver.url, token: 'tok' });
}, 60_000);
afterAll(async () => {
  await sender?.close();
  await receiver?.close();
  await pg?.stop();
  await rm(root, { recursive: true, force: true });
});

const EMAIL = 'personal-lost@example.com';
const replay = (line: number): PendingReplay => ({
  line,
  memberId: `m-${line}`,
  event: 'upsert',
  webhookId: `msg_${String(line).padStart(32, '0')}`,
  payload: {
    event: 'upsert',
    type: 'user',
    entity: { memberId: `m-${line}`, email: EMAIL },
  } as unknown as PendingReplay['payload'],
  base: {
    ts: 't',
    backfill: 'wf-1',
    runLabel: 'wf-1',
    line,
    memberId: `m-${line}`,
    outcome: 'upsert',
    fields: ['email'],
    dryRun: false,
  },
});

let n = 0;

/** A fresh run directory's paths (the directory made unless `make` is false). */
async function runPaths(name: string, make = true) {
  const dir = path.join(root, `${name}-${++n}`);
  if (make) await mkdir(dir, { recursive: true });
  return {
    dir,
    workFile: path.join(dir, 'work'),
    auditPath: path.join(dir, 'audit.jsonl'),
    pendingDir: path.join(dir, 'pending'),
  };
}
/** The replay activity's input for `line` (member `m-<line>`) of run wf-1, three attempts at most. */
function deferredInput(
  paths: ReplayDeferredInput['paths'],
  line: number,
  target: ReplayDeferredInput['target'],
): ReplayDeferredInput {
  return { backfill: 'wf-1', line, memberId: `m-${line}`, runLabel: 'wf-1', paths, maxAttempts: 3, target };
}

const stores: [string, () => PendingStore][] = [
  ['file', () => createFilePendingStore()],
  ['postgres', () => createPostgresPendingStore(pg.pool())],
];

describe.each(stores)('replayDeferred with the %s pending store', (_name, makePending) => {
  it('records a member whose pending replay is lost as failed, names it, and the run goes on', async () => {
    const paths = await runPaths('run');
    const pending = makePending();
    const audit = createFileAuditStore();
    const deps = { audit, pending, metrics: noMetrics, target: sender, now: () => new Date('2024-05-01T00:00:00Z') };
    await pending.put(paths.pendingDir, replay(3));
    await pending.put(paths.pendingDir, replay(4));
    // Line 4's replay is lost: its file deleted, or its row gone.
    if (_name === 'file') await unlink(path.join(paths.pendingDir, '4.json'));
    else await pg.pool().query('DELETE FROM backfill_pending WHERE key = $1 AND line = 4', [paths.pendingDir]);

    const input = (line: number, memberId: string): ReplayDeferredInput => ({
      backfill: 'wf-1',
      line,
      memberId,
      runLabel: 'wf-1',
      paths,
      maxAttempts: 3,
      target: { type: 'url' },
    });
    const run = (i: ReplayDeferredInput) => new MockActivityEnvironment().run(replayDeferred, deps, i);

    expect(await run(input(3, 'm-3'))).toEqual({ line: 3, outcome: 'upsert', fields: ['email'] });
    expect(await run(input(4, 'm-4'))).toEqual({ line: 4, outcome: 'failed' });
    // Asked again (a retried activity, a later run): the recorded outcome, not a second entry.
    expect(await run(input(4, 'm-4'))).toEqual({ line: 4, outcome: 'failed' });

    const entries = await readAudit(paths.auditPath);
    expect(entries.map((e) => [e.line, e.outcome])).toEqual([
      [3, 'upsert'],
      [4, 'failed'],
    ]);
    const lost = entries[1] as AuditEntry;
    expect(lost).toMatchObject({
      line: 4,
      memberId: 'm-4',
      outcome: 'failed',
      stage: 'replay',
      delivered: false,
      deferred: true,
      backfill: 'wf-1',
    });
    expect(lost.reason).toMatch(/pending replay of line 4 \(member m-4\) is missing/);
    expect(JSON.stringify(lost)).not.toContain(EMAIL);
    // Settled: the batch that deferred it does not count it again.
    expect(await pending.lines(paths.pendingDir, [3, 4])).toEqual({ pending: new Set(), settled: new Set([3, 4]) });
    expect(receiver.accepted().filter((d) => d.memberId === 'm-4')).toEqual([]);
  });
});

it("a worker that does not see the run's pending directory at all retries (another worker may), not records a loss", async () => {
  const paths = await runPaths('elsewhere', false);
  const deps = {
    audit: createFileAuditStore(),
    pending: createFilePendingStore(),
    metrics: noMetrics,
    target: sender,
    now: () => new Date(),
  };
  const input: ReplayDeferredInput = {
    backfill: 'wf-1',
    line: 9,
    memberId: 'm-9',
    runLabel: 'wf-1',
    paths,
    maxAttempts: 3,
    target: { type: 'url' },
  };
  const err = await new MockActivityEnvironment().run(replayDeferred, deps, input).catch((e: unknown) => e);
  expect(err).toMatchObject({ type: 'PendingStoreUnreachable', nonRetryable: false });
  expect(String((err as Error).message)).toMatch(/pending directory .* is not on this worker/);
});

it('a deferred upsert is routed by its fields, and its entry names the webhooks it went to (as in the batch)', async () => {
  const paths = await runPaths('routed');
  const pending = createFilePendingStore();
  // A local channel-webhooks-like target: the webhooks depend on the fields it is given.
  const sent: unknown[] = [];
  const routing: WebhookSender = {
    send: async ({ fields }) => {
      sent.push(fields);
      return {
        kind: 'delivered',
        status: 200,
        webhooks: fields?.includes('email') ? [{ id: 'wh-contact', name: 'Contact' }] : [{ id: 'wh-any', name: 'Any' }],
      };
    },
    close: async () => {},
  };
  const deps = {
    audit: createFileAuditStore(),
    pending,
    metrics: noMetrics,
    target: routing,
    now: () => new Date('2024-05-01T00:00:00Z'),
  };
  await pending.put(paths.pendingDir, replay(5));
  const input = deferredInput(paths, 5, { type: 'channel-webhooks' });
  expect(await new MockActivityEnvironment().run(replayDeferred, deps, input)).toEqual({
    line: 5,
    outcome: 'upsert',
    fields: ['email'],
  });
  expect(sent).toEqual([['email']]);
  const [entry] = await readAudit(paths.auditPath);
  expect(entry).toMatchObject({
    line: 5,
    outcome: 'upsert',
    delivered: true,
    deferred: true,
    webhooks: [{ id: 'wh-contact', name: 'Contact' }],
  });
});

it('the store away past an attempt after the send: the next attempt records what was sent, never sends it again', async () => {
  const paths = await runPaths('store-away');
  const pending = createFilePendingStore();
  await pending.put(paths.pendingDir, replay(9));
  const files = createFileAuditStore();
  // The audit store's disk is full until `full` is cleared (as a real full disk answers: ENOSPC).
  let full = true;
  const audit = {
    ...files,
    append: async (...args: Parameters<typeof files.append>) => {
      if (full) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
      return files.append(...args);
    },
  };
  const deps = { audit, pending, metrics: noMetrics, target: sender, now: () => new Date() };
  const input = deferredInput(paths, 9, { type: 'url' });
  const sentTo = () => receiver.deliveries().filter((d) => d.webhookId === replay(9).webhookId).length;

  // Attempt 1 sends, cannot record, and is ended (as its 2-minute timeout would) while it waits for the store.
  const first = new MockActivityEnvironment({ attempt: 1 });
  const beats: unknown[] = [];
  first.on('heartbeat', (d: unknown) => beats.push(d));
  const running = first.run(replayDeferred, deps, input);
  await waitFor('the sent outcome kept in the heartbeat details', async () =>
    beats.some((b) => typeof b === 'object' && b !== null && 'sent' in b),
  );
  first.cancel();
  await expect(running).rejects.toThrow();
  expect(sentTo()).toBe(1);
  expect(await readAudit(paths.auditPath).catch(() => [])).toEqual([]);

  // Attempt 2 starts with the details Temporal keeps; the store is back: recorded, not sent again.
  full = false;
  const second = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: beats.at(-1) });
  expect(await second.run(replayDeferred, deps, input)).toEqual({ line: 9, outcome: 'upsert', fields: ['email'] });
  expect(sentTo()).toBe(1);
  const [entry] = await readAudit(paths.auditPath);
  expect(entry).toMatchObject({ line: 9, outcome: 'upsert', delivered: true, deferred: true });
  expect((await pending.lines(paths.pendingDir, [9])).settled.has(9)).toBe(true);
});

it('the store away when a replay starts: the attempt waits for it, uncounted, instead of failing, and sends once', async () => {
  const paths = await runPaths('store-away-at-start');
  const files = createFilePendingStore();
  await files.put(paths.pendingDir, replay(11));
  // The pending store refuses connections (as PostgreSQL down does) until `away` is cleared.
  let away = true;
  let refusedReads = 0;
  const pending: PendingStore = {
    ...files,
    get: async (...args: Parameters<typeof files.get>) => {
      if (away) {
        refusedReads += 1;
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      }
      return files.get(...args);
    },
  };
  const audit = createFileAuditStore();
  const deps = { audit, pending, metrics: noMetrics, target: sender, now: () => new Date() };
  const input = deferredInput(paths, 11, { type: 'url' });
  const sentTo = () => receiver.deliveries().filter((d) => d.webhookId === replay(11).webhookId).length;

  // An attempt ended while it waits had kept a send of an earlier one: the wait must not drop it.
  const earlier = { refused: 1, sent: { line: 99 } };
  const env = new MockActivityEnvironment({ attempt: 3, heartbeatDetails: earlier });
  const beats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d));
  const running = env.run(replayDeferred, deps, input);
  await waitFor('the opening read retried while the store is away', async () => refusedReads >= 2);
  // Counted as refused while it waits (should it outlast its timeout), the earlier attempt's send kept.
  expect(beats).toContainEqual({ refused: 2, sent: { line: 99 } });
  expect(sentTo()).toBe(0);
  away = false;
  // The attempt number is 3 of maxAttempts 3, but one was refused: it is not the last, and it delivers.
  expect(await running).toEqual({ line: 11, outcome: 'upsert', fields: ['email'] });
  expect(sentTo()).toBe(1);
  const [entry] = await readAudit(paths.auditPath);
  expect(entry).toMatchObject({ line: 11, outcome: 'upsert', delivered: true, deferred: true });
  const stats = newReadStats();
  for await (const _ of audit.entries(paths.auditPath, stats)) void _;
  expect(stats.waits).toEqual([expect.objectContaining({ kind: 'store-unavailable', ended: 'back', line: 11 })]);
});

describe('attempts refused by other workers do not use up maxAttempts', () => {
  // A receiver that never accepts (503): each real try is one of maxAttempts (3).
  const failing: WebhookSender = {
    send: async () => ({ kind: 'retryable', status: 503, reason: 'HTTP 503' }),
    close: async () => {},
  };
  async function setUp() {
    const paths = await runPaths('refused');
    const pending = createFilePendingStore();
    await pending.put(paths.pendingDir, replay(7));
    const deps = { audit: createFileAuditStore(), pending, metrics: noMetrics, target: failing, now: () => new Date() };
    const input: ReplayDeferredInput = {
      backfill: 'wf-1',
      line: 7,
      memberId: 'm-7',
      runLabel: 'wf-1',
      paths,
      maxAttempts: 3,
      target: { type: 'url' },
    };
    return { deps, input, paths };
  }

  it.each([
    // Temporal's attempt, the heartbeat details it starts with, whether it gives up (records failed).
    [3, undefined, true],
    [3, { refused: 1 }, false],
    [5, { refused: 2 }, true],
    [5, { refused: 3 }, false],
  ])('attempt %i with %j: gives up %s', async (attempt, heartbeatDetails, givesUp) => {
    const { deps, input, paths } = await setUp();
    const run = new MockActivityEnvironment({ attempt, heartbeatDetails }).run(replayDeferred, deps, input);
    if (givesUp) {
      expect(await run).toEqual({ line: 7, outcome: 'failed' });
      const [entry] = await readAudit(paths.auditPath);
      expect(entry).toMatchObject({ line: 7, outcome: 'failed', stage: 'replay' });
      expect(entry!.reason).toBe('replay gave up after 3 attempts: HTTP 503');
    } else {
      await expect(run).rejects.toMatchObject({ type: 'ReplayNotDelivered' });
      expect(await readAudit(paths.auditPath).catch(() => [])).toEqual([]);
    }
  });

  it('a worker that does not see the pending store counts its refusal in the heartbeat details', async () => {
    const { deps, input } = await setUp();
    const elsewhere = { ...input, paths: { ...input.paths, pendingDir: path.join(root, 'nowhere', 'pending') } };
    const env = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: { refused: 1 } });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    await expect(env.run(replayDeferred, deps, elsewhere)).rejects.toMatchObject({ type: 'PendingStoreUnreachable' });
    expect(beats).toEqual([{ refused: 2 }]);
  });
});

describe('attempts made while the endpoint is unavailable do not use up maxAttempts', () => {
  const answering = (answer: (memberId: string) => SendResult): WebhookSender => ({
    send: async ({ payload }) => answer((payload.entity as { memberId: string }).memberId),
    close: async () => {},
  });
  async function lastAttempt(target: WebhookSender, health: ReceiverHealth, line: number) {
    const paths = await runPaths('outage');
    const pending = createFilePendingStore();
    await pending.put(paths.pendingDir, replay(line));
    const deps = { audit: createFileAuditStore(), pending, metrics: noMetrics, target, health, now: () => new Date() };
    const input: ReplayDeferredInput = {
      backfill: 'wf-1',
      line,
      memberId: `m-${line}`,
      runLabel: 'wf-1',
      paths,
      maxAttempts: 3,
      target: { type: 'url' },
    };
    // The last of its maxAttempts (3): without the outage rule it gives up and records the member failed.
    const env = new MockActivityEnvironment({ attempt: 3 });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const outcome = await env.run(replayDeferred, deps, input).catch((e: unknown) => e);
    return { outcome, beats, audit: await readAudit(paths.auditPath).catch(() => []) };
  }

  it('connections refused for every member: the last attempt waits, uncounted, and records nothing', async () => {
    const refused = answering(() => ({ kind: 'retryable', reason: 'ECONNREFUSED' }));
    const health = new ReceiverHealth();
    // Two other members were refused already (by batches or replays on this worker).
    health.observe('m-1', { kind: 'retryable', reason: 'ECONNREFUSED' }, Date.parse('2026-01-01T00:00:00Z'));
    health.observe('m-2', { kind: 'retryable', reason: 'ECONNREFUSED' }, Date.parse('2026-01-01T00:00:01Z'));
    const { outcome, beats, audit } = await lastAttempt(refused, health, 21);
    expect(outcome).toMatchObject({ type: 'ReceiverUnavailable', nonRetryable: false });
    expect((outcome as Error).message).toMatch(/unavailable since 2026-01-01T00:00:00.000Z/);
    expect(beats).toEqual([{ refused: 1 }]);
    expect(audit).toEqual([]);
  });

  it('a 503 for this member while the others are delivered: its own failure, given up after maxAttempts', async () => {
    const only22 = answering((m) =>
      m === 'm-22' ? { kind: 'retryable', status: 503, reason: 'HTTP 503' } : { kind: 'delivered', status: 200 },
    );
    const health = new ReceiverHealth();
    health.observe('m-1', { kind: 'delivered', status: 200 }, Date.now());
    health.observe('m-22', { kind: 'retryable', status: 503, reason: 'HTTP 503' }, Date.now());
    health.observe('m-2', { kind: 'delivered', status: 200 }, Date.now());
    const { outcome, beats, audit } = await lastAttempt(only22, health, 22);
    expect(outcome).toEqual({ line: 22, outcome: 'failed' });
    // No refusal counted; only the outcome kept for a next attempt in case this one could not record it.
    expect(beats).toEqual([{ refused: 0, sent: expect.objectContaining({ line: 22, outcome: 'failed' }) }]);
    expect(audit).toMatchObject([{ line: 22, outcome: 'failed', reason: 'replay gave up after 3 attempts: HTTP 503' }]);
  });
});

it('a worker without WEBHOOK_URL refuses a replay by name and counts the refusal; a batch refusal leaves its details alone', async () => {
  const activities = createActivities({
    config: loadConfig({ CHANNEL_ACCESS_KEY: 'k', CHANNEL_ACCESS_SECRET: 's', BACKFILL_DATA_DIR: root }),
    channel: undefined as never, // never reached: the refusal comes before any lookup
    target: undefined,
    audit: createFileAuditStore(),
    pending: createFilePendingStore(),
    work: createFileWorkStore(),
    workerIdentity: '7@host-c',
  });
  const paths = await runPaths('no-url', false);
  const env = new MockActivityEnvironment({ attempt: 3, heartbeatDetails: { refused: 2 } });
  const beats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d));
  const input: ReplayDeferredInput = {
    backfill: 'wf-1',
    line: 8,
    runLabel: 'wf-1',
    paths,
    maxAttempts: 3,
    target: { type: 'url' },
  };
  const err = await env.run(activities.replayDeferred, input).catch((e: unknown) => e);
  expect(err).toMatchObject({ type: 'WorkerLacksWebhookUrl', nonRetryable: false });
  expect((err as Error).message).toMatch(
    /^worker 7@host-c has no WEBHOOK_URL and cannot replay the deferred replay of line 8/,
  );
  expect(beats).toEqual([{ refused: 3 }]);

  // A batch's heartbeat details are its progress ({ done }): its refusal writes none.
  const batchEnv = new MockActivityEnvironment({ attempt: 2 });
  const batchBeats: unknown[] = [];
  batchEnv.on('heartbeat', (d: unknown) => batchBeats.push(d));
  const batch = { backfill: 'wf-1', batch: 0, options: { dryRun: false, target: { type: 'url' } } } as never;
  await expect(batchEnv.run(activities.processBatch, batch)).rejects.toMatchObject({ type: 'WorkerLacksWebhookUrl' });
  expect(batchBeats).toEqual([]);
});

describe('a deferred replay with WEBHOOK_EVENT_NAMES=scopes', () => {
  it("sends only the scope the batch's attempts left undelivered, and records the deliveries per scope", async () => {
    const C = 'member.upserted.contact';
    const S = 'member.upserted.subscription';
    const r = await startWebhookReceiver({ behaviours: { 'm-7': { status: 503, times: 1 } } });
    const scoped = createWebhookSender({ url: r.url, eventNaming: 'scopes' });
    try {
      const paths = await runPaths('scopes');
      const pending = createFilePendingStore();
      const audit = createFileAuditStore();
      const both = replay(7);
      both.base.fields = ['email', 'unsubscribeEmail'];
      // The batch's attempt: the contact scope refused for now (503), the consent scope accepted.
      expect(
        await scoped.send({ webhookId: both.webhookId, payload: both.payload, fields: both.base.fields }),
      ).toMatchObject({ kind: 'retryable', status: 503 });
      await pending.put(paths.pendingDir, both);
      const deps = { audit, pending, metrics: noMetrics, target: scoped, now: () => new Date('2024-05-01T00:00:00Z') };
      const input = deferredInput(paths, 7, { type: 'url' });
      expect(await new MockActivityEnvironment().run(replayDeferred, deps, input)).toEqual({
        line: 7,
        outcome: 'upsert',
        fields: ['email', 'unsubscribeEmail'],
      });
      const ids = [scopedWebhookId(both.webhookId, C), scopedWebhookId(both.webhookId, S)];
      expect(r.deliveries().map((d) => [d.event, d.status, d.webhookId])).toEqual([
        [C, 503, ids[0]],
        [S, 200, ids[1]],
        [C, 200, ids[0]],
      ]);
      const [entry] = await readAudit(paths.auditPath);
      expect(entry).toMatchObject({
        outcome: 'upsert',
        delivered: true,
        deferred: true,
        deliveries: [
          { event: C, webhookId: ids[0], endpoints: 1 },
          { event: S, webhookId: ids[1], endpoints: 1 },
        ],
      });
    } finally {
      await scoped.close();
      await r.close();
    }
  });
});
