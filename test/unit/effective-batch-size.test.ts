import { describe, expect, it } from 'vitest';
import { effectiveBatchSize, effectiveParallelBatches, RATE_BATCH_SECONDS } from '../../activities/prepare';
import { parseBackfillInput } from '../../src/workflow-input';

describe('effectiveBatchSize: batchSize is an upper bound; small sources are cut into parallelBatches batches', () => {
  it.each([
    // rows, batchSize, parallelBatches, rate (undefined = none), expected
    ['plenty of rows: batchSize as asked', 1_000_000, 500, 4, undefined, 500],
    ['exactly parallelBatches full batches', 2_000, 500, 4, undefined, 500],
    ['one row short of that', 1_999, 500, 4, undefined, 500],
    ['600 rows, 4 slots of 500: four batches of 150', 600, 500, 4, undefined, 150],
    ['300 rows, 100 x 2 asked: unchanged', 300, 100, 2, undefined, 100],
    ['uneven split rounds up (no fifth batch)', 10, 500, 4, undefined, 3],
    ['fewer rows than slots: one row per batch', 3, 500, 4, undefined, 1],
    ['one slot: batchSize as asked', 600, 500, 1, undefined, 500],
    ['an empty work file still gets a valid size', 0, 500, 4, undefined, 1],
    // Product defaults (1000 x 4) without a budget: large sources get the cheapest size, small ones spread.
    ['defaults, 20,000 rows, no budget: 20 batches of 1000', 20_000, 1000, 4, undefined, 1000],
    ['defaults, 1,000,000 rows, no budget: 1000', 1_000_000, 1000, 4, undefined, 1000],
    ['defaults, the 300-row example: four batches of 75', 300, 1000, 4, undefined, 75],
    // Under a budget a batch holds about RATE_BATCH_SECONDS of its share R / parallelBatches.
    ['R=10, 4 slots, large source: 2.5/s x 60 s = 150', 1_000_000, 1000, 4, 10, 150],
    ['R=100, 4 slots: 25/s x 60 s = 1500, capped at 1000', 1_000_000, 1000, 4, 100, 1000],
    ['R=10, 600 rows: 150 (= the even split too)', 600, 1000, 4, 10, 150],
    ['R=100, 6,000 rows: 8 batches of 750 (two full rounds), not 6 of 1000', 6_000, 1000, 4, 100, 750],
    ['R=200, 12,000 rows: 12 batches of 1000 (three rounds)', 12_000, 1000, 4, 200, 1000],
    ['R=10, 1,000 rows: 8 batches of 125 (two rounds of 4), not 7 of 150', 1_000, 1000, 4, 10, 125],
    ['R=0.01: at least one member per batch', 1_000, 1000, 4, 0.01, 1],
    ['R=10 but batchSize 20 asked: 20', 1_000, 20, 4, 10, 20],
  ])('%s', (_label, rows, batchSize, parallelBatches, rate, expected) => {
    const size = effectiveBatchSize(rows, batchSize, parallelBatches, rate);
    expect(size).toBe(expected);
    // Never more batches than needed to give every slot one, never a batch above batchSize.
    expect(size).toBeLessThanOrEqual(batchSize);
    if (rows > 0 && rate === undefined)
      expect(Math.ceil(rows / size)).toBeLessThanOrEqual(Math.max(parallelBatches, Math.ceil(rows / batchSize)));
    if (rate !== undefined && rows > 0) {
      // Under a budget: never longer than about RATE_BATCH_SECONDS at the batch's share, and whole rounds of
      // parallelBatches batches (the last batch may be short by less than one member per batch).
      expect(size).toBeLessThanOrEqual(Math.max(1, Math.ceil((rate / parallelBatches) * RATE_BATCH_SECONDS)));
      const batches = Math.ceil(rows / size);
      if (rows >= parallelBatches && size > 1)
        expect(batches % parallelBatches === 0 || batches * size - rows < batches).toBe(true);
    }
  });

  it('the input defaults are the measured fast configuration, 1000 x 4', () => {
    const { options } = parseBackfillInput({ source: { type: 'csv', path: '/x.csv' } }, 'wf');
    expect([options.batchSize, options.parallelBatches]).toEqual([1000, 4]);
    expect(effectiveBatchSize(20_000, options.batchSize, options.parallelBatches)).toBe(1000);
  });
});

describe('effectiveParallelBatches: under a budget, one batch per memberConcurrency lookups a second', () => {
  it.each([
    // label, parallelBatches asked, rate, memberConcurrency, expected
    ['no budget: as asked', 4, undefined, 16, 4],
    ["Channel Talk's 10/s: one batch (16 members in flight use it all)", 4, 10, 16, 1],
    ['16/s: still one', 4, 16, 16, 1],
    ['25/s: two', 4, 25, 16, 2],
    ['60/s: four', 4, 60, 16, 4],
    ['100/s: four, the upper bound asked', 4, 100, 16, 4],
    ['100/s with 2 asked: two', 2, 100, 16, 2],
    ['a tiny budget: at least one', 4, 0.01, 16, 1],
    ['memberConcurrency 1, 10/s: the four asked', 4, 10, 1, 4],
  ])('%s', (_label, parallelBatches, rate, memberConcurrency, expected) => {
    expect(effectiveParallelBatches(parallelBatches, rate, memberConcurrency)).toBe(expected);
  });
});
