import { describe, expect, it } from 'vitest';
import { HOLD_AT_MOST, holdsForNormaliser } from '../../workflows/backfill-state';

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
