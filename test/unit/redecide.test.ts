import { describe, expect, it } from 'vitest';
import { redecide, type WaitingReplay } from '../../src/domain/redecide';
import type { ChannelUser, FetchResult, StoredMember } from '../../src/domain/types';

// The re-decision before a replay that waited: old decision + fresh lookup -> what to send. Never a delete for a
// member Channel Talk now has, never an upsert after a 404; the fresh decision is the one sent.

const stored: StoredMember = {
  memberId: 'm-1',
  mobileNumber: '010-1234-5678',
  email: 'old@example.com',
  unsubscribeEmail: false,
  unsubscribeTexting: false,
};

const user = (over: Partial<ChannelUser> = {}): ChannelUser => ({
  memberId: 'm-1',
  type: 'member',
  mobileNumber: '+821012345678',
  email: 'new@example.com',
  unsubscribeEmail: false,
  unsubscribeTexting: false,
  ...over,
});
const found = (over: Partial<ChannelUser> = {}): FetchResult => ({ kind: 'found', user: user(over), attempts: 1 });
const notFound: FetchResult = { kind: 'not-found', status: 404, attempts: 1 };
const failed: FetchResult = { kind: 'failed', reason: 'HTTP 503 after 5 attempts', attempts: 5 };

const upsertEmail: WaitingReplay = { event: 'upsert', fields: ['email'], user: user() };
const deleteNotFound: WaitingReplay = { event: 'delete', reason: 'not-found' };
const deleteUnified: WaitingReplay = { event: 'delete', reason: 'unified', user: user({ type: 'unified' }) };

type Row = [
  name: string,
  waiting: WaitingReplay,
  fresh: FetchResult,
  action: string,
  changed: boolean,
  change?: string,
];
const ROWS: Row[] = [
  ['upsert, nothing changed: the same upsert', upsertEmail, found(), 'upsert', false],
  [
    'upsert, email changed again: upsert with the fresh values',
    upsertEmail,
    found({ email: 'newer@example.com' }),
    'upsert',
    true,
    'upsert [email]: email changed',
  ],
  [
    'upsert, consent withdrawn too: upsert of both',
    upsertEmail,
    found({ unsubscribeEmail: true }),
    'upsert',
    true,
    'upsert [email] -> upsert [email, unsubscribeEmail]',
  ],
  [
    'upsert, user deleted: a delete, never the upsert',
    upsertEmail,
    notFound,
    'delete',
    true,
    'upsert [email] -> delete (not-found)',
  ],
  [
    'upsert, user unified: a delete',
    upsertEmail,
    found({ type: 'unified' }),
    'delete',
    true,
    'upsert [email] -> delete (unified)',
  ],
  [
    'upsert, Channel Talk now holds the stored values: nothing to send',
    upsertEmail,
    found({ email: 'old@example.com' }),
    'unchanged',
    true,
    'upsert [email] -> unchanged',
  ],
  ['delete (404), still gone: the delete', deleteNotFound, notFound, 'delete', false],
  [
    'held delete, the user is back and equal: no delete',
    deleteNotFound,
    found({ email: 'old@example.com' }),
    'unchanged',
    true,
    'delete (not-found) -> unchanged',
  ],
  [
    'held delete, the user is back and differs: an upsert, never a delete',
    deleteNotFound,
    found(),
    'upsert',
    true,
    'delete (not-found) -> upsert [email]',
  ],
  ['delete (unified), still unified: the delete', deleteUnified, found({ type: 'unified' }), 'delete', false],
  [
    'delete (unified), now gone: still a delete, for another reason',
    deleteUnified,
    notFound,
    'delete',
    true,
    'delete (unified) -> delete (not-found)',
  ],
  ['a failed re-lookup decides nothing', upsertEmail, failed, 'failed', false],
];

describe('redecide', () => {
  it.each(ROWS)('%s', (_name, waiting, fresh, action, changed, change) => {
    const r = redecide(waiting, stored, fresh);
    expect(r.decision.action).toBe(action);
    expect(r.changed).toBe(changed);
    expect(r.change).toBe(change);
  });

  it('never a delete for a live member, never an upsert after a 404, whatever waited', () => {
    const waits = [upsertEmail, deleteNotFound, deleteUnified];
    const lives = [
      found(),
      found({ email: 'old@example.com' }),
      found({ unsubscribeTexting: true }),
      found({ type: 'lead' }),
    ];
    for (const w of waits) {
      for (const live of lives) expect(redecide(w, stored, live).decision.action).not.toBe('delete');
      expect(redecide(w, stored, notFound).decision.action).toBe('delete');
    }
  });

  it('onlyChangedSince applies to the fresh decision too', () => {
    const since = { time: 1_730_400_000_000, text: '2024-10-31' };
    const r = redecide(upsertEmail, stored, found({ updatedAt: 1_700_000_000_000 }), { onlyChangedSince: since });
    expect(r.decision.action).toBe('skipped');
    expect(r.changed).toBe(true);
  });
});
