import { describe, expect, it } from 'vitest';
import { effectiveBatchSize } from '../../activities/prepare';

describe('effectiveBatchSize: batchSize is an upper bound; small sources are cut into parallelBatches batches', () => {
  it.each([
    // rows, batchSize, parallelBatches, expected
    ['plenty of rows: batchSize as asked', 1_000_000, 500, 4, 500],
    ['exactly parallelBatches full batches', 2_000, 500, 4, 500],
    ['one row short of that', 1_999, 500, 4, 500],
    ['600 rows, 4 slots of 500: four batches of 150', 600, 500, 4, 150],
    ['the examples with the defaults (300 rows, 100 x 2): unchanged', 300, 100, 2, 100],
    ['uneven split rounds up (no fifth batch)', 10, 500, 4, 3],
    ['fewer rows than slots: one row per batch', 3, 500, 4, 1],
    ['one slot: batchSize as asked', 600, 500, 1, 500],
    ['an empty work file still gets a valid size', 0, 500, 4, 1],
  ])('%s', (_label, rows, batchSize, parallelBatches, expected) => {
    const size = effectiveBatchSize(rows, batchSize, parallelBatches);
    expect(size).toBe(expected);
    // Never more batches than needed to give every slot one, never a batch above batchSize.
    expect(size).toBeLessThanOrEqual(batchSize);
    if (rows > 0) expect(Math.ceil(rows / size)).toBeLessThanOrEqual(Math.max(parallelBatches, Math.ceil(rows / batchSize)));
  });
});
