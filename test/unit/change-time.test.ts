import { describe, expect, it } from 'vitest';
import { recordChangeTimes, type AuditEntry } from '../../src/audit/audit-entry';
import { CHANGE_TIME_KEYS, changeTime } from '../../src/domain/change-time';
import { fieldChangeTime } from '../../src/domain/decide';
import type { ChannelUser, ComparedField } from '../../src/domain/types';

// A change time is read one way wherever it is read (src/domain/change-time.ts): a finite number is a time, anything
// else none. So the decision (fieldChangeTime) and the audit log (recordChangeTimes) agree, and the log never holds a
// time JSON would write as null (Infinity, from a JSON `1e999`).

/** [value Channel Talk may send, the time read from it] */
const VALUES: Array<[label: string, value: unknown, time: number | undefined]> = [
  ['epoch milliseconds', 1_730_500_000_000, 1_730_500_000_000],
  ['zero', 0, 0],
  ['negative', -1, -1],
  ['a fraction', 1.5, 1.5],
  ['a JSON 1e999 (Infinity)', JSON.parse('1e999') as unknown, undefined],
  ['-Infinity', -Infinity, undefined],
  ['NaN', NaN, undefined],
  ['null', null, undefined],
  ['missing', undefined, undefined],
  ['a numeric string', '1730500000000', undefined],
  ['an ISO date', '2026-12-07T00:00:00Z', undefined],
  ['a boolean', true, undefined],
  ['an object', { ms: 1 }, undefined],
  ['an array', [1], undefined],
];

/** The compared field whose change time is this key (updatedAt stands for the contact fields). */
const FIELD_OF: Record<(typeof CHANGE_TIME_KEYS)[number], ComparedField> = {
  updatedAt: 'email',
  unsubscribeEmailUpdatedAt: 'unsubscribeEmail',
  unsubscribeTextingUpdatedAt: 'unsubscribeTexting',
};

describe('change times: finite numbers only, one rule for the decision and the audit log', () => {
  it.each(VALUES)('%s', (_label, value, time) => {
    expect(changeTime(value)).toBe(time);
    for (const key of CHANGE_TIME_KEYS) {
      const user = { [key]: value } as ChannelUser;
      const entry: Partial<AuditEntry> = {};
      recordChangeTimes(entry, user);
      expect(entry, key).toEqual(time === undefined ? {} : { [key]: time });
      expect(key in entry, key).toBe(time !== undefined);
      expect(fieldChangeTime(user, FIELD_OF[key]), key).toBe(time);
      // What the audit log writes reads back as the same time, never as null.
      expect(JSON.parse(JSON.stringify(entry)) as unknown, key).toEqual(entry);
    }
  });

  it.each(VALUES)('a consent flag whose own time is %s falls back to updatedAt', (_label, value, time) => {
    const user = { updatedAt: 5, unsubscribeEmailUpdatedAt: value, unsubscribeTextingUpdatedAt: value } as ChannelUser;
    expect(fieldChangeTime(user, 'unsubscribeEmail')).toBe(time ?? 5);
    expect(fieldChangeTime(user, 'unsubscribeTexting')).toBe(time ?? 5);
    const entry: Partial<AuditEntry> = {};
    recordChangeTimes(entry, user);
    expect(entry).toEqual(
      time === undefined
        ? { updatedAt: 5 }
        : { updatedAt: 5, unsubscribeEmailUpdatedAt: time, unsubscribeTextingUpdatedAt: time },
    );
  });
});
