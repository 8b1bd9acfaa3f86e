import { describe, expect, it } from 'vitest';
import { buildDeletePayload, buildUpsertPayload, type ReplayPayload } from '../../src/webhook/payload';
import type { ChannelUser, StoredMember } from '../../src/domain/types';

const fetchedUser: ChannelUser = {
  id: 'u-1',
  channelId: 'ch-9',
  memberId: 'm-1',
  type: 'member',
  mobileNumber: '+821012345678',
  email: 'a@example.com',
  unsubscribeEmail: false,
  unsubscribeTexting: true,
  profile: { name: 'A', custom: { nested: [1, 2] } },
  tags: ['vip'],
  someFutureField: { x: 1 },
};

const unifiedUser: ChannelUser = { ...fetchedUser, type: 'unified', unifiedId: 'u-0' };

const storedFull: StoredMember = {
  memberId: 'm-2',
  mobileNumber: '010-1234-5678',
  email: 'b@example.com',
  unsubscribeEmail: true,
  unsubscribeTexting: false,
};

const storedSparse: StoredMember = {
  memberId: 'm-3',
  mobileNumber: null,
  email: 'c@example.com',
  unsubscribeEmail: null,
  unsubscribeTexting: false,
};

const storedEmpty: StoredMember = {
  memberId: 'm-4',
  mobileNumber: null,
  email: null,
  unsubscribeEmail: null,
  unsubscribeTexting: null,
};

const cases: Array<{ name: string; build: () => ReplayPayload; expected: ReplayPayload }> = [
  {
    name: 'upsert passes the user through, unknown fields included',
    build: () => buildUpsertPayload(fetchedUser),
    expected: { event: 'upsert', type: 'user', entity: { ...fetchedUser }, refers: {} },
  },
  {
    name: 'upsert with a custom entity type',
    build: () => buildUpsertPayload(fetchedUser, 'member'),
    expected: { event: 'upsert', type: 'member', entity: { ...fetchedUser }, refers: {} },
  },
  {
    name: 'delete of a unified user carries the user as fetched',
    build: () => buildDeletePayload({ user: unifiedUser, stored: storedFull }),
    expected: { event: 'delete', type: 'user', entity: { ...unifiedUser }, refers: {} },
  },
  {
    name: 'delete after 404 carries memberId and every stored field',
    build: () => buildDeletePayload({ stored: storedFull }),
    expected: { event: 'delete', type: 'user', entity: { ...storedFull }, refers: {} },
  },
  {
    name: 'delete after 404 leaves out null stored fields (false is kept)',
    build: () => buildDeletePayload({ stored: storedSparse }),
    expected: {
      event: 'delete',
      type: 'user',
      entity: { memberId: 'm-3', email: 'c@example.com', unsubscribeTexting: false },
      refers: {},
    },
  },
  {
    name: 'delete after 404 with nothing stored but the memberId',
    build: () => buildDeletePayload({ stored: storedEmpty }),
    expected: { event: 'delete', type: 'user', entity: { memberId: 'm-4' }, refers: {} },
  },
  {
    name: 'delete with a custom entity type',
    build: () => buildDeletePayload({ stored: storedEmpty }, 'member'),
    expected: { event: 'delete', type: 'member', entity: { memberId: 'm-4' }, refers: {} },
  },
];

describe('replay payloads', () => {
  it.each(cases)('$name', ({ build, expected }) => {
    const payload = build();
    expect(payload).toStrictEqual(expected);
    // What goes on the wire must be the same after a JSON round trip (no undefined or lost fields).
    expect(JSON.parse(JSON.stringify(payload))).toStrictEqual(expected);
  });

  it('does not alter the fetched user', () => {
    const before = structuredClone(fetchedUser);
    const payload = buildUpsertPayload(fetchedUser);
    payload.entity.email = 'changed';
    expect(fetchedUser).toStrictEqual(before);
  });
});
