import { describe, expect, it } from 'vitest';
import {
  HOLD_AT_MOST,
  holdsForNormaliser,
  rollOverStops,
  type ReadingAtRollOver,
} from '../../workflows/backfill-state';

describe('holdsForNormaliser: nothing new past twice the threshold, at most 9,000 events, while the source is read', () => {
  it.each([
    // historyLength, maxHistoryEvents, normalising, holds
    [9_999, 5_000, false, false], // source read: the run continues as new instead
    [9_999, 5_000, true, true], // capped at HOLD_AT_MOST, not 10,000
    [9_000, 5_000, true, true],
    [8_999, 5_000, true, false],
    [7_202, 5_000, true, false], // the file store's 10M run: its normaliser ended first
    [400, 200, true, true], // twice a small threshold
    [399, 200, true, false],
    [9_000, 9_000, true, true], // the largest threshold allowed: held at it
    [8_999, 9_000, true, false],
  ])('%i events, threshold %i, reading %s: %s', (historyLength, maxHistoryEvents, normalising, holds) => {
    expect(holdsForNormaliser(historyLength, maxHistoryEvents, normalising)).toBe(holds);
  });

  it("holds below Temporal's 10,240-event warning", () => {
    expect(HOLD_AT_MOST).toBeLessThan(10_240);
  });
});

describe('rollOverStops: what a run due to continue as new stops, while its source is read or not', () => {
  it.each<[boolean, boolean, ReadingAtRollOver, boolean, boolean, boolean]>([
    // due, normalising, reading, rollOver, noNewWork, stopNormaliser
    [false, false, 'wait', false, false, false], // not due: everything goes on
    [false, true, 'continue', false, false, false], // not due while reading: the normaliser goes on too
    [false, true, 'hold', false, false, false],
    [true, false, 'wait', true, true, false], // source read: continue as new once what is in flight ends
    [true, false, 'continue', true, true, false], // no normaliser to stop
    [true, true, 'continue', true, true, true], // continuing as new mid-read (not wired): the next run reads on
    [true, true, 'hold', false, true, false], // history-hold-while-normalising-v1, past its threshold: held
    [true, true, 'wait', false, false, false], // before both patches: batches go on, the run waits for the source
  ])(
    'due %s, reading %s (%s): rollOver %s, noNewWork %s, stopNormaliser %s',
    (due, normalising, reading, rollOver, noNewWork, stopNormaliser) => {
      expect(rollOverStops(due, normalising, reading)).toEqual({ rollOver, noNewWork, stopNormaliser });
    },
  );
});
