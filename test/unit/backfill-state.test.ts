import { describe, expect, it } from 'vitest';
import {
  BAD_CREDENTIALS_PAUSE,
  BackfillState,
  MAX_DEFERRED_BACKLOG,
  MAX_REPLAYS_IN_FLIGHT,
  addChannelPace,
  freshState,
  isDone,
  runCounters,
} from '../../workflows/backfill-state';
import { zeroCounters, type FieldCounts } from '../../src/domain/counters';
import { runCountersOf, zeroVerifyCounters, type VerifyCounters } from '../../src/domain/verdicts';
import type {
  BackfillOptions,
  BatchResult,
  ChannelPace,
  CarriedState,
  Counters,
  ControlAnswer,
  PreparedBackfill,
} from '../../workflows/definitions';

function prepared(batches: number, o: Partial<BackfillOptions> = {}): PreparedBackfill {
  const options: BackfillOptions = {
    source: { type: 'csv', path: '/x.csv' },
    dryRun: false,
    batchSize: 10,
    runLabel: 'r',
    parallelBatches: 2,
    rateLimit: null,
    maxHistoryEvents: 10_000,
    replayMaxAttempts: 3,
    batchHeartbeatSeconds: 20,
    target: { type: 'url' },
    only: null,
    fromPlan: null,
    ...o,
  };
  return {
    options,
    paths: { dir: '/d', workFile: '/d/w', auditPath: '/d/a', pendingDir: '/d/p' },
    rows: batches * 10,
    batches,
  };
}

const counts = (c: Partial<Counters>): Counters => ({ ...zeroCounters(), ...c });
const fieldCounts = (email: number): FieldCounts => ({
  mobileNumber: 0,
  email,
  unsubscribeEmail: 0,
  unsubscribeTexting: 0,
});
const none = { batches: new Set<number>(), replays: new Set<number>() };

function started(batches: number, o: Partial<BackfillOptions> = {}): BackfillState {
  const run = new BackfillState(undefined);
  run.start(prepared(batches, o));
  return run;
}

describe('BackfillState: what to launch next', () => {
  it.each([
    // batches, parallel, inFlight, redo, paused, rollOver, expected
    {
      name: 'first new batch',
      batches: 3,
      parallel: 2,
      inFlight: 0,
      redo: [],
      paused: false,
      rollOver: false,
      next: 0,
    },
    {
      name: 'redo before new',
      batches: 3,
      parallel: 2,
      inFlight: 0,
      redo: [2],
      paused: false,
      rollOver: false,
      next: 2,
    },
    {
      name: 'all slots busy',
      batches: 3,
      parallel: 2,
      inFlight: 2,
      redo: [],
      paused: false,
      rollOver: false,
      next: undefined,
    },
    { name: 'paused', batches: 3, parallel: 2, inFlight: 0, redo: [], paused: true, rollOver: false, next: undefined },
    {
      name: 'rolling over',
      batches: 3,
      parallel: 2,
      inFlight: 0,
      redo: [],
      paused: false,
      rollOver: true,
      next: undefined,
    },
    {
      name: 'no batches',
      batches: 0,
      parallel: 2,
      inFlight: 0,
      redo: [],
      paused: false,
      rollOver: false,
      next: undefined,
    },
  ])('$name -> $next', ({ batches, parallel, inFlight, redo, paused, rollOver, next }) => {
    const run = started(batches, { parallelBatches: parallel });
    run.s.redo.push(...redo);
    if (paused) run.pause('p');
    expect(run.takeNextBatch(inFlight, rollOver)).toBe(next);
  });

  it('takes batches in order, then nothing', () => {
    const run = started(3);
    expect([
      run.takeNextBatch(0, false),
      run.takeNextBatch(1, false),
      run.takeNextBatch(0, false),
      run.takeNextBatch(0, false),
    ]).toEqual([0, 1, 2, undefined]);
  });

  it('stops starting batches when the deferred backlog is full', () => {
    const run = started(3);
    for (let line = 0; line < MAX_DEFERRED_BACKLOG; line++) run.s.deferred.push({ line, memberId: `m${line}` });
    expect(run.takeNextBatch(0, false)).toBeUndefined();
  });

  it('launches each deferred replay not already running, none while paused', () => {
    const run = started(1);
    run.s.deferred.push({ line: 5, memberId: 'a' }, { line: 7, memberId: 'b' });
    expect(run.replaysToLaunch({ batches: new Set(), replays: new Set([5]) }, false)).toEqual([7]);
    expect(run.replaysToLaunch(none, true)).toEqual([]);
    run.pause('x');
    expect(run.replaysToLaunch(none, false)).toEqual([]);
  });
});

describe('BackfillState: replays in flight are capped', () => {
  it.each([
    { waiting: 3, running: 0, cap: 5, capped: true, launched: 3 },
    { waiting: 10, running: 0, cap: 5, capped: true, launched: 5 },
    { waiting: 10, running: 4, cap: 5, capped: true, launched: 1 },
    { waiting: 10, running: 5, cap: 5, capped: true, launched: 0 },
    { waiting: 10, running: 5, cap: 5, capped: false, launched: 10 }, // old histories: every waiting replay
  ])(
    '$waiting waiting, $running running, cap $cap (patched: $capped) -> $launched',
    ({ waiting, running, cap, capped, launched }) => {
      const run = started(1);
      for (let line = 100; line < 100 + running; line++) run.s.deferred.push({ line, memberId: 'r' });
      for (let line = 0; line < waiting; line++) run.s.deferred.push({ line, memberId: 'w' });
      const replays = new Set(Array.from({ length: running }, (_, i) => 100 + i));
      const lines = run.replaysToLaunch({ batches: new Set(), replays }, false, () => capped, cap);
      expect(lines).toEqual(Array.from({ length: launched }, (_, i) => i));
    },
  );

  it('defaults to MAX_REPLAYS_IN_FLIGHT', () => {
    const run = started(1);
    for (let line = 0; line < MAX_REPLAYS_IN_FLIGHT + 50; line++) run.s.deferred.push({ line, memberId: 'w' });
    expect(run.replaysToLaunch(none, false)).toHaveLength(MAX_REPLAYS_IN_FLIGHT);
  });
});

describe('BackfillState: what a result changes', () => {
  const result = (r: Partial<BatchResult>): BatchResult => ({
    batch: 0,
    complete: true,
    counts: zeroCounters(),
    deferred: [],
    ...r,
  });

  it("the channel's rate limit: the latest batch's view, 429s, warnings and waits summed over batches (issue 24)", () => {
    const run = started(3);
    const pace = (p: Partial<ChannelPace>): ChannelPace => ({
      ratePerSecond: 40,
      limit: 200,
      remaining: 120,
      givingWay: false,
      rateLimited: 0,
      warnings: 0,
      waitedMs: 0,
      ...p,
    });
    run.onBatchResult(result({ channelPace: pace({ rateLimited: 1, waitedMs: 500 }) }));
    run.onBatchResult(
      result({ batch: 1, complete: false, stopReason: 'cancelled', channelPace: pace({ warnings: 2 }) }),
    );
    run.onBatchResult(result({ batch: 2, channelPace: pace({ remaining: 38, givingWay: true, waitedMs: 250 }) }));
    run.onBatchResult(result({ batch: 1 })); // from an older worker: no view
    expect(run.progress(false).channelPace).toEqual(
      pace({ remaining: 38, givingWay: true, rateLimited: 1, warnings: 2, waitedMs: 750 }),
    );
  });

  it('a complete batch adds its counts and its deferred members once', () => {
    const run = started(2);
    const d = [{ line: 3, memberId: 'm3' }];
    run.onBatchResult(result({ counts: counts({ processed: 9, upserts: 4, unchanged: 5 }), deferred: d }));
    run.onBatchResult(result({ batch: 1, complete: false, stopReason: 'cancelled', deferred: d }));
    expect(run.s.counters).toMatchObject({ processed: 9, upserts: 4, unchanged: 5 });
    expect(run.s.deferred).toEqual([{ ...d[0], batch: 0 }]);
    expect(run.s.batchesDone).toBe(1);
    expect(run.s.redo).toEqual([1]);
  });

  it.each([
    { stopReason: 'cancelled' as const, alreadyPaused: false, pause: undefined, lastError: undefined },
    {
      stopReason: 'bad-credentials' as const,
      alreadyPaused: false,
      pause: BAD_CREDENTIALS_PAUSE,
      lastError: expect.stringContaining('401'),
    },
    {
      stopReason: 'bad-credentials' as const,
      alreadyPaused: true,
      pause: undefined,
      lastError: expect.stringContaining('401'),
    },
  ])(
    'an incomplete batch ($stopReason, paused before: $alreadyPaused) runs again',
    ({ stopReason, alreadyPaused, pause, lastError }) => {
      const run = started(1);
      if (alreadyPaused) run.pause('user');
      const effect = run.onBatchResult(result({ complete: false, stopReason }));
      expect(effect.pause).toEqual(pause);
      expect(effect.lastError).toEqual(lastError);
      expect(run.s.redo).toEqual([0]);
      expect(run.s.counters.processed).toBe(0);
    },
  );

  it.each([
    { outcome: 'upsert' as const, fields: ['email' as const], want: { processed: 1, upserts: 1 }, email: 1 },
    { outcome: 'delete' as const, fields: undefined, want: { processed: 1, deletes: 1 }, email: 0 },
    { outcome: 'failed' as const, fields: undefined, want: { processed: 1, failed: 1 }, email: 0 },
  ])('a replay result $outcome is counted and leaves the deferred list', ({ outcome, fields, want, email }) => {
    const run = started(1);
    run.s.deferred.push({ line: 4, memberId: 'm' });
    run.onReplayResult(4, { line: 4, outcome, fields }, none);
    expect(run.s.counters).toMatchObject(want);
    expect(run.s.counters.fields?.email).toBe(email);
    expect(run.s.deferred).toEqual([]);
  });

  // Issue 23: a replay looked up again before it was sent ends with its fresh decision, counted once as itself,
  // and "changed on Channel Talk during the repair" beside it.
  it.each([
    { outcome: 'delete' as const, changed: true, want: { processed: 1, deletes: 1, changedDuringRepair: 1 } },
    { outcome: 'upsert' as const, changed: true, want: { processed: 1, upserts: 1, changedDuringRepair: 1 } },
    { outcome: 'unchanged' as const, changed: true, want: { processed: 1, unchanged: 1, changedDuringRepair: 1 } },
    { outcome: 'skipped' as const, changed: true, want: { processed: 1, skipped: 1, changedDuringRepair: 1 } },
    { outcome: 'upsert' as const, changed: false, want: { processed: 1, upserts: 1, failed: 0 } },
  ])('a re-checked replay ending $outcome (changed: $changed) counts once', ({ outcome, changed, want }) => {
    const run = started(1);
    run.s.deferred.push({ line: 4, memberId: 'm' });
    run.onReplayResult(4, { line: 4, outcome, ...(changed ? { changedDuringRepair: true } : {}) }, none);
    expect(run.s.counters).toMatchObject(want);
    if (!changed) expect(run.s.counters.changedDuringRepair).toBeUndefined();
    expect(run.progress(false)).toMatchObject(want);
  });

  it('without the patch (a history recorded before issue 23) a result counts the old way', () => {
    const run = started(1);
    run.s.deferred.push({ line: 4, memberId: 'm' });
    run.onReplayResult(4, { line: 4, outcome: 'unchanged', changedDuringRepair: true }, none, () => false);
    expect(run.s.counters).toMatchObject({ processed: 1, failed: 1, unchanged: 0 });
    expect(run.s.counters.changedDuringRepair).toBeUndefined();
  });
});

describe('BackfillState: a deferred line is counted once', () => {
  it.each([
    { name: 'batch still running when the replay is counted', batchRunning: true },
    { name: 'batch in the redo queue when the replay is counted', batchRunning: false },
  ])('$name: a re-report by a later attempt is dropped', ({ batchRunning }) => {
    const run = started(1);
    run.takeNextBatch(0, false);
    const d = [{ line: 1, memberId: 'm1' }];
    // First attempt paused: it reports line 1 deferred and runs again.
    run.onBatchResult({ batch: 0, complete: false, stopReason: 'cancelled', counts: zeroCounters(), deferred: d });
    const running = batchRunning
      ? { batches: new Set([0]), replays: new Set([1]) }
      : { batches: new Set<number>(), replays: new Set([1]) };
    if (batchRunning) run.takeNextBatch(0, false);
    run.onReplayResult(1, { line: 1, outcome: 'upsert' }, running);
    if (!batchRunning) expect(run.takeNextBatch(0, false)).toBe(0);
    // Second attempt read the pending list before the replay settled: line 1 again.
    run.onBatchResult({ batch: 0, complete: true, counts: counts({ processed: 9, unchanged: 9 }), deferred: d });
    expect(run.s.deferred).toEqual([]);
    expect(run.s.counters.processed).toBe(10);
    expect(run.s.countedReplays).toEqual([]); // the batch completed: nothing kept
    expect(isDone(run.s)).toBe(true);
  });

  it('without the patch (old histories) the re-reported line is replayed again, as before', () => {
    const run = started(1);
    run.takeNextBatch(0, false);
    const d = [{ line: 1, memberId: 'm1' }];
    run.onBatchResult({ batch: 0, complete: false, stopReason: 'cancelled', counts: zeroCounters(), deferred: d });
    run.takeNextBatch(0, false);
    run.onReplayResult(1, { line: 1, outcome: 'upsert' }, { batches: new Set([0]), replays: new Set([1]) });
    run.onBatchResult({ batch: 0, complete: true, counts: zeroCounters(), deferred: d }, () => false);
    expect(run.s.deferred.map((x) => x.line)).toEqual([1]);
  });

  it('a replay counted after its batch completed is not remembered (the state stays bounded)', () => {
    const run = started(1);
    run.takeNextBatch(0, false);
    run.onBatchResult({ batch: 0, complete: true, counts: zeroCounters(), deferred: [{ line: 1, memberId: 'm' }] });
    run.onReplayResult(1, { line: 1, outcome: 'delete' }, none);
    expect(run.s.countedReplays ?? []).toEqual([]);
  });
});

describe('BackfillState: pause, resume, done, continue-as-new', () => {
  it('a pause before preparation is reported, then handed to start()', () => {
    const run = new BackfillState(undefined);
    expect(run.pause('early')).toBe(false);
    expect(run.progress(true)).toMatchObject({
      paused: true,
      pauseReason: 'early',
      dryRun: true,
      done: false,
      total: 0,
    });
    expect(run.start(prepared(1))).toEqual({ reason: 'early' });
  });

  it('resume clears the pause', () => {
    const run = started(1);
    run.pause('why');
    expect(run.progress(undefined)).toMatchObject({ paused: true, pauseReason: 'why' });
    run.resume();
    expect(run.progress(undefined)).toMatchObject({ paused: false, pauseReason: null });
  });

  it.each([
    { name: 'nothing started', s: {}, done: false },
    { name: 'all batches done', s: { nextBatch: 2, batchesDone: 2 }, done: true },
    {
      name: 'a replay waits',
      s: { nextBatch: 2, batchesDone: 2, deferred: [{ line: 1, memberId: 'm' }] },
      done: false,
    },
    { name: 'a batch to redo', s: { nextBatch: 2, batchesDone: 1, redo: [1] }, done: false },
  ])('isDone: $name -> $done', ({ s, done }) => {
    const state: CarriedState = { ...freshState(prepared(2)), ...s };
    expect(isDone(state)).toBe(done);
  });

  it('finished waits for what is in flight', () => {
    const run = started(0);
    expect(run.finished(none)).toBe(true);
    expect(run.finished({ batches: new Set(), replays: new Set([1]) })).toBe(false);
  });

  it('carries everything into the next run, counting runs', () => {
    const run = started(3);
    run.takeNextBatch(0, false);
    run.onBatchResult({
      batch: 0,
      complete: true,
      counts: counts({ processed: 10, unchanged: 10 }),
      deferred: [{ line: 2, memberId: 'x' }],
    });
    const next = run.carriedForNext();
    expect(next).toMatchObject({ runs: 2, nextBatch: 1, batchesDone: 1, deferred: [{ line: 2, memberId: 'x' }] });
    const resumed = new BackfillState(next);
    expect(resumed.progress(undefined)).toMatchObject({ runs: 2, processed: 10, pendingReplays: 1, batchesDone: 1 });
  });
});

describe('BackfillState: the delete guard', () => {
  const guarded = (batches: number, o: Partial<BackfillOptions> = {}) => {
    const run = new BackfillState(undefined, { deleteGuard: true });
    run.start(prepared(batches, { maxDeleteShare: 0.5, deleteGuardMinDecisions: 10, ...o }));
    return run;
  };
  // A completed batch of 10 lines from `first`, `deletes` of them held deletes, the rest unchanged.
  const batchOf = (batch: number, deletes: number): BatchResult => ({
    batch,
    complete: true,
    counts: counts({ processed: 10 - deletes, unchanged: 10 - deletes }),
    deferred: Array.from({ length: deletes }, (_, i) => ({
      line: batch * 10 + i,
      memberId: `m${batch * 10 + i}`,
      held: true,
    })),
    decided: { decisions: 10, deletes },
  });

  it('holds deletes back until enough decisions are in, then releases them', () => {
    const run = guarded(3);
    run.takeNextBatch(0, false);
    expect(run.batchGuard()).toEqual({ decisions: 0, deletes: 0, confirmed: false });
    // A result with fewer decisions than the minimum: the held deletes wait.
    expect(run.onBatchResult({ ...batchOf(0, 2), decided: { decisions: 5, deletes: 2 } })).toEqual({});
    expect(run.guardStatus()).toBe('undecided');
    expect(run.replaysToLaunch(none, false)).toEqual([]);
    expect(run.onBatchResult(batchOf(1, 3))).toEqual({});
    expect(run.guardStatus()).toBe('cleared');
    expect(run.replaysToLaunch(none, false)).toEqual([0, 1, 10, 11, 12]);
    expect(run.batchGuard()).toEqual({ decisions: 15, deletes: 5, confirmed: false });
  });

  it('held deletes do not fill the backlog that stops new batches', () => {
    const run = guarded(3, { deleteGuardMinDecisions: 10_000 });
    for (let line = 0; line < MAX_DEFERRED_BACKLOG; line++)
      run.s.deferred.push({ line, memberId: `m${line}`, held: true });
    expect(run.takeNextBatch(0, false)).toBe(0);
    run.s.deferred.push({ line: 9999, memberId: 'x' });
    expect(run.replaysToLaunch(none, false)).toEqual([9999]); // a replay that is not a held delete is not held back
  });

  it('trips: pauses with the reason; a plain resume stays paused; confirmDeletes releases and is carried', () => {
    const run = guarded(3);
    const effect = run.onBatchResult(batchOf(0, 10));
    expect(effect.pause).toBe(
      'delete guard: 10 of 10 decisions so far are deletes (all of them): check the channel and CHANNEL_API_URL, then resume with {"confirmDeletes": true}',
    );
    run.pause(effect.pause!);
    expect(run.replaysToLaunch(none, false)).toEqual([]);
    expect(run.resume()).toEqual({ stillPaused: effect.pause });
    expect(run.progress(false)).toMatchObject({
      paused: true,
      pauseReason: effect.pause,
      deleteGuard: { decisions: 10, deletes: 10, held: 10, status: 'tripped', confirmedAt: null },
    });
    expect(run.takeNextBatch(0, false)).toBeUndefined();

    expect(run.resume('2024-11-20T00:00:00.000Z')).toEqual({ confirmed: true });
    expect(run.progress(false)).toMatchObject({
      paused: false,
      deleteGuard: { status: 'confirmed', confirmedAt: '2024-11-20T00:00:00.000Z' },
    });
    expect(run.replaysToLaunch(none, false)).toHaveLength(10);
    expect(run.batchGuard()).toEqual({
      decisions: 10,
      deletes: 10,
      confirmed: true,
      confirmedAt: '2024-11-20T00:00:00.000Z',
    });
    expect(run.deletesConfirmedAt).toBe('2024-11-20T00:00:00.000Z');
    // A second confirmation changes nothing; the next run in the chain keeps it.
    expect(run.resume('2024-11-21T00:00:00.000Z')).toEqual({ wasRunning: true });
    const next = new BackfillState(run.carriedForNext(), { deleteGuard: true });
    expect(next.guardStatus()).toBe('confirmed');
    expect(next.deletesConfirmedAt).toBe('2024-11-20T00:00:00.000Z');
  });

  it('a user pause over a tripped guard: resume keeps the guard reason', () => {
    const run = guarded(3);
    run.pause('by hand');
    expect(run.onBatchResult(batchOf(0, 10))).toEqual({}); // already paused
    expect(run.s.pauseReason).toBe('by hand');
    expect(run.resume().stillPaused).toMatch(/^delete guard: 10 of 10/);
  });

  it('trips later in the run too, once the share passes it', () => {
    const run = guarded(4);
    expect(run.onBatchResult(batchOf(0, 2))).toEqual({});
    expect(run.onBatchResult(batchOf(1, 5))).toEqual({}); // 7 of 20
    expect(run.onBatchResult(batchOf(2, 10)).pause).toMatch(
      /^delete guard: 17 of 30 decisions so far are deletes \(56\.7%\)/,
    );
  });

  it('a small run: every batch done releases what it held', () => {
    const run = guarded(1, { deleteGuardMinDecisions: 100 });
    run.takeNextBatch(0, false);
    expect(run.onBatchResult(batchOf(0, 8))).toEqual({});
    expect(run.guardStatus()).toBe('cleared');
    expect(run.replaysToLaunch(none, false)).toHaveLength(8);
  });

  it.each([
    ['a dry run', { dryRun: true }, true],
    ['a history recorded before the guard (patch off)', {}, false],
  ])('off in %s: never trips, nothing held, no guard sent to batches', (_name, o, on) => {
    const run = new BackfillState(undefined, { deleteGuard: on });
    run.start(prepared(2, { deleteGuardMinDecisions: 1, ...o }));
    expect(run.onBatchResult(batchOf(0, 10))).toEqual({});
    expect(run.batchGuard()).toBeUndefined();
    expect(run.guardStatus()).toBeUndefined();
    expect(run.resume('2024-11-20T00:00:00.000Z')).toEqual({ wasRunning: true });
    expect(run.s.guard).toBeUndefined();
    expect(run.s.deferred.every((d) => d.held === undefined)).toBe(true);
    expect(run.progress(false).deleteGuard).toBeUndefined();
  });

  it('a confirmation sent before preparation applies once prepared', () => {
    const run = new BackfillState(undefined, { deleteGuard: true });
    expect(run.resume('2024-11-20T00:00:00.000Z')).toEqual({ confirmed: true, wasRunning: true });
    run.start(prepared(2));
    expect(run.guardStatus()).toBe('confirmed');
  });
  describe('what a pause or resume update answers', () => {
    const paused = (reason: string) => {
      const run = guarded(3);
      run.pause(reason);
      return run;
    };
    const tripped = () => {
      const run = guarded(3);
      run.pause(run.onBatchResult(batchOf(0, 10)).pause!);
      return run;
    };
    const pauseCall = (run: BackfillState) => {
      const wasPaused = run.progress(false).paused;
      run.pause('by hand');
      return run.controlAnswer({ paused: true, wasPaused });
    };
    it.each<[string, () => BackfillState, (run: BackfillState) => ControlAnswer, Partial<ControlAnswer>]>([
      ['pause a running run', () => guarded(3), pauseCall, { outcome: 'paused', paused: true, pauseReason: 'by hand' }],
      ['pause a paused run', () => paused('first'), pauseCall, { outcome: 'already-paused', paused: true }],
      [
        'resume a paused run',
        () => paused('by hand'),
        (r) => r.controlAnswer(r.resume()),
        { outcome: 'resumed', paused: false, pauseReason: null },
      ],
      [
        'resume a running run',
        () => guarded(3),
        (r) => r.controlAnswer(r.resume()),
        { outcome: 'already-running', paused: false },
      ],
      [
        'resume a run the delete guard paused',
        tripped,
        (r) => r.controlAnswer(r.resume()),
        {
          outcome: 'still-paused',
          paused: true,
          pauseReason: expect.stringMatching(/^delete guard: 10 of 10 decisions/) as unknown as string,
          deleteGuard: { decisions: 10, deletes: 10, held: 10, status: 'tripped', confirmedAt: null },
        },
      ],
      [
        'resume it confirming the deletes',
        tripped,
        (r) => r.controlAnswer(r.resume('2024-11-20T00:00:00.000Z')),
        { outcome: 'resumed', paused: false, deletesConfirmed: true },
      ],
      [
        'pause before the preparation ends',
        () => new BackfillState(undefined, { deleteGuard: true }),
        pauseCall,
        { outcome: 'paused', paused: true, pauseReason: 'by hand' },
      ],
      [
        'resume before the preparation ends, after a pause',
        () => {
          const run = new BackfillState(undefined, { deleteGuard: true });
          run.pause('early');
          return run;
        },
        (r) => r.controlAnswer(r.resume()),
        { outcome: 'resumed', paused: false },
      ],
    ])('%s', (_name, make, call, expected) => {
      expect(call(make())).toMatchObject(expected);
    });
  });
});

describe('BackfillState: a verify run counts verdicts', () => {
  const verifyAfter = { auditPath: '/d/repair/audit.jsonl' };
  const verify = (o: Partial<VerifyCounters>): VerifyCounters => ({ ...zeroVerifyCounters(), ...o });
  // What a verify batch of release 1.0 returned (saved histories): its verdicts counted under their outcomes.
  const legacy = counts({ processed: 10, unchanged: 6, upserts: 2, deletes: 1, failed: 1, fields: fieldCounts(2) });
  const own = verify({
    processed: 10,
    verdicts: { repaired: 6, 'still differs': 2, 'still present': 1, 'changed since': 0, failed: 1 },
    stillDiffers: fieldCounts(2),
  });
  // What progress and the result have shown for that run since 1.0: both its verdicts and the same as outcomes.
  const shown = {
    processed: 10,
    unchanged: 6,
    upserts: 2,
    deletes: 1,
    skipped: 0,
    failed: 1,
    fields: fieldCounts(2),
    verify: own.verdicts,
  };

  it.each([
    { name: "this release's result (its own counters)", result: { counts: runCountersOf(own), verify: own } },
    { name: 'a 1.0 result from a saved history (outcome counts only)', result: { counts: legacy } },
  ])('counts $name in the verify counters; progress shows what 1.0 showed', ({ result }) => {
    const run = started(2, { verifyAfter, dryRun: true });
    run.takeNextBatch(0, false);
    run.onBatchResult({ batch: 0, complete: true, deferred: [], ...result });
    expect(run.s.verify).toEqual(own);
    expect(run.s.counters).toEqual(zeroCounters());
    expect(run.progress(true)).toMatchObject(shown);
    expect(runCounters(run.s)).toEqual(runCountersOf(own));
  });

  it('a repair has no verify counters, and its progress no verdicts', () => {
    const run = started(1);
    run.takeNextBatch(0, false);
    run.onBatchResult({ batch: 0, complete: true, deferred: [], counts: legacy });
    expect(run.s.verify).toBeUndefined();
    expect(run.progress(false).verify).toBeUndefined();
    expect(run.progress(false)).toMatchObject({ processed: 10, upserts: 2 });
  });

  it('state a 1.0 verify run carried over (verdicts in its counters) moves to the verify counters', () => {
    const carried: CarriedState = { ...freshState(prepared(3, { verifyAfter, dryRun: true })), counters: legacy };
    delete carried.verify;
    const resumed = new BackfillState(carried);
    expect(resumed.s.verify).toEqual(own);
    expect(resumed.progress(true)).toMatchObject(shown);
    // And this release's carried state is taken as it is.
    expect(new BackfillState(resumed.carriedForNext()).s.verify).toEqual(own);
  });
});

describe('BackfillState: progress names the channel', () => {
  it.each([
    { channel: { id: 'ch-1', name: 'Acme' }, expected: { id: 'ch-1', name: 'Acme' } },
    { channel: undefined, expected: null }, // prepared before the channel check existed
  ])('prepared with $channel -> $expected', ({ channel, expected }) => {
    const run = new BackfillState(undefined);
    expect(run.progress(false).channel).toBeNull(); // before the preparation
    run.start({ ...prepared(1), ...(channel ? { channel } : {}) });
    expect(run.progress(false).channel).toEqual(expected);
  });
});

describe('BackfillState: the receiver down for everyone', () => {
  const SINCE = '2026-12-06T10:00:00.000Z';
  const at = (seconds: number) => Date.parse(SINCE) + seconds * 1000;
  const stopped = (batch: number, deferredLines: number[]): BatchResult => ({
    batch,
    complete: false,
    stopReason: 'receiver-unavailable',
    receiverUnavailableSince: SINCE,
    counts: zeroCounters(),
    deferred: deferredLines.map((line) => ({ line, memberId: `m-${line}` })),
  });

  it('a batch that stops for it: no batch starts, one replay probes, progress shows it', () => {
    const run = started(5);
    expect(run.takeNextBatch(0, false)).toBe(0);
    expect(run.onBatchResult(stopped(0, [3, 4, 5]))).toEqual({ receiverDown: SINCE });
    expect(run.takeNextBatch(0, false)).toBeUndefined();
    expect(run.replaysToLaunch(none, false)).toEqual([3]);
    expect(run.replaysToLaunch({ batches: new Set(), replays: new Set([3]) }, false)).toEqual([]);
    expect(run.progress(false).receiverUnavailable).toEqual({ since: SINCE, waitingReplays: 3 });
    // A second report changes nothing (the outage started at the first).
    expect(run.receiverUnavailable('2026-12-06T11:00:00.000Z')).toEqual({});
  });

  it('the probe delivered: the run carries on by itself', () => {
    const run = started(5);
    run.takeNextBatch(0, false);
    run.onBatchResult(stopped(0, [3, 4, 5]));
    run.onReplayResult(3, { line: 3, outcome: 'upsert' }, none);
    expect(run.progress(false).receiverUnavailable).toBeUndefined();
    expect(run.replaysToLaunch(none, false)).toEqual([4, 5]);
    expect(run.takeNextBatch(0, false)).toBe(0); // the stopped batch, redone
  });

  it('nothing left to probe with: batches find out', () => {
    const run = started(5);
    run.receiverUnavailable(SINCE);
    expect(run.replaysToLaunch(none, false)).toEqual([]);
    expect(run.progress(false).receiverUnavailable).toBeUndefined();
    expect(run.takeNextBatch(0, false)).toBe(0);
  });

  it.each([
    // receiverOutagePauseSeconds, seconds since, expired, due in ms
    [undefined, 3_600, false, 23 * 3_600_000],
    [undefined, 24 * 3_600, true, 0],
    [60, 59, false, 1_000],
    [60, 60, true, 0],
  ])('horizon %s s, down for %i s: pauses %s', (horizon, seconds, expired, dueMs) => {
    const run = started(5, horizon === undefined ? {} : { receiverOutagePauseSeconds: horizon });
    run.receiverUnavailable(SINCE);
    const reason = run.receiverOutageExpired(at(seconds));
    expect(reason !== null).toBe(expired);
    if (reason) expect(reason).toMatch(/^receiver unavailable since 2026-12-06T10:00:00.000Z \(more than \d+ s\)/);
    expect(run.receiverOutageDueInMs(at(seconds))).toBe(dueMs);
  });

  it('paused for it, then resumed: the endpoint is tried afresh', () => {
    const run = started(5, { receiverOutagePauseSeconds: 60 });
    run.receiverUnavailable(SINCE);
    run.pause(run.receiverOutageExpired(at(61)));
    expect(run.receiverOutageExpired(at(120))).toBeNull(); // paused: no second pause
    run.resume();
    expect(run.progress(false)).toMatchObject({ paused: false });
    expect(run.progress(false).receiverUnavailable).toBeUndefined();
    expect(run.takeNextBatch(0, false)).toBe(0);
  });

  it('no outage: no wake-up is due', () => {
    expect(started(2).receiverOutageDueInMs(at(0))).toBeUndefined();
  });

  it('the outage as a wait for the audit log: since, until, what waited; once only after a pause for it', () => {
    const run = started(5, { receiverOutagePauseSeconds: 60 });
    expect(run.receiverWait('answered', at(1))).toBeUndefined();
    run.takeNextBatch(0, false);
    run.onBatchResult(stopped(0, [3, 4, 5]));
    expect(run.receiverWait('paused', at(61))).toEqual({
      kind: 'receiver-unavailable',
      since: SINCE,
      until: new Date(at(61)).toISOString(),
      ended: 'paused',
      waitingReplays: 3,
      batchesLeft: 5,
    });
    run.receiverWaitRecorded();
    run.pause(run.receiverOutageExpired(at(61)));
    // Still shown while paused, but recorded already: a resume does not record it again.
    expect(run.progress(false).receiverUnavailable).toBeDefined();
    expect(run.receiverWait('resumed', at(90))).toBeUndefined();
  });
});

describe("addChannelPace: the run sums each worker pacer's latest totals once", () => {
  const view = (pacer: string | undefined, rateLimited: number, warnings = 0, waitedMs = 0): ChannelPace => ({
    ratePerSecond: 10,
    limit: 100,
    remaining: 50,
    givingWay: false,
    rateLimited,
    warnings,
    waitedMs,
    ...(pacer ? { pacer } : {}),
  });
  it.each<[string, ChannelPace[], { rateLimited: number; warnings: number; waitedMs: number }]>([
    // Four batches side by side on one worker report the same cumulative totals: counted once, not four times.
    [
      'four batches of one worker',
      [view('w1', 5), view('w1', 5), view('w1', 7), view('w1', 7)],
      { rateLimited: 7, warnings: 0, waitedMs: 0 },
    ],
    [
      'two workers',
      [view('w1', 5, 1, 100), view('w2', 3, 2, 50), view('w1', 6, 1, 120)],
      { rateLimited: 9, warnings: 3, waitedMs: 170 },
    ],
    // A late result of an earlier batch carries smaller totals: the largest seen stays.
    ['results out of order', [view('w1', 8), view('w1', 6)], { rateLimited: 8, warnings: 0, waitedMs: 0 }],
    [
      'a restarted worker is a new pacer',
      [view('w1', 8), view('w1b', 2)],
      { rateLimited: 10, warnings: 0, waitedMs: 0 },
    ],
    [
      'results without a pacer are added as they are',
      [view(undefined, 2), view(undefined, 3)],
      { rateLimited: 5, warnings: 0, waitedMs: 0 },
    ],
  ])('%s', (_name, results, expected) => {
    const s: Pick<CarriedState, 'channelPace' | 'paceTotals'> = {};
    for (const r of results) addChannelPace(s, r);
    expect(s.channelPace).toMatchObject(expected);
    expect(s.channelPace).not.toHaveProperty('pacer');
  });
});

describe('BackfillState: the source still being read (issue 26, patch prepare-overlap-v1)', () => {
  // The preparation read 2 batches' worth (a lower bound); the source turns out to hold 3 batches and 5 rows.
  const reading = (o: Partial<BackfillOptions> = {}, guard = false) => {
    const run = new BackfillState(undefined, { deleteGuard: guard });
    run.start({ ...prepared(2, o), normalising: true });
    return run;
  };
  const complete = (batch: number, processed = 10): BatchResult => ({
    batch,
    complete: true,
    counts: counts({ processed, unchanged: processed }),
    deferred: [],
    decided: { decisions: processed, deletes: 0 },
  });
  const beyond = (batch: number): BatchResult => ({ ...complete(batch, 0), beyondEnd: true });

  it('launches batches past the lower bound; one beyond the end counts nothing; done once the totals are in', () => {
    const run = reading();
    expect([0, 1, 2, 3].map(() => run.takeNextBatch(0, false))).toEqual([0, 1, 2, 3]);
    expect(run.progress(false)).toMatchObject({ total: 20, readingSource: true, done: false });
    for (const b of [0, 1, 2]) run.onBatchResult(complete(b, b === 2 ? 5 : 10));
    run.onBatchResult(beyond(3));
    expect(run.s.batchesDone).toBe(3);
    expect(run.finished(none)).toBe(false); // every batch so far is done, but the source is not read to its end
    run.onNormalised({ rows: 25, batches: 3 });
    expect(run.takeNextBatch(0, false)).toBeUndefined();
    expect(run.progress(false)).toMatchObject({
      total: 25,
      batchesDone: 3,
      batchesTotal: 3,
      processed: 25,
      done: true,
    });
    expect(run.progress(false).readingSource).toBeUndefined();
    expect(run.finished(none)).toBe(true);
  });

  it('a batch beyond the end cancelled by a pause is not run again, before or after the totals are in', () => {
    const run = reading();
    for (let i = 0; i < 5; i++) run.takeNextBatch(0, false);
    run.onBatchCancelled(3);
    run.onNormalised({ rows: 25, batches: 3 });
    run.onBatchCancelled(4);
    run.onBatchCancelled(2);
    expect(run.s.redo).toEqual([2]);
  });

  it('the delete guard does not count "every batch done" until the source is read to its end', () => {
    const run = reading({ deleteGuardMinDecisions: 100, maxDeleteShare: 0.5 }, true);
    run.takeNextBatch(0, false);
    run.takeNextBatch(0, false);
    run.onBatchResult(complete(0));
    run.onBatchResult(complete(1));
    // Two batches of the lower bound done, 20 decisions: not enough to decide, and more batches may come.
    expect(run.guardStatus()).toBe('undecided');
    run.onNormalised({ rows: 20, batches: 2 });
    expect(run.guardStatus()).toBe('cleared');
  });
});
