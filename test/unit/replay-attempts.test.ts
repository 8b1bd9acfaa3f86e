import { describe, expect, it } from 'vitest';
import { afterRefusal, deliveryAttempt, refusedAttempts } from '../../activities/replay-attempts';

describe('replay attempts: refused ones do not count', () => {
  it.each([
    [undefined, 0],
    [null, 0],
    [{}, 0],
    [{ done: 40 }, 0], // a batch's progress details, not a replay's
    [{ refused: 2 }, 2],
    [{ refused: -1 }, 0],
    [{ refused: 1.5 }, 0],
    [{ refused: '3' }, 0],
  ])('refusedAttempts(%j) = %i', (details, n) => {
    expect(refusedAttempts(details)).toBe(n);
  });

  it.each([
    [undefined, { refused: 1 }],
    [{ refused: 1 }, { refused: 2 }],
    [{ something: 'else' }, { refused: 1 }],
    // an attempt that sent and could not record keeps that for the next, whatever refuses in between
    [
      { refused: 1, sent: { line: 9 } },
      { refused: 2, sent: { line: 9 } },
    ],
  ])('afterRefusal(%j) = %j', (details, next) => {
    expect(afterRefusal(details)).toEqual(next);
  });

  it.each([
    [1, undefined, 1],
    [4, undefined, 4],
    [4, { refused: 3 }, 1], // three refusals, then the first real try
    [6, { refused: 2 }, 4],
    [2, { refused: 5 }, 1], // never below 1, whatever the details say
  ])('attempt %i with %j is delivery attempt %i', (attempt, details, n) => {
    expect(deliveryAttempt(attempt, details)).toBe(n);
  });
});
