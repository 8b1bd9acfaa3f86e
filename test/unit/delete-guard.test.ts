import { describe, expect, it } from 'vitest';
import { BatchGuardView, guardPauseReason, guardStatus, guardTripped, isDecision } from '../../src/domain/delete-guard';

const T = { maxDeleteShare: 0.5, minDecisions: 100 };

describe('delete guard: status over the run so far', () => {
  it.each([
    // decisions, deletes, confirmed, allBatchesDone, status
    { name: 'nothing decided yet', decisions: 0, deletes: 0, confirmed: false, done: false, status: 'undecided' },
    {
      name: '99 decided, all deletes: not enough to judge',
      decisions: 99,
      deletes: 99,
      confirmed: false,
      done: false,
      status: 'undecided',
    },
    {
      name: '100 of 100 deletes: trips',
      decisions: 100,
      deletes: 100,
      confirmed: false,
      done: false,
      status: 'tripped',
    },
    {
      name: '51 of 100: passes the share',
      decisions: 100,
      deletes: 51,
      confirmed: false,
      done: false,
      status: 'tripped',
    },
    {
      name: '50 of 100: exactly the share does not pass it',
      decisions: 100,
      deletes: 50,
      confirmed: false,
      done: false,
      status: 'cleared',
    },
    {
      name: '15% deletes (an ordinary repair)',
      decisions: 1000,
      deletes: 150,
      confirmed: false,
      done: false,
      status: 'cleared',
    },
    {
      name: 'a small run, every batch done',
      decisions: 8,
      deletes: 8,
      confirmed: false,
      done: true,
      status: 'cleared',
    },
    {
      name: 'every batch done but tripped',
      decisions: 200,
      deletes: 200,
      confirmed: false,
      done: true,
      status: 'tripped',
    },
    {
      name: 'confirmed: deletes go whatever the share',
      decisions: 100,
      deletes: 100,
      confirmed: true,
      done: false,
      status: 'confirmed',
    },
  ])('$name -> $status', ({ decisions, deletes, confirmed, done, status }) => {
    expect(guardStatus({ decisions, deletes }, T, { confirmed, allBatchesDone: done })).toBe(status);
  });

  it('trips on the given thresholds', () => {
    expect(guardTripped({ decisions: 10, deletes: 3 }, { maxDeleteShare: 0.25, minDecisions: 10 })).toBe(true);
    expect(guardTripped({ decisions: 9, deletes: 9 }, { maxDeleteShare: 0.25, minDecisions: 10 })).toBe(false);
  });

  it.each([
    ['upsert', undefined, true],
    ['delete', undefined, true],
    ['unchanged', undefined, true],
    ['skipped', ['email'], true],
    ['skipped', undefined, false],
    ['failed', ['email'], false],
  ] as const)('%s %j is a decision: %s', (outcome, fields, expected) => {
    expect(isDecision(outcome, fields)).toBe(expected);
  });

  it('says why, and how to go on', () => {
    expect(guardPauseReason({ decisions: 100, deletes: 100 })).toBe(
      'delete guard: 100 of 100 decisions so far are deletes (all of them): check the channel and CHANNEL_API_URL, then resume with {"confirmDeletes": true}',
    );
    expect(guardPauseReason({ decisions: 200, deletes: 123 })).toMatch(
      /^delete guard: 123 of 200 decisions so far are deletes \(61\.5%\)/,
    );
  });
});

describe('delete guard: a batch holds deletes by its own view', () => {
  // Feeds decisions ('d' delete, 'u' anything else) to a view; returns which deletes were held (by position).
  const run = (start: { decisions: number; deletes: number; confirmed?: boolean }, seq: string, t = T) => {
    const view = new BatchGuardView({ confirmed: false, ...start }, t);
    return [...seq].map((c) => (view.decided(c === 'd') ? 'H' : c === 'd' ? 'S' : '.')).join('');
  };

  it.each([
    {
      name: 'before enough decisions every delete is held',
      start: { decisions: 0, deletes: 0 },
      seq: 'dud',
      t: T,
      out: 'H.H',
    },
    {
      name: 'the run cleared at launch: deletes go',
      start: { decisions: 100, deletes: 10 },
      seq: 'dud',
      t: T,
      out: 'S.S',
    },
    {
      name: 'its view trips: held from then on, even when the share falls back',
      start: { decisions: 100, deletes: 50 },
      seq: 'duuuuu' + 'd',
      t: T,
      out: 'H.....H',
    },
    {
      name: 'its own decisions clear it mid-batch',
      start: { decisions: 0, deletes: 0 },
      seq: 'ud' + 'uuu',
      t: { maxDeleteShare: 0.5, minDecisions: 3 },
      out: '.H...',
    },
    {
      name: 'the view reaches the minimum with a fine share: that delete goes',
      start: { decisions: 0, deletes: 0 },
      seq: 'uud',
      t: { maxDeleteShare: 0.5, minDecisions: 3 },
      out: '..S',
    },
    {
      name: 'confirmed: nothing held',
      start: { decisions: 100, deletes: 100, confirmed: true },
      seq: 'ddd',
      t: T,
      out: 'SSS',
    },
  ])('$name', ({ start, seq, t, out }) => {
    expect(run(start, seq, t)).toBe(out);
  });

  // After the decisions `seq`: would the view let a delete go (a batch then looks its held deletes up again)?
  it.each([
    { name: 'nothing decided yet', start: { decisions: 0, deletes: 0 }, seq: '', out: false },
    { name: 'too few decisions', start: { decisions: 0, deletes: 0 }, seq: 'uud', out: false },
    { name: 'enough, fine share', start: { decisions: 0, deletes: 0 }, seq: 'uuud', out: true },
    { name: 'the run cleared at launch', start: { decisions: 100, deletes: 10 }, seq: '', out: true },
    { name: 'the run tripped at launch', start: { decisions: 100, deletes: 60 }, seq: '', out: false },
    { name: 'tripped once, share fine again', start: { decisions: 3, deletes: 2 }, seq: 'duuuuu', out: false },
    { name: 'exactly the share does not trip', start: { decisions: 0, deletes: 0 }, seq: 'udud', out: true },
    { name: 'confirmed', start: { decisions: 100, deletes: 100, confirmed: true }, seq: 'd', out: true },
  ])('releases: $name', ({ start, seq, out }) => {
    const view = new BatchGuardView({ confirmed: false, ...start }, { maxDeleteShare: 0.5, minDecisions: 4 });
    for (const c of seq) view.decided(c === 'd');
    expect(view.releases()).toBe(out);
  });

  it('every lookup a 404, 8 batches of 50 launched at once: none delivers a delete', () => {
    const views = Array.from(
      { length: 8 },
      () => new BatchGuardView({ decisions: 0, deletes: 0, confirmed: false }, T),
    );
    let sent = 0;
    for (let i = 0; i < 50; i++) for (const v of views) if (!v.decided(true)) sent++;
    expect(sent).toBe(0);
  });
});
