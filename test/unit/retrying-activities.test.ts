import { describe, expect, it } from 'vitest';
import { retryingActivities } from '../../src/cli/run-state';

// `webhook-backfill status`: the pending activities whose last attempt failed, from the workflow's description.
describe('retryingActivities', () => {
  it.each([
    ['no pending activities', undefined, []],
    ['pending, never failed', [{ activityType: { name: 'processBatch' }, attempt: 1, lastFailure: null }], []],
    [
      'a refused batch',
      [
        {
          activityType: { name: 'processBatch' },
          attempt: 3,
          lastWorkerIdentity: '7@host',
          lastFailure: { message: 'worker 7@host has no WEBHOOK_URL' },
        },
      ],
      [{ activity: 'processBatch', attempt: 3, worker: '7@host', message: 'worker 7@host has no WEBHOOK_URL' }],
    ],
    [
      'no identity, no type',
      [{ attempt: 2, lastWorkerIdentity: '', lastFailure: { message: 'boom' } }],
      [{ activity: 'activity', attempt: 2, worker: null, message: 'boom' }],
    ],
  ])('%s', (_name, pending, expected) => {
    expect(retryingActivities(pending)).toEqual(expected);
  });
});
