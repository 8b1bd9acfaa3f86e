import { describe, expect, it } from 'vitest';
import { withRetries, type AttemptResult, type RetryPolicy } from '../../src/channel/retry';

// withRetries given the first attempt's outcome (the client makes a lookup's first attempt outside the loop, to
// spare its promises) must come to what the loop comes to when it makes that attempt itself.
const policy: RetryPolicy = { maxAttempts: 3, max429Waits: 2, backoff: { initialMs: 0, maxMs: 0 } };
const done = (value: string): AttemptResult<string> => ({ kind: 'done', value });
const retryable: AttemptResult<string> = { kind: 'retryable', reason: 'HTTP 503' };
const limited: AttemptResult<string> = { kind: 'rate-limited', waitMs: 0 };

describe('withRetries with the first outcome given', () => {
  const cases: Array<[string, AttemptResult<string>[], unknown]> = [
    ['done at once', [done('a')], { kind: 'done', value: 'a', attempts: 1 }],
    ['retried once', [retryable, done('b')], { kind: 'done', value: 'b', attempts: 2 }],
    ['after a 429', [limited, done('c')], { kind: 'done', value: 'c', attempts: 2 }],
    [
      'gives up after maxAttempts',
      [retryable, retryable, retryable],
      { kind: 'gave-up', reason: 'HTTP 503 after 3 attempts', attempts: 3 },
    ],
    [
      'gives up after max429Waits',
      [limited, limited, limited],
      { kind: 'gave-up', reason: 'rate limited (HTTP 429) 3 times', attempts: 3 },
    ],
  ];
  it.each(cases)('%s', async (_name, outcomes, expected) => {
    const run = async (firstGiven: boolean) => {
      const queue = [...outcomes];
      const made = firstGiven ? queue.shift()! : undefined;
      let calls = 0;
      let before = 0;
      const result = await withRetries(
        () => {
          calls += 1;
          return Promise.resolve(queue.shift()!);
        },
        policy,
        {
          ...(made ? { first: made } : {}),
          beforeAttempt: () => {
            before += 1;
            return Promise.resolve();
          },
        },
      );
      return { result, calls, before };
    };
    const itself = await run(false);
    const given = await run(true);
    expect(itself.result).toEqual(expected);
    expect(given.result).toEqual(expected);
    // The first attempt given is not made again, nor waited for by beforeAttempt.
    expect(given.calls).toBe(outcomes.length - 1);
    expect(itself.calls).toBe(outcomes.length);
    expect(given.before).toBe(itself.before - 1);
  });
});
