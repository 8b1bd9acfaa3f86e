import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { PauseNotices, pauseNoticeSinks } from '../../activities/pause-notices';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DevServer } from '../../dev/temporal-cli';
import type { BackfillActivities } from '../../activities';
import type { BatchInput } from '../../activities/process-batch';
import { replayDeferred, type ReplayDeferredInput } from '../../activities/replay-deferred';
import { createFileAuditStore } from '../../src/audit/audit-store';
import { createFilePendingStore } from '../../src/audit/pending-store';
import { noMetrics } from '../../src/observability';
import { startWebhookReceiver } from '../../dev/simulator/webhook-receiver';
import { createWebhookSender } from '../../src/webhook/sender';
import {
  WORKFLOW_TYPE,
  pauseSignal,
  progressQuery,
  resumeSignal,
  type BackfillResult,
  type BatchResult,
  type DeferredReplay,
  type DeferredResult,
  type PreparedBackfill,
  type Progress,
} from '../../workflows/definitions';
import { BatchGuardView } from '../../src/domain/delete-guard';
import { connectClient, readAudit, startTestServer, waitFor, workflowBundle } from '../support/stack';

// The workflow on the real test dev server, with STUB activities: an in-memory model of the audit log and the
// pending replays that answers as the real activities do (a cancelled batch returns complete:false with what it
// deferred so far; a batch re-reads the audit log and the pending list at its start; a replay whose line is
// already recorded returns that outcome). The tests steer timing (slow members, closed replay gate) to reach the
// states the issue names: pause with batches and replays in flight, resume, continue-as-new, bad credentials.

interface Model {
  batches: number;
  batchSize: number;
  /** Lines the batch hands to a deferred replay instead of recording. */
  deferLines: Set<number>;
  recorded: Map<number, DeferredResult['outcome'] | 'unchanged'>;
  pending: Set<number>;
  memberDelayMs: number;
  replayDelayMs: number;
  /** Replays wait while this is false. */
  replaysOpen: boolean;
  /** Batches answer "bad credentials" while this is true. */
  badCredentials: boolean;
  maxHistoryEvents: number;
  batchCalls: number;
  replayCalls: number[];
  replaysRunning: number;
  maxReplaysRunning: number;
  /** Lines whose lookup answers 404: a delete, sent unless the batch's delete guard view holds it. */
  deleteLines: Set<number>;
  guard: { maxDeleteShare: number; minDecisions: number };
  /** Deletes that reached the (modelled) receiver, and those sent with a confirmation stamp. */
  deletesDelivered: number;
  deletesConfirmed: number;
  cleanups: number;
  /** Batches and replays throw once their cancellation reaches them, as a replay refused meanwhile does. */
  failOnCancel: boolean;
  /** Attempts that threw that way. */
  failedOnCancel: number;
}

function model(o: Partial<Model> = {}): Model {
  return {
    batches: 2,
    batchSize: 5,
    deferLines: new Set(),
    recorded: new Map(),
    pending: new Set(),
    memberDelayMs: 30,
    replayDelayMs: 0,
    replaysOpen: true,
    badCredentials: false,
    maxHistoryEvents: 10_000,
    batchCalls: 0,
    replayCalls: [],
    replaysRunning: 0,
    maxReplaysRunning: 0,
    deleteLines: new Set(),
    guard: { maxDeleteShare: 0.5, minDecisions: 10 },
    deletesDelivered: 0,
    deletesConfirmed: 0,
    cleanups: 0,
    failOnCancel: false,
    failedOnCancel: 0,
    ...o,
  };
}

const zero = () => ({
  processed: 0,
  upserts: 0,
  deletes: 0,
  unchanged: 0,
  failed: 0,
  skipped: 0,
  fields: { mobileNumber: 0, email: 0, unsubscribeEmail: 0, unsubscribeTexting: 0 },
});

function stubActivities(m: Model): BackfillActivities {
  const prepared = (): PreparedBackfill => ({
    options: {
      source: { type: 'csv', path: '/stub.csv' },
      dryRun: false,
      batchSize: m.batchSize,
      runLabel: 'stub',
      parallelBatches: 2,
      rateLimit: null,
      maxHistoryEvents: m.maxHistoryEvents,
      replayMaxAttempts: 3,
      batchHeartbeatSeconds: 2,
      target: { type: 'url' },
      only: null,
      fromPlan: null,
      maxDeleteShare: m.guard.maxDeleteShare,
      deleteGuardMinDecisions: m.guard.minDecisions,
    },
    paths: { dir: '/stub', workFile: '/stub/work', auditPath: '/stub/audit', pendingDir: '/stub/pending' },
    rows: m.batches * m.batchSize,
    batches: m.batches,
  });
  return {
    prepareBackfill: async () => prepared(),
    processBatch: async (input: BatchInput): Promise<BatchResult> => {
      m.batchCalls++;
      const ctx = Context.current();
      const lines = Array.from({ length: m.batchSize }, (_, i) => input.batch * m.batchSize + i);
      const pendingAtStart = new Set(m.pending);
      // The delete guard as the real batch applies it (activities/process-batch.ts).
      const view = input.guard ? new BatchGuardView(input.guard, m.guard) : undefined;
      const deferred: DeferredReplay[] = lines
        .filter((l) => pendingAtStart.has(l) && !m.recorded.has(l))
        .map((line) => ({
          line,
          memberId: `m${line}`,
          ...(view?.decided(m.deleteLines.has(line)) ? { held: true } : {}),
        }));
      for (const line of lines) if (m.recorded.has(line)) view?.decided(m.recorded.get(line) === 'delete');
      for (const line of lines) {
        if (m.recorded.has(line) || pendingAtStart.has(line)) continue;
        ctx.heartbeat();
        await sleep(m.memberDelayMs);
        if (ctx.cancellationSignal.aborted) {
          if (m.failOnCancel && ++m.failedOnCancel)
            throw new Error('batch failed while its cancellation was on the way');
          return { batch: input.batch, complete: false, stopReason: 'cancelled', counts: zero(), deferred };
        }
        if (m.badCredentials)
          return { batch: input.batch, complete: false, stopReason: 'bad-credentials', counts: zero(), deferred };
        if (m.deleteLines.has(line)) {
          if (view?.decided(true)) {
            m.pending.add(line);
            deferred.push({ line, memberId: `m${line}`, held: true });
          } else {
            m.deletesDelivered++;
            if (input.guard?.confirmedAt) m.deletesConfirmed++;
            m.recorded.set(line, 'delete');
          }
        } else if (m.deferLines.has(line)) {
          view?.decided(false);
          m.pending.add(line);
          deferred.push({ line, memberId: `m${line}` });
        } else {
          view?.decided(false);
          m.recorded.set(line, 'unchanged');
        }
      }
      const counts = zero();
      const deferredLines = new Set(deferred.map((d) => d.line));
      const decided = { decisions: 0, deletes: 0 };
      for (const line of lines) {
        decided.decisions++;
        if (m.deleteLines.has(line)) decided.deletes++;
        if (deferredLines.has(line) || m.deferLines.has(line)) continue; // replays count themselves
        counts.processed++;
        if (m.recorded.get(line) === 'delete') counts.deletes++;
        else counts.unchanged++;
      }
      return { batch: input.batch, complete: true, counts, deferred, ...(input.guard ? { decided } : {}) };
    },
    replayDeferred: async (input: ReplayDeferredInput): Promise<DeferredResult> => {
      m.replayCalls.push(input.line);
      const already = m.recorded.get(input.line);
      if (already) return { line: input.line, outcome: already === 'unchanged' ? 'failed' : already };
      m.maxReplaysRunning = Math.max(m.maxReplaysRunning, ++m.replaysRunning);
      while (!m.replaysOpen) {
        Context.current().heartbeat();
        if (m.failOnCancel && Context.current().cancellationSignal.aborted) {
          m.replaysRunning--;
          m.failedOnCancel++;
          throw new Error('receiver refused while the cancellation was on the way');
        }
        await sleep(20);
      }
      await sleep(m.replayDelayMs);
      m.replaysRunning--;
      m.pending.delete(input.line);
      if (m.deleteLines.has(input.line)) {
        m.deletesDelivered++;
        if (input.deletesConfirmedAt) m.deletesConfirmed++;
        m.recorded.set(input.line, 'delete');
        return { line: input.line, outcome: 'delete' };
      }
      m.recorded.set(input.line, 'upsert');
      return { line: input.line, outcome: 'upsert' };
    },
    cleanupBackfill: async () => {
      m.cleanups++;
      return { kept: false, workRemoved: 0, pendingRemoved: 0 };
    },
  } as unknown as BackfillActivities;
}

let server: DevServer;
let client: Client;
let connection: NativeConnection;
let n = 0;

beforeAll(async () => {
  server = await startTestServer();
  ({ client } = await connectClient(server.address));
  connection = await NativeConnection.connect({ address: server.address });
}, 120_000);
afterAll(async () => {
  await connection?.close();
  await server?.stop();
});

async function withWorker<T>(m: Model, fn: (handle: WorkflowHandle, taskQueue: string) => Promise<T>): Promise<T> {
  return withActivities(stubActivities(m), fn);
}

async function withActivities<T>(
  activities: BackfillActivities,
  fn: (handle: WorkflowHandle, taskQueue: string) => Promise<T>,
  workerOptions: Partial<WorkerOptions> = {},
): Promise<T> {
  const taskQueue = `stubs-${++n}`;
  const worker = await Worker.create({
    ...workerOptions,
    connection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities,
    // The stub activities do not listen, but the workflow calls the sink on pause as with the real worker.
    sinks: pauseNoticeSinks(new PauseNotices()),
    // Above the workflow's own cap of 100 replays in flight, so that cap is what the tests see.
    maxConcurrentActivityTaskExecutions: 400,
  });
  return worker.runUntil(async () => {
    const handle = await client.workflow.start(WORKFLOW_TYPE, {
      taskQueue,
      workflowId: `${taskQueue}-${Date.now()}`,
      args: [{ source: { type: 'csv', path: '/stub.csv' } }],
    });
    return fn(handle, taskQueue);
  });
}

/**
 * Stub activities of a run whose source is read beside its batches: the preparation reads `read` of it (rows,
 * batches), the normaliser heartbeats until `normalisedWhen` holds and then gives the whole (the model's batches),
 * and a batch past the model's end waits for the normaliser and is empty. `source` counts the model's batches done.
 */
function sourceReadBeside(
  m: Model,
  o: {
    read: { rows: number; batches: number };
    normalisedWhen: (source: { batchesDone: number }) => boolean;
    prepared?: Partial<PreparedBackfill>;
  },
) {
  const base = stubActivities(m);
  const source = { batchesDone: 0, normalised: false };
  const heartbeatUntil = async (done: () => boolean) => {
    while (!done()) {
      Context.current().heartbeat();
      await sleep(20);
    }
  };
  const activities = {
    ...base,
    prepareBackfill: async (...args: Parameters<BackfillActivities['prepareBackfill']>) => ({
      ...(await base.prepareBackfill(...args)),
      ...o.read,
      normalising: true as const,
      ...o.prepared,
    }),
    normaliseSource: async () => {
      await heartbeatUntil(() => o.normalisedWhen(source));
      source.normalised = true;
      return { rows: m.batches * m.batchSize, batches: m.batches };
    },
    processBatch: async (input: BatchInput): Promise<BatchResult> => {
      if (input.batch < m.batches) return base.processBatch(input).finally(() => source.batchesDone++);
      await heartbeatUntil(() => source.normalised);
      return { batch: input.batch, complete: true, beyondEnd: true, counts: zero(), deferred: [] };
    },
  } as unknown as BackfillActivities;
  return { activities, source };
}

const progress = (h: WorkflowHandle) => h.query(progressQuery) as Promise<Progress>;

describe('backfill workflow with stub activities', () => {
  it('pauses with batches and deferred replays in flight, resumes, and counts every member once', async () => {
    // Members are slow enough that the cancellation (delivered on a heartbeat, throttled to 1.6 s) finds batches running.
    const m = model({ batches: 4, batchSize: 8, deferLines: new Set([1, 9]), replaysOpen: false, memberDelayMs: 300 });
    const result = await withWorker(m, async (h) => {
      await waitFor('a replay in flight', async () => m.replayCalls.length > 0);
      await h.signal(pauseSignal, 'test pause');
      m.replaysOpen = true; // the paused replay finishes (it is let finish, as the real one is)
      const paused = await waitFor('paused and settled', async () => {
        const p = await progress(h);
        return p.paused && p.pauseReason === 'test pause' ? p : undefined;
      });
      const callsWhilePaused = m.batchCalls;
      await sleep(500);
      expect(m.batchCalls).toBe(callsWhilePaused);
      expect(paused.done).toBe(false);
      await h.signal(resumeSignal);
      return (await h.result()) as BackfillResult;
    });
    expect(result.total).toBe(32);
    expect(result.processed).toBe(32);
    expect(result.upserts).toBe(2);
    expect(result.unchanged).toBe(30);
    expect(m.batchCalls).toBeGreaterThan(4); // at least one batch was cancelled mid-way and ran again
  }, 60_000);

  it('a batch and a replay that fail once their cancellation reaches them are redone after resume, not fatal', async () => {
    // The server does not retry an attempt that ends after a cancel request: the workflow sees the failure itself
    // (retry state CANCEL_REQUESTED), which says nothing about the member. Heartbeats throttled to 200 ms so the
    // replay (no heartbeat timeout) learns of its cancellation at once.
    // Replays start when their batch ends: batches 3 and 4 are running when the replay of line 1 waits.
    const m = model({ batches: 4, batchSize: 8, deferLines: new Set([1]), replaysOpen: false, memberDelayMs: 300 });
    m.failOnCancel = true;
    const throttle: Partial<WorkerOptions> = {
      maxHeartbeatThrottleInterval: '200ms',
      defaultHeartbeatThrottleInterval: '200ms',
    };
    const result = await withActivities(
      stubActivities(m),
      async (h) => {
        await waitFor('a replay and two batches in flight', async () => m.replaysRunning > 0 && m.batchCalls === 4);
        await h.signal(pauseSignal, 'test pause');
        // Both batches and the replay failed, and the workflow has handled those failures (or failed itself).
        const settled = await waitFor('the failed attempts handled', async () => {
          if (m.failedOnCancel < 3) return undefined;
          const events = (await h.fetchHistory()).events ?? [];
          const failures = events.filter((e) => e.activityTaskFailedEventAttributes).length;
          const last = events[events.length - 1];
          return failures >= 3 &&
            (last?.workflowTaskCompletedEventAttributes || last?.workflowExecutionFailedEventAttributes)
            ? events
            : undefined;
        });
        expect(settled.some((e) => e.workflowExecutionFailedEventAttributes)).toBe(false);
        expect((await h.describe()).status.name).toBe('RUNNING');
        expect((await progress(h)).paused).toBe(true);
        m.failOnCancel = false;
        m.replaysOpen = true;
        await h.signal(resumeSignal);
        return (await h.result()) as BackfillResult;
      },
      throttle,
    );
    expect(result.processed).toBe(32);
    expect(result.upserts).toBe(1);
    expect(result.unchanged).toBe(31);
    expect(m.batchCalls).toBe(6); // the two that failed ran again
    expect(m.replayCalls.length).toBeGreaterThan(1); // the refused replay ran again after resume
  }, 60_000);

  it('carries its state through continue-as-new', async () => {
    // 20 events: reached after two or three batches however their completions coalesce into workflow tasks (at 40 a
    // fast run finished in one run: completions that land in one task add fewer events).
    const m = model({ batches: 6, batchSize: 3, deferLines: new Set([4]), memberDelayMs: 5, maxHistoryEvents: 20 });
    const result = await withWorker(m, async (h) => (await h.result()) as BackfillResult);
    expect(result.runs).toBeGreaterThan(1);
    expect(result.processed).toBe(18);
    expect(result.upserts).toBe(1);
  }, 60_000);

  it('pauses itself on bad credentials with the reason, and finishes after resume', async () => {
    const m = model({ batches: 2, batchSize: 4, badCredentials: true });
    const result = await withWorker(m, async (h) => {
      const p = await waitFor('paused by bad credentials', async () => {
        const q = await progress(h);
        return q.paused ? q : undefined;
      });
      expect(p.pauseReason).toMatch(/401\/403/);
      expect(p.processed).toBe(0);
      m.badCredentials = false;
      await h.signal(resumeSignal);
      return (await h.result()) as BackfillResult;
    });
    expect(result.processed).toBe(8);
    expect(result.unchanged).toBe(8);
  }, 60_000);

  it('a deferred line re-reported by a batch after pause/resume is counted once (processed never exceeds total)', async () => {
    // Batch 0 defers line 1, then is paused before it finishes. After resume the replay of line 1 completes
    // while batch 0's second attempt, which read the pending list at its start, still reports line 1 as deferred.
    const m = model({ batches: 1, batchSize: 12, deferLines: new Set([1]), memberDelayMs: 300, replayDelayMs: 50 });
    const seen: number[] = [];
    const result = await withWorker(m, async (h) => {
      await waitFor('line 1 pending', async () => m.pending.has(1));
      await h.signal(pauseSignal);
      await waitFor('batch stopped', async () => (await progress(h)).paused && m.batchCalls === 1);
      await sleep(300);
      await h.signal(resumeSignal);
      for (;;) {
        const p = await progress(h);
        seen.push(p.processed);
        if (p.done) break;
        await sleep(25);
      }
      return (await h.result()) as BackfillResult;
    });
    expect(m.batchCalls).toBe(2);
    expect(Math.max(...seen)).toBeLessThanOrEqual(12);
    expect(result.processed).toBe(12);
    expect(result.upserts).toBe(1);
  }, 60_000);

  it('runs at most 100 deferred replays at once and queues the rest', async () => {
    const m = model({
      batches: 1,
      batchSize: 150,
      deferLines: new Set(Array.from({ length: 150 }, (_, i) => i)),
      memberDelayMs: 0,
      replaysOpen: false,
    });
    const result = await withWorker(m, async (h) => {
      await waitFor('replays started', async () => m.replaysRunning >= 100);
      await sleep(1_000); // time for more to start, were they not capped
      expect((await progress(h)).pendingReplays).toBe(150);
      m.replaysOpen = true;
      return (await h.result()) as BackfillResult;
    });
    expect(m.maxReplaysRunning).toBe(100);
    expect(result.processed).toBe(150);
    expect(result.upserts).toBe(150);
  }, 60_000);

  it('a lost pending replay ends that member failed in the audit log; the run goes on and completes', async () => {
    // The REAL replay activity, with the real file stores and a real receiver; the batch is a stub that defers
    // lines 2 and 7 the way the real one does (payload into the pending store), and line 7's file is then lost.
    const dir = await mkdtemp(path.join(tmpdir(), 'stubs-lost-'));
    const receiver = await startWebhookReceiver();
    const sender = createWebhookSender({ url: receiver.url, token: 'tok' });
    const pending = createFilePendingStore();
    const audit = createFileAuditStore();
    const paths = {
      dir,
      workFile: path.join(dir, 'work'),
      auditPath: path.join(dir, 'audit.jsonl'),
      pendingDir: path.join(dir, 'pending'),
    };
    const m = model({ batches: 2, batchSize: 5 });
    const stubs = stubActivities(m);
    const activities = {
      ...stubs,
      prepareBackfill: async (...args: Parameters<BackfillActivities['prepareBackfill']>) => ({
        ...(await stubs.prepareBackfill(...args)),
        paths,
      }),
      processBatch: async (input: BatchInput): Promise<BatchResult> => {
        const lines = Array.from({ length: 5 }, (_, i) => input.batch * 5 + i);
        const deferred: DeferredReplay[] = [];
        const counts = zero();
        for (const line of lines) {
          if (line !== 2 && line !== 7) {
            counts.processed++;
            counts.unchanged++;
            continue;
          }
          const memberId = `m${line}`;
          await pending.put(paths.pendingDir, {
            line,
            memberId,
            event: 'delete',
            webhookId: `msg_${String(line).padStart(32, '0')}`,
            payload: { event: 'delete', type: 'user', entity: { memberId } } as never,
            base: {
              ts: 't',
              backfill: input.backfill,
              runLabel: 'stub',
              line,
              memberId,
              outcome: 'delete',
              reason: 'not-found',
              dryRun: false,
            },
          });
          deferred.push({ line, memberId });
        }
        if (input.batch === 1) await unlink(path.join(paths.pendingDir, '7.json')); // lost before its replay runs
        return { batch: input.batch, complete: true, counts, deferred };
      },
      replayDeferred: (input: ReplayDeferredInput) =>
        replayDeferred({ audit, pending, metrics: noMetrics, target: sender, now: () => new Date() }, input),
    } as unknown as BackfillActivities;
    try {
      const result = await withActivities(activities, async (h) => (await h.result()) as BackfillResult);
      expect(result).toMatchObject({ total: 10, processed: 10, unchanged: 8, deletes: 1, failed: 1 });
      const entries = await readAudit(paths.auditPath);
      expect(entries.map((e) => [e.line, e.outcome])).toEqual(
        expect.arrayContaining([
          [2, 'delete'],
          [7, 'failed'],
        ]),
      );
      expect(entries).toHaveLength(2);
      const lost = entries.find((e) => e.line === 7)!;
      expect(lost).toMatchObject({ memberId: 'm7', stage: 'replay', delivered: false });
      expect(lost.reason).toBe(
        'the pending replay of line 7 (member m7) is missing from the pending store: not replayed',
      );
      expect(receiver.accepted().map((d) => d.memberId)).toEqual(['m2']);
    } finally {
      await sender.close();
      await receiver.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('the delete guard: every lookup a 404 pauses before any delete goes; plain resume stays paused; confirmDeletes finishes', async () => {
    const all = new Set(Array.from({ length: 40 }, (_, i) => i));
    const m = model({ batches: 4, batchSize: 10, deleteLines: all, memberDelayMs: 10 });
    const result = await withWorker(m, async (h) => {
      const paused = await waitFor('paused by the delete guard', async () => {
        const p = await progress(h);
        return p.paused ? p : undefined;
      });
      expect(paused.pauseReason).toMatch(
        /^delete guard: (\d+) of \1 decisions so far are deletes \(all of them\): check the channel and CHANNEL_API_URL, then resume with \{"confirmDeletes": true\}$/,
      );
      expect(m.deletesDelivered).toBe(0);
      expect(paused.deleteGuard).toMatchObject({ status: 'tripped', confirmedAt: null });
      expect(paused.deleteGuard!.held).toBeGreaterThanOrEqual(10);

      await h.signal(resumeSignal);
      const calls = m.batchCalls;
      await sleep(800);
      const still = await progress(h);
      expect(still.paused).toBe(true);
      expect(still.pauseReason).toMatch(/^delete guard: /);
      expect(m.batchCalls).toBe(calls);
      expect(m.deletesDelivered).toBe(0);

      await h.signal(resumeSignal, { confirmDeletes: true });
      return (await h.result()) as BackfillResult;
    });
    expect(result.processed).toBe(40);
    expect(result.deletes).toBe(40);
    expect(m.deletesDelivered).toBe(40);
    expect(m.deletesConfirmed).toBe(40); // every delete went out stamped with the confirmation
    expect(m.cleanups).toBe(1);
  }, 60_000);

  it('the delete guard: an ordinary share of deletes is held only until enough decisions are in', async () => {
    const m = model({ batches: 3, batchSize: 10, deleteLines: new Set([0, 13, 26]), memberDelayMs: 5 });
    const result = await withWorker(m, async (h) => (await h.result()) as BackfillResult);
    expect(result.deletes).toBe(3);
    expect(result.processed).toBe(30);
    expect(m.deletesDelivered).toBe(3);
    expect(m.deletesConfirmed).toBe(0);
  }, 60_000);

  it('a source that cannot be read to its end once the batches run pauses the run with the reason; resume reads it again and the run ends exact (issue 26)', async () => {
    const m = model({ batches: 3, batchSize: 5 });
    const base = stubActivities(m);
    let normaliseCalls = 0;
    let normalised = false;
    const activities = {
      ...base,
      // A long source: the preparation read only its first batch; normaliseSource writes the rest beside the batches.
      prepareBackfill: async (...args: Parameters<BackfillActivities['prepareBackfill']>) => ({
        ...(await base.prepareBackfill(...args)),
        rows: 5,
        batches: 1,
        normalising: true as const,
      }),
      normaliseSource: async () => {
        normaliseCalls++;
        if (normaliseCalls === 1)
          throw ApplicationFailure.nonRetryable('member source "/stub.csv": the disk went away', 'InvalidSource');
        normalised = true;
        return { rows: 15, batches: 3 };
      },
      // As the real batch does (activities/batch-run.ts): one beyond the end waits for the source's end, then is empty.
      processBatch: async (input: BatchInput): Promise<BatchResult> => {
        if (input.batch < m.batches) return base.processBatch(input);
        while (!normalised) {
          Context.current().heartbeat();
          await sleep(20);
        }
        return { batch: input.batch, complete: true, beyondEnd: true, counts: zero(), deferred: [] };
      },
    } as unknown as BackfillActivities;
    const result = await withActivities(activities, async (h) => {
      const paused = await waitFor('paused: the source could not be read to its end', async () => {
        const p = await progress(h);
        return p.paused ? p : undefined;
      });
      expect(paused.pauseReason).toMatch(
        /^the member source could not be read to its end: member source "\/stub.csv": the disk went away; the batches done stay done, resume reads it again$/,
      );
      expect(paused).toMatchObject({ readingSource: true, done: false });
      await h.signal(resumeSignal);
      return (await h.result()) as BackfillResult;
    });
    expect(normaliseCalls).toBe(2);
    expect(result).toMatchObject({ total: 15, processed: 15, unchanged: 15 });
  }, 60_000);

  it('no progress-only search-attribute upsert while the source is still being read: the lower bound is no total', async () => {
    // One round of 2 batches read by the preparation (10 rows: its 5% is less than a batch); the normaliser ends only
    // once 10 batches have finished.
    const m = model({ batches: 20, batchSize: 5, memberDelayMs: 2 });
    const { activities } = sourceReadBeside(m, {
      read: { rows: 10, batches: 2 },
      normalisedWhen: (source) => source.batchesDone >= 10,
      prepared: { searchAttributes: true }, // the test dev server registers them
    });
    const events = await withActivities(activities, async (h) => {
      await h.result();
      return (await h.fetchHistory()).events ?? [];
    });
    // Upserts of the run's own attributes (not patched()'s TemporalChangeVersion), before and after the normaliser's
    // completion.
    const normaliser = events.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'normaliseSource',
    )!.eventId;
    const normalisedAt = events.findIndex(
      (e) => e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() === normaliser!.toString(),
    );
    const upserts = events
      .map((e, i) => ({
        i,
        fields: Object.keys(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {}),
      }))
      .filter(({ fields }) => fields.some((f) => f !== 'TemporalChangeVersion'));
    const batchesWhileReading =
      events.slice(0, normalisedAt).filter((e) => e.activityTaskCompletedEventAttributes).length - 1; // less the preparation
    expect(batchesWhileReading).toBeGreaterThanOrEqual(8);
    // While reading: only the run's first "running". After: every 5% of 100 rows, one batch each, and "done".
    expect(upserts.filter(({ i }) => i < normalisedAt)).toHaveLength(1);
    expect(upserts.filter(({ i }) => i > normalisedAt).length).toBeGreaterThan(0);
  }, 60_000);

  it('a run still reading its source stops starting batches past twice its history threshold, then goes on (issue 26)', async () => {
    // A slow source: the normaliser ends only when the test lets it. maxHistoryEvents 40: nothing new past 80 events.
    const m = model({ batches: 60, batchSize: 2, memberDelayMs: 1, maxHistoryEvents: 40 });
    let release = false;
    const { activities, source } = sourceReadBeside(m, {
      read: { rows: 2, batches: 1 },
      normalisedWhen: () => release,
    });
    const result = await withActivities(activities, async (h) => {
      // Held: past 80 events the batches stop while the normaliser still runs (done stays the same for a second).
      // The history is asked too: on a loaded machine a second without a batch can come before the hold.
      let last = -1;
      let steadySince = Date.now();
      const held = await waitFor('the batches to stop while the source is read', async () => {
        if (source.batchesDone !== last) [last, steadySince] = [source.batchesDone, Date.now()];
        if (Date.now() - steadySince < 1_000) return undefined;
        const described = await h.describe();
        return described.historyLength >= 80 ? described : undefined;
      });
      try {
        expect(source.batchesDone).toBeLessThan(60);
        expect(held.historyLength).toBeGreaterThanOrEqual(80);
        expect(held.historyLength).toBeLessThan(80 + 60); // the batches in flight when it held, and their tasks
      } finally {
        release = true; // a failed check must not leave the worker's shutdown waiting for the normaliser
      }
      return (await h.result()) as BackfillResult;
    });
    expect(result).toMatchObject({ total: 120, processed: 120, unchanged: 120 });
    expect(result.runs).toBeGreaterThan(1);
  }, 90_000);
});
