import { describe, expect, it } from 'vitest';
import { planDrift } from '../../src/domain/plan-drift';
import type { Decision, PlannedDecision } from '../../src/domain/types';

describe('planDrift', () => {
  const cases: [string, PlannedDecision, Decision, string | undefined][] = [
    [
      'same upsert, same fields',
      { action: 'upsert', fields: ['email'] },
      { action: 'upsert', fields: ['email'] },
      undefined,
    ],
    [
      'same upsert, fields in another order',
      { action: 'upsert', fields: ['email', 'mobileNumber'] },
      { action: 'upsert', fields: ['mobileNumber', 'email'] },
      undefined,
    ],
    [
      'upsert with another field now',
      { action: 'upsert', fields: ['email'] },
      { action: 'upsert', fields: ['email', 'unsubscribeEmail'] },
      'changed since the plan: planned upsert [email], now upsert [email, unsubscribeEmail]',
    ],
    [
      'upsert now unchanged',
      { action: 'upsert', fields: ['email'] },
      { action: 'unchanged' },
      'changed since the plan: planned upsert [email], now unchanged',
    ],
    [
      'upsert now deleted',
      { action: 'upsert', fields: ['email'] },
      { action: 'delete', reason: 'not-found' },
      'changed since the plan: planned upsert [email], now delete (not-found)',
    ],
    ['same delete', { action: 'delete', reason: 'unified' }, { action: 'delete', reason: 'unified' }, undefined],
    [
      'delete for another reason',
      { action: 'delete', reason: 'unified' },
      { action: 'delete', reason: 'not-found' },
      'changed since the plan: planned delete (unified), now delete (not-found)',
    ],
    [
      'delete now upsert',
      { action: 'delete', reason: 'not-found' },
      { action: 'upsert', fields: ['email'] },
      'changed since the plan: planned delete (not-found), now upsert [email]',
    ],
    [
      'a failed lookup is not drift (recorded as failed instead)',
      { action: 'upsert', fields: ['email'] },
      { action: 'failed', reason: 'HTTP 503 after 5 attempts' },
      undefined,
    ],
  ];
  it.each(cases)('%s', (_name, planned, now, want) => {
    expect(planDrift(planned, now)).toBe(want);
  });
});
