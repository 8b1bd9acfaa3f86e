// Checks that the example files agree with each other and with src/decide.ts. The generator derived
// expected.json from its own cases; here decide() re-derives every decision from the CSV and the users,
// so a bug on either side shows up as a disagreement.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  buildExamples,
  MAX_FETCH_ATTEMPTS,
  type Counts,
  type ExampleFiles,
  type Expected,
  type Faults,
} from '../../examples/generate';
import { decide } from '../../src/domain/decide';
import type { ChannelUser, Decision, FetchResult, OutcomeKind, StoredMember } from '../../src/domain/types';

const DIR = join(__dirname, '..', '..', 'examples');
const read = (name: keyof ExampleFiles): string => readFileSync(join(DIR, name), 'utf8');

const csvText = read('members.csv');
const records = parse(csvText, { columns: true, skip_empty_lines: true }) as Record<string, string>[];
const users = (JSON.parse(read('channel-users.json')) as { users: ChannelUser[] }).users;
const faults = JSON.parse(read('faults.json')) as Faults;
const expected = JSON.parse(read('expected.json')) as Expected;
const outcomes = expected.outcomes;
const usersById = new Map(users.map((u) => [u.memberId, u]));

const OUTAGE_START = Date.parse('2024-11-01T00:40:00+09:00');
const OUTAGE_END = Date.parse('2024-11-12T15:37:00+09:00');

/** The boolean spellings the example uses; anything else is a malformed cell. */
function parseFlag(cell: string): boolean | null | 'invalid' {
  const v = cell.trim().toLowerCase();
  if (v === '') return null;
  if (['true', '1', 'yes'].includes(v)) return true;
  if (['false', '0', 'no'].includes(v)) return false;
  return 'invalid';
}

function storedMember(record: Record<string, string>): StoredMember | 'malformed' {
  const unsubscribeEmail = parseFlag(record.unsubscribeEmail ?? '');
  const unsubscribeTexting = parseFlag(record.unsubscribeTexting ?? '');
  const memberId = (record.memberId ?? '').trim();
  if (memberId === '' || unsubscribeEmail === 'invalid' || unsubscribeTexting === 'invalid') return 'malformed';
  const text = (s: string | undefined) => (s && s.trim() !== '' ? s : null);
  return {
    memberId,
    mobileNumber: text(record.mobileNumber),
    email: text(record.email),
    unsubscribeEmail,
    unsubscribeTexting,
  };
}

function lookup(memberId: string): FetchResult {
  const user = usersById.get(memberId);
  return user ? { kind: 'found', user, attempts: 1 } : { kind: 'not-found', status: 404, attempts: 1 };
}

function expectedDecision(o: Expected['outcomes'][number]): Decision {
  switch (o.dryRunOutcome) {
    case 'upsert':
      return { action: 'upsert', fields: o.fields ?? [] };
    case 'delete':
      return { action: 'delete', reason: (o.dryRunReason ?? o.reason) as 'not-found' | 'unified' };
    case 'unchanged':
      return { action: 'unchanged' };
    default:
      throw new Error(`line ${o.line}: ${o.dryRunOutcome} is not a decision`);
  }
}

function tally(kinds: OutcomeKind[]): Counts {
  const n = (k: OutcomeKind) => kinds.filter((x) => x === k).length;
  return {
    rows: kinds.length,
    upserts: n('upsert'),
    deletes: n('delete'),
    unchanged: n('unchanged'),
    failed: n('failed'),
    skipped: n('skipped'),
  };
}

const fetchGivesUp = (memberId: string) => {
  const f = faults.channel[memberId];
  return f !== undefined && (f.reset ?? 0) + (f.status5xx ?? 0) + (f.malformed ?? 0) >= MAX_FETCH_ATTEMPTS;
};
const replayGivesUp = (memberId: string) => {
  const b = faults.receiver[memberId];
  return b !== undefined && b.times === undefined && b.status >= 400;
};

describe('example files', () => {
  it('are exactly what the generator writes (deterministic and up to date)', () => {
    const fresh = buildExamples();
    for (const name of Object.keys(fresh) as (keyof ExampleFiles)[]) expect(read(name), name).toBe(fresh[name]);
  });

  it('a different seed gives different data (the seed is really used)', () => {
    expect(buildExamples(1)['members.csv']).not.toBe(csvText);
  });

  it('members.csv keeps one record per physical line, so line = row index + 2', () => {
    const physical = csvText.trimEnd().split('\n');
    expect(physical[0]).toBe('memberId,mobileNumber,email,unsubscribeEmail,unsubscribeTexting,name');
    expect(physical.length - 1).toBe(records.length);
    expect(records.length).toBeGreaterThanOrEqual(280);
    expect(outcomes.length).toBe(records.length);
    outcomes.forEach((o, i) => {
      expect(o.line).toBe(i + 2);
      expect(o.memberId).toBe(records[i]?.memberId);
    });
  });

  it('every pure decision in expected.json is what decide() says', () => {
    let checked = 0;
    outcomes.forEach((o, i) => {
      if (!['upsert', 'delete', 'unchanged'].includes(o.dryRunOutcome)) return;
      const member = storedMember(records[i] ?? {});
      if (member === 'malformed') throw new Error(`line ${o.line} has a decision but is malformed`);
      expect(decide(member, lookup(member.memberId)), `line ${o.line} (${o.case})`).toEqual(expectedDecision(o));
      checked += 1;
    });
    expect(checked).toBeGreaterThan(270);
  });

  it('without faults the real run equals the dry run; with them, only the faults change it', () => {
    for (const o of outcomes) {
      if (o.outcome === 'failed' && o.reason === 'fetch') {
        expect(fetchGivesUp(o.memberId), `line ${o.line}`).toBe(true);
        expect(o.dryRunOutcome).toBe('failed');
      } else if (o.outcome === 'failed' && o.reason === 'replay') {
        expect(replayGivesUp(o.memberId), `line ${o.line}`).toBe(true);
        expect(['upsert', 'delete']).toContain(o.dryRunOutcome);
      } else {
        expect(o.outcome, `line ${o.line}`).toBe(o.dryRunOutcome);
        expect(o.outcome).not.toBe('failed');
        if (o.outcome !== 'skipped') expect(fetchGivesUp(o.memberId)).toBe(false);
        if (o.outcome === 'upsert' || o.outcome === 'delete') expect(replayGivesUp(o.memberId)).toBe(false);
      }
    }
  });

  it('skipped rows are exactly the malformed ones and the later duplicates', () => {
    const seen = new Set<string>();
    outcomes.forEach((o, i) => {
      const member = storedMember(records[i] ?? {});
      const duplicate = member !== 'malformed' && seen.has(member.memberId);
      const want = member === 'malformed' ? 'malformed' : duplicate ? 'duplicate' : undefined;
      if (want)
        expect({ line: o.line, outcome: o.outcome, reason: o.reason }).toEqual({
          line: o.line,
          outcome: 'skipped',
          reason: want,
        });
      else expect(o.outcome, `line ${o.line}`).not.toBe('skipped');
      if (member !== 'malformed') seen.add(member.memberId);
    });
  });

  it('counts are the tallies of the outcomes', () => {
    expect(expected.counts).toEqual(tally(outcomes.map((o) => o.outcome)));
    expect(expected.dryRunCounts).toEqual(tally(outcomes.map((o) => o.dryRunOutcome)));
  });

  it('every faulted memberId is a processed row of the CSV', () => {
    const processed = new Set(outcomes.filter((o) => o.outcome !== 'skipped').map((o) => o.memberId));
    const faulted = [...Object.keys(faults.channel), ...Object.keys(faults.receiver)];
    expect(faulted.length).toBeGreaterThanOrEqual(20);
    for (const id of faulted) expect(processed.has(id), id).toBe(true);
  });

  it('fields appear only on upsert decisions, reasons only where they mean something', () => {
    for (const o of outcomes) {
      if (o.fields !== undefined) expect(o.dryRunOutcome).toBe('upsert');
      if (o.dryRunOutcome === 'upsert') expect(o.fields?.length).toBeGreaterThan(0);
      const reasons: Record<OutcomeKind, (string | undefined)[]> = {
        upsert: [undefined],
        unchanged: [undefined],
        delete: ['not-found', 'unified'],
        failed: ['fetch', 'replay'],
        skipped: ['malformed', 'duplicate'],
      };
      expect(reasons[o.outcome], `line ${o.line}`).toContain(o.reason);
    }
  });
});

describe('channel-users.json', () => {
  const userShape = z.looseObject({
    id: z.string().regex(/^[0-9a-f]{24}$/),
    channelId: z.string(),
    memberId: z.string().min(1),
    veilId: z.string(),
    type: z.enum(['member', 'lead', 'unified']),
    name: z.string(),
    email: z.string().nullable().optional(),
    mobileNumber: z.string().nullable().optional(),
    unsubscribeEmail: z.boolean().nullable().optional(),
    unsubscribeTexting: z.boolean().nullable().optional(),
    profile: z.looseObject({ name: z.string() }),
    tags: z.array(z.string()),
    createdAt: z.number().int(),
    updatedAt: z.number().int(),
    version: z.number().int(),
  });

  it('holds users in the API shape with unique memberIds', () => {
    for (const u of users) {
      const parsed = userShape.parse(u);
      expect(parsed.updatedAt).toBeGreaterThanOrEqual(parsed.createdAt);
    }
    expect(usersById.size).toBe(users.length);
  });

  it('has a user for every found member and none for those that answer 404', () => {
    for (const o of outcomes) {
      const reason = o.dryRunReason ?? o.reason;
      if (reason === 'not-found') expect(usersById.has(o.memberId), `line ${o.line}`).toBe(false);
      if (o.dryRunOutcome === 'upsert' || o.dryRunOutcome === 'unchanged' || reason === 'unified') {
        expect(usersById.has(o.memberId), `line ${o.line}`).toBe(true);
      }
    }
  });

  it('dates most missed changes inside the outage and some before it', () => {
    const changed = outcomes
      .filter((o) => o.dryRunOutcome === 'upsert')
      .map((o) => Number(usersById.get(o.memberId)?.updatedAt ?? 0));
    const inside = changed.filter((t) => t >= OUTAGE_START && t <= OUTAGE_END).length;
    const before = changed.filter((t) => t < OUTAGE_START).length;
    expect(inside + before).toBe(changed.length);
    expect(inside).toBeGreaterThan(changed.length / 2);
    expect(before).toBeGreaterThan(0);
  });
});

describe('coverage of the example', () => {
  const byCase = (label: string) => outcomes.filter((o) => o.case === label);

  it.each([
    ['unchanged:phone-digits-only', 3],
    ['unchanged:phone-plus82-spaced', 3],
    ['unchanged:phone-plus82-trunk-zero', 2],
    ['unchanged:phone-spaces-dots-parens', 3],
    ['unchanged:phone-only-in-profile', 3],
    ['unchanged:email-case', 3],
    ['unchanged:channel-email-case', 2],
    ['unchanged:email-whitespace', 3],
    ['unchanged:email-only-in-profile', 2],
    ['unchanged:email-empty-vs-missing', 3],
    ['unchanged:email-whitespace-only', 2],
    ['unchanged:phone-empty-vs-missing', 2],
    ['unchanged:unsubscribe-empty-vs-false', 3],
    ['unchanged:unsubscribe-false-vs-missing', 3],
    ['unchanged:phone-unparsable-but-equal', 2],
    ['upsert:mobileNumber', 10],
    ['upsert:email', 10],
    ['upsert:unsubscribeEmail', 10],
    ['upsert:unsubscribeTexting', 10],
    ['upsert:several-fields', 10],
    ['upsert:phone-added-at-channel', 2],
    ['upsert:email-removed-at-channel', 2],
    ['upsert:unsubscribe-true-vs-missing', 2],
    ['delete:unified', 10],
    ['delete:unified-with-differences', 3],
    ['delete:not-found', 10],
    ['skipped:invalid-boolean', 3],
    ['skipped:empty-memberId', 2],
    ['skipped:duplicate', 3],
  ] as const)('%s has at least %i rows', (label, min) => {
    expect(byCase(label).length).toBeGreaterThanOrEqual(min);
  });

  it('has memberIds needing URL-encoding, processed normally', () => {
    for (const pattern of [/ /, /\//, /@/, /#/, /[가-힣]/]) {
      const rows = outcomes.filter((o) => pattern.test(o.memberId));
      expect(rows.length, String(pattern)).toBeGreaterThan(0);
      for (const o of rows) expect(['upsert', 'delete', 'unchanged']).toContain(o.outcome);
    }
  });

  it('is mostly ordinary: about half unchanged, a third upserts, a tenth deletes', () => {
    const share = (n: number) => n / expected.counts.rows;
    expect(share(expected.dryRunCounts.unchanged)).toBeGreaterThan(0.4);
    expect(share(expected.dryRunCounts.unchanged)).toBeLessThan(0.6);
    expect(share(expected.dryRunCounts.upserts)).toBeGreaterThan(0.25);
    expect(share(expected.dryRunCounts.upserts)).toBeLessThan(0.4);
    expect(share(expected.dryRunCounts.deletes)).toBeGreaterThan(0.07);
    expect(share(expected.dryRunCounts.deletes)).toBeLessThan(0.15);
  });

  it('has recovering and permanent faults on both sides', () => {
    const failedBy = (reason: string) => outcomes.filter((o) => o.outcome === 'failed' && o.reason === reason).length;
    expect(failedBy('fetch')).toBeGreaterThanOrEqual(4);
    expect(failedBy('replay')).toBeGreaterThanOrEqual(3);
    const recovering = Object.keys(faults.channel).filter((id) => !fetchGivesUp(id));
    expect(recovering.length).toBeGreaterThanOrEqual(5);
    const recoveringReplays = Object.values(faults.receiver).filter((b) => b.times !== undefined);
    expect(recoveringReplays.length).toBeGreaterThanOrEqual(2);
  });
});
