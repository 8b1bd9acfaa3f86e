// The times a run waited for its receiver or its store (issue 28): how the report reads them from the audit log's
// waits (src/report/waits.ts) and says them (text and HTML model). Store waits of several batches through one outage
// of the store are one outage; receiver outages are the workflow's own, one each.
import { describe, expect, it } from 'vitest';
import { parseRunWaitLine, runWaitLine, waitKey, type RunWait } from '../../src/audit/run-wait';
import { renderWaits } from '../../src/report/render';
import { waitRows } from '../../src/report/html-model';
import { summarize } from '../../src/report/summary';
import { formatSeconds, summarizeWaits } from '../../src/report/waits';

const at = (minute: number, second = 0) => new Date(Date.UTC(2026, 0, 1, 0, minute, second)).toISOString();
const storeWait = (from: [number, number], to: [number, number], who: Partial<RunWait>): RunWait => ({
  kind: 'store-unavailable',
  since: at(...from),
  until: at(...to),
  ended: 'back',
  ...who,
});
const receiverWait: RunWait = {
  kind: 'receiver-unavailable',
  since: at(1),
  until: at(6),
  ended: 'answered',
  waitingReplays: 40,
  batchesLeft: 12,
};

describe('the waits of a log, summarised', () => {
  it.each<[string, RunWait[], ReturnType<typeof summarizeWaits>['store']]>([
    ['none', [], []],
    [
      'three batches through one outage of the store are one outage',
      [
        storeWait([10, 2], [10, 12], { batch: 1 }),
        storeWait([10, 0], [10, 10], { batch: 0 }),
        storeWait([10, 5], [10, 11], { line: 77 }),
      ],
      [{ since: at(10, 0), until: at(10, 12), seconds: 12, batches: 2, replays: 1 }],
    ],
    [
      'two outages apart stay two',
      [storeWait([10, 0], [10, 4], { batch: 0 }), storeWait([20, 0], [20, 8], { batch: 5 })],
      [
        { since: at(10, 0), until: at(10, 4), seconds: 4, batches: 1, replays: 0 },
        { since: at(20, 0), until: at(20, 8), seconds: 8, batches: 1, replays: 0 },
      ],
    ],
  ])('%s', (_name, waits, store) => {
    const summary = summarizeWaits(waits);
    expect(summary.store).toEqual(store);
    expect(summary.storeSeconds).toBe(store.reduce((t, o) => t + o.seconds, 0));
  });

  it('a receiver outage is kept as the workflow recorded it', () => {
    expect(summarizeWaits([receiverWait]).receiver).toEqual([
      { since: at(1), until: at(6), seconds: 300, ended: 'answered', waitingReplays: 40, batchesLeft: 12 },
    ]);
  });

  it.each([
    [4.25, '4.3 s'],
    [42, '42 s'],
    [300, '5 min 0 s'],
    [90_061, '25 h 1 min 1 s'],
  ])('%s seconds read %s', (seconds, text) => expect(formatSeconds(seconds)).toBe(text));
});

describe('a wait as a line of the JSONL log', () => {
  it('round-trips, and nothing else reads as one', () => {
    expect(parseRunWaitLine(runWaitLine(receiverWait))).toEqual(receiverWait);
    expect(parseRunWaitLine('{"wait":{"kind":"elsewhere"}}')).toBeUndefined();
    expect(parseRunWaitLine('{"wait":' + JSON.stringify(receiverWait).slice(0, 20))).toBeUndefined();
    expect(parseRunWaitLine('{"line":2,"outcome":"upsert"}')).toBeUndefined();
  });

  it('one key per wait: the batch or line that waited and when', () => {
    expect(waitKey(storeWait([1, 0], [1, 5], { batch: 0 }))).not.toBe(waitKey(storeWait([1, 0], [1, 5], { batch: 1 })));
    expect(waitKey(receiverWait)).toBe(waitKey({ ...receiverWait, until: at(9) }));
  });
});

describe('the report says them', () => {
  const summary = summarize([]);
  summary.waits = summarizeWaits([receiverWait, storeWait([10, 0], [10, 10], { batch: 0 })]);

  it('text: since when, how long, how it ended, what waited; and an outage under way', () => {
    expect(renderWaits(summary, {})).toEqual([
      '',
      'Waits for the receiver and the audit/pending store (receiver 5 min 0 s, store 10 s in all): nobody was given up on for them',
      `  receiver unavailable since ${at(1)} for 5 min 0 s, until ${at(6)}: the endpoint answered again; 40 replays waited, 12 batches not started meanwhile`,
      `  audit/pending store unavailable since ${at(10)} for 10 s, until ${at(10, 10)}: 1 batches stopped sending and waited`,
    ]);
    const ongoing = renderWaits(summarize([]), {
      receiverUnavailable: { since: at(30), waitingReplays: 7 },
      now: new Date(at(32)),
    });
    expect(ongoing.at(-1)).toBe(
      `  receiver unavailable since ${at(30)} (2 min 0 s so far), still: 7 replays wait for it`,
    );
    expect(renderWaits(summarize([]), {})).toEqual([]);
  });

  it('HTML model: one row per outage, the one under way last', () => {
    const rows = waitRows(summary, { generatedAt: at(40), receiverUnavailable: { since: at(39), waitingReplays: 3 } });
    expect(rows.map((r) => [r.what, r.lasted, r.until, r.waited])).toEqual([
      ['receiver unavailable', '5 min 0 s', at(6), '40 replays, 12 batches not started'],
      ['audit/pending store unavailable', '10 s', at(10, 10), '1 batches'],
      ['receiver unavailable', '1 min 0 s so far', null, '3 replays'],
    ]);
  });
});
