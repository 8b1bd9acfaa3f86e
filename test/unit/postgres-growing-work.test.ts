// What a worker makes of the PostgreSQL work set's marks (src/store/postgres-growing-work.ts): whether a batch is
// readable, beyond the end, or still waiting for its rows, and how many rows a readable batch must hold.
import { describe, expect, it } from 'vitest';
import { availabilityOf, rowsOfBatch, type WorkSetMark } from '../../src/store/postgres-growing-work';

const growing = (written: number | undefined): WorkSetMark => ({ total: undefined, written });
const complete = (total: number, written?: number): WorkSetMark => ({ total, written });

describe('availabilityOf and rowsOfBatch', () => {
  it.each<[string, WorkSetMark, number, number, string, number | undefined]>([
    ['nothing committed yet (the normaliser not started)', growing(undefined), 100, 0, 'waiting', undefined],
    ['no row committed', growing(0), 100, 0, 'waiting', undefined],
    ['the first batch whole', growing(100), 100, 0, 'ready', 100],
    ['the next batch not whole', growing(100), 100, 1, 'waiting', undefined],
    ['commits not on batch boundaries: batch 2 of 7 within 1000 rows', growing(1_000), 7, 2, 'ready', 7],
    ['commits not on batch boundaries: batch 142 ends at row 1001', growing(1_000), 7, 142, 'waiting', undefined],
    ['batch 141 ends at row 994', growing(1_000), 7, 141, 'ready', 7],
    ['complete: the short last batch', complete(250, 250), 100, 2, 'ready', 50],
    ['complete: beyond its end', complete(250, 250), 100, 3, 'beyond', undefined],
    ['complete without a growth row (prepared whole)', complete(250), 100, 1, 'ready', 100],
    ['complete and empty', complete(0), 100, 0, 'beyond', undefined],
    ['complete: the summary counts, not a lagging mark', complete(1_200, 1_000), 100, 11, 'ready', 100],
  ])('%s', (_name, mark, batchSize, batch, availability, rows) => {
    expect(availabilityOf(mark, batchSize, batch)).toBe(availability);
    expect(rowsOfBatch(mark, batchSize, batch)).toBe(rows);
  });
});
