import { describe, expect, it } from 'vitest';
import {
  progressStep,
  searchAttributesDue,
  type SearchAttributeMoment,
} from '../../workflows/search-attribute-upserts';

// 1,000,000 rows: the step is 50,000 members once the total is known. While the source is still being read the total
// is one round of batches (4 x 500 = 2,000 rows), whose 5% (100) a batch of 500 passes every time.
const known = { total: 1_000_000, totalKnown: true };
const reading = { total: 2_000, totalKnown: false };
const at = (m: Partial<SearchAttributeMoment>): SearchAttributeMoment => ({
  status: 'running',
  lastStatus: 'running',
  processed: 0,
  lastPublishedProcessed: 0,
  ...known,
  ...m,
});

describe('searchAttributesDue', () => {
  const rows: [string, SearchAttributeMoment, boolean, boolean][] = [
    // [case, moment, due under the patch, due before it]
    ['the first publish of a run', at({ lastStatus: undefined }), true, true],
    ['paused', at({ status: 'paused' }), true, true],
    ['resumed', at({ lastStatus: 'paused' }), true, true],
    ['done, nothing new', at({ status: 'done', lastStatus: 'done' }), true, true],
    ['known total, less than 5% since', at({ processed: 49_999 }), false, false],
    ['known total, 5% since', at({ processed: 60_000, lastPublishedProcessed: 10_000 }), true, true],
    ['reading, a batch since', at({ ...reading, processed: 500 }), false, true],
    ['reading, many batches since', at({ ...reading, processed: 40_000 }), false, true],
    ['reading, less than the lower bound step', at({ ...reading, processed: 99 }), false, false],
    ['reading, paused', at({ ...reading, status: 'paused', processed: 500 }), true, true],
    ['reading, resumed', at({ ...reading, lastStatus: 'paused', processed: 500 }), true, true],
    ['read to its end: the real total', at({ processed: 50_000 }), true, true],
    ['an empty source', at({ total: 0, processed: 1 }), true, true],
  ];
  it.each(rows)('%s', (_, moment, patched, before) => {
    expect(searchAttributesDue(moment, () => true)).toBe(patched);
    expect(searchAttributesDue(moment, () => false)).toBe(before);
  });

  it('asks the patch only when its answer decides', () => {
    let asked = 0;
    const ask = () => (asked++, true);
    for (const [, moment] of rows) searchAttributesDue(moment, ask);
    expect(asked).toBe(2); // the two rows "reading, ... since" a step or more
  });
});

describe('progressStep', () => {
  it.each([
    [0, 1],
    [19, 1],
    [20, 1],
    [2_000, 100],
    [1_000_000, 50_000],
  ])('%i rows: %i', (total, step) => expect(progressStep(total)).toBe(step));
});
