// The synthetic data set is the known answer of the crash, restart and benchmark runs: these tests check that
// it is deterministic, that its cheap counts agree with a full enumeration, that the CSV it writes reads back
// through the real source reader as the rows it describes, and that src/decide.ts reaches the outcome the
// generator intended for every member (the generator never calls decide(), so each side checks the other).
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decide } from '../../src/domain/decide';
import { webhookId } from '../../src/webhook/webhook-id';
import { readSource } from '../../src/source/read-source';
import {
  checkSyntheticRun,
  DEFAULT_SYNTHETIC_SEED,
  SYNTHETIC_CSV_HEADER,
  SYNTHETIC_MIX,
  syntheticCategory,
  syntheticCounts,
  syntheticCsvLine,
  syntheticIndexOf,
  syntheticMember,
  syntheticMemberId,
  syntheticMembers,
  syntheticUserLookup,
  syntheticUsers,
  writeSyntheticCsv,
  type AuditRecord,
  type DeliveryRecord,
  type SyntheticCounts,
  type SyntheticMember,
} from '../../dev/synthetic';
import type { FetchResult, SourceEntry } from '../../src/domain/types';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'synthetic-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function enumerateCounts(members: Iterable<SyntheticMember>): SyntheticCounts {
  const c: SyntheticCounts = {
    rows: 0,
    upserts: 0,
    deletes: 0,
    unchanged: 0,
    failed: 0,
    skipped: 0,
    notFound: 0,
    unified: 0,
  };
  for (const m of members) {
    c.rows++;
    if (m.expected.outcome === 'upsert') c.upserts++;
    else if (m.expected.outcome === 'unchanged') c.unchanged++;
    else {
      c.deletes++;
      if (m.expected.reason === 'not-found') c.notFound++;
      else c.unified++;
    }
  }
  return c;
}

async function readAll(file: string): Promise<SourceEntry[]> {
  const entries: SourceEntry[] = [];
  for await (const e of readSource({ type: 'csv', path: file })) entries.push(e);
  return entries;
}

/** The V8 garbage collector as a function (as with --expose-gc), without restarting the process. */
function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function fetchFor(m: SyntheticMember): FetchResult {
  return m.user ? { kind: 'found', user: m.user, attempts: 1 } : { kind: 'not-found', status: 404, attempts: 1 };
}

describe('synthetic data set', () => {
  it('is deterministic per (index, seed) and independent of the order members are built in', () => {
    const forward = [...syntheticMembers(300)];
    const backward = Array.from({ length: 300 }, (_, k) => syntheticMember(299 - k)).reverse();
    expect(backward).toEqual(forward);
    expect(syntheticMember(12_345, 7)).toEqual(syntheticMember(12_345, 7));
    // A different seed is a different data set.
    const other = [...syntheticMembers(300, DEFAULT_SYNTHETIC_SEED + 1)];
    expect(other.filter((m, i) => m.expected.case !== forward[i]!.expected.case).length).toBeGreaterThan(100);
    // Far indexes (a million-member benchmark) are as cheap and valid as near ones.
    const far = syntheticMember(999_999);
    expect(far.line).toBe(1_000_001);
    expect(syntheticIndexOf(far.row.memberId)).toBe(999_999);
  });

  it('has unique memberIds and phone numbers, and about 2% memberIds that need URL encoding', () => {
    const members = [...syntheticMembers(5_000)];
    expect(new Set(members.map((m) => m.row.memberId)).size).toBe(5_000);
    const phones = members
      .map((m) => m.user?.mobileNumber ?? m.user?.profile?.mobileNumber)
      .filter((p): p is string => typeof p === 'string');
    expect(new Set(phones).size).toBe(phones.length);
    const exotic = members.filter((m) => encodeURIComponent(m.row.memberId) !== m.row.memberId);
    expect(exotic.length).toBeGreaterThan(50);
    expect(exotic.length).toBeLessThan(200);
    for (const m of members) expect(syntheticIndexOf(m.row.memberId), m.row.memberId).toBe(m.index);
    expect(syntheticIndexOf('syn-0000001x')).toBeUndefined();
    expect(syntheticIndexOf('m-0001')).toBeUndefined();
  });

  it('counts without enumerating, and the counts match a full enumeration', () => {
    for (const n of [0, 1, 37, 100, 250, 999, 3_000]) {
      const { notFound, unified, ...rest } = syntheticCounts(n);
      expect({ notFound, unified, ...rest }, `n=${n}`).toEqual(enumerateCounts(syntheticMembers(n)));
    }
    for (const seed of [1, 42, 0xffffffff])
      expect(syntheticCounts(777, seed)).toEqual(enumerateCounts(syntheticMembers(777, seed)));
    // Exact mix per block of 100, so a million is exact too, and cheap.
    const million = syntheticCounts(1_000_000);
    expect(million).toEqual({
      rows: 1_000_000,
      upserts: 300_000,
      deletes: 150_000,
      unchanged: 550_000,
      failed: 0,
      skipped: 0,
      notFound: 70_000,
      unified: 80_000,
    });
    expect(SYNTHETIC_MIX).toEqual({ unchanged: 55, upsert: 30, unified: 8, 'not-found': 7 });
    // The category shortcut is what the full member says.
    for (let i = 0; i < 1_000; i++) expect(syntheticCategory(i)).toBe(syntheticMember(i).category);
  });

  it('covers the tricky equalities and the field mix it promises', () => {
    const members = [...syntheticMembers(3_000)];
    const cases = members.map((m) => m.expected.case);
    const unchanged = cases.filter((c) => c.startsWith('unchanged'));
    for (const spelling of [
      'phone:dashed',
      'phone:digits',
      'phone:e164',
      'phone:spaced',
      'phone:plus82',
      'phone:dotted',
      'email:upper',
      'email:title',
      'email:padded',
      'consent:empty-is-false',
      'user:profile-only',
      'user:null-top-level',
    ]) {
      expect(unchanged.filter((c) => c.includes(spelling)).length, spelling).toBeGreaterThan(3);
    }
    const upserts = members.filter((m) => m.expected.outcome === 'upsert');
    for (const field of ['mobileNumber', 'email', 'unsubscribeEmail', 'unsubscribeTexting'] as const) {
      expect(upserts.filter((m) => m.expected.fields?.includes(field)).length, field).toBeGreaterThan(100);
    }
    for (const kind of [
      'phone:changed',
      'phone:added',
      'phone:removed',
      'email:changed',
      'email:added',
      'email:removed',
    ]) {
      expect(upserts.filter((m) => m.expected.case.includes(kind)).length, kind).toBeGreaterThan(5);
    }
    expect(new Set(upserts.map((m) => m.expected.fields!.join(','))).size).toBe(15);
    // Local phone spellings really are local (not E.164) in the CSV for many unchanged members.
    expect(
      members.filter((m) => m.category === 'unchanged' && m.cells.mobileNumber.startsWith('010')).length,
    ).toBeGreaterThan(500);
  });

  it('decide() reaches the intended outcome for every member (3,000 members, two seeds)', () => {
    for (const seed of [DEFAULT_SYNTHETIC_SEED, 99]) {
      for (const m of syntheticMembers(3_000, seed)) {
        const decision = decide(m.row, fetchFor(m));
        const want =
          m.expected.outcome === 'upsert'
            ? { action: 'upsert', fields: m.expected.fields }
            : m.expected.outcome === 'delete'
              ? { action: 'delete', reason: m.expected.reason }
              : { action: 'unchanged' };
        expect(decision, `${m.row.memberId}: ${m.expected.case}`).toEqual(want);
      }
    }
  });

  it('writes a CSV that the source reader parses back into exactly the described rows, and decide() agrees', async () => {
    const n = 600;
    const file = path.join(dir, 'members.csv');
    const written = await writeSyntheticCsv(file, n);
    expect(written.rows).toBe(n);
    expect((await stat(file)).size).toBe(written.bytes);
    const text = await readFile(file, 'utf8');
    expect(text.split('\n')[0]).toBe(SYNTHETIC_CSV_HEADER);
    expect(text.split('\n')).toHaveLength(n + 2); // header, n rows, and the empty string after the last LF

    const entries = await readAll(file);
    expect(entries).toHaveLength(n);
    const members = [...syntheticMembers(n)];
    const lookup = syntheticUserLookup(n);
    for (const [i, entry] of entries.entries()) {
      const m = members[i]!;
      expect(entry, `line ${entry.line}`).toEqual({ line: m.line, member: m.row });
      if (!('member' in entry)) continue;
      const user = lookup(entry.member.memberId);
      expect(user).toEqual(m.user);
      const fetched: FetchResult = user
        ? { kind: 'found', user, attempts: 1 }
        : { kind: 'not-found', status: 404, attempts: 1 };
      const decision = decide(entry.member, fetched);
      expect(decision.action === 'unchanged' ? 'unchanged' : decision.action, m.expected.case).toBe(m.expected.outcome);
    }
  });

  it('writes a large CSV as a stream with flat memory', async () => {
    const n = 100_000;
    const file = path.join(dir, 'large.csv');
    // Live heap (after a full GC) sampled while the file is written: streaming keeps it flat, whereas holding
    // the rows would grow it by their size (~70 bytes each as text, far more as objects).
    const gc = exposeGc();
    gc();
    const base = process.memoryUsage().heapUsed;
    let peak = 0;
    const sampler = setInterval(() => {
      gc();
      peak = Math.max(peak, process.memoryUsage().heapUsed - base);
    }, 50);
    let written: Awaited<ReturnType<typeof writeSyntheticCsv>>;
    try {
      written = await writeSyntheticCsv(file, n, 5);
    } finally {
      clearInterval(sampler);
    }
    expect(written.rows).toBe(n);
    expect((await stat(file)).size).toBe(written.bytes);
    // Measured: ~0.7 MB streaming, ~9 MB when the same rows are kept as strings.
    expect(peak).toBeLessThan(4 * 1024 * 1024);
    const text = await readFile(file, 'utf8');
    const lines = text.split('\n');
    expect(lines).toHaveLength(n + 2);
    // The last row is exactly member n-1's line: nothing was dropped or reordered.
    expect(lines[n]).toBe(syntheticCsvLine(syntheticMember(n - 1, 5)));
  });

  it('serves users lazily: the lookup agrees with the user array and answers 404 outside the data set', () => {
    const n = 1_000;
    const users = syntheticUsers(n);
    const lookup = syntheticUserLookup(n);
    expect(users).toHaveLength(n - syntheticCounts(n).notFound);
    for (const u of users) expect(lookup(u.memberId as string)).toEqual(u);
    for (const m of syntheticMembers(n)) if (m.category === 'not-found') expect(lookup(m.row.memberId)).toBeUndefined();
    // In the generator's id space but past n, and not an id at all.
    const beyond = [...Array(50).keys()]
      .map((k) => syntheticMemberId(n + k))
      .filter((id) => syntheticMember(syntheticIndexOf(id)!).user);
    expect(beyond.length).toBeGreaterThan(30);
    for (const id of beyond) expect(lookup(id)).toBeUndefined();
    expect(lookup('nobody')).toBeUndefined();
    expect(() => syntheticMember(-1)).toThrow(RangeError);
    expect(() => syntheticCounts(1.5)).toThrow(RangeError);
  });

  describe('checkSyntheticRun', () => {
    const n = 400;
    const runLabel = 'run-x';
    const members = [...syntheticMembers(n)];
    /** What an exact run records and delivers. */
    function exactRun(): { audit: AuditRecord[]; deliveries: DeliveryRecord[] } {
      const audit: AuditRecord[] = [];
      const deliveries: DeliveryRecord[] = [];
      for (const m of members) {
        const { outcome, fields, reason } = m.expected;
        if (outcome === 'unchanged') {
          audit.push({ line: m.line, memberId: m.row.memberId, outcome });
          continue;
        }
        const id = webhookId(runLabel, m.row.memberId, outcome);
        audit.push({
          line: m.line,
          memberId: m.row.memberId,
          outcome,
          fields,
          reason,
          event: outcome,
          webhookId: id,
          delivered: true,
        });
        deliveries.push({ memberId: m.row.memberId, event: outcome, webhookId: id, status: 200 });
      }
      return { audit, deliveries };
    }
    const check = (run: { audit: AuditRecord[]; deliveries: DeliveryRecord[] }) =>
      checkSyntheticRun({ n, runLabel, webhookIdOf: webhookId, ...run });
    const due = members.filter((m) => m.expected.outcome !== 'unchanged');
    const unchanged = members.find((m) => m.expected.outcome === 'unchanged')!;
    const upsert = members.find((m) => m.expected.outcome === 'upsert')!;

    it('finds nothing wrong with an exact run, and counts repeated deliveries', () => {
      const run = exactRun();
      const first = run.deliveries[0]!;
      run.deliveries.push({ ...first }, { ...first, status: 503 });
      const result = check(run);
      expect(result.problems).toEqual([]);
      expect(result).toMatchObject({
        problemCount: 0,
        auditEntries: n,
        deliveries: due.length + 2,
        accepted: due.length + 1,
        membersAcceptedMoreThanOnce: 1,
        extraAcceptedDeliveries: 1,
      });
    });

    it('reports every kind of disagreement', () => {
      const cases: [string, (run: ReturnType<typeof exactRun>) => void, RegExp][] = [
        ['missing audit line', (r) => void r.audit.splice(5, 1), /line 7 has no entry/],
        ['duplicate audit line', (r) => void r.audit.push({ ...r.audit[3]! }), /line 5 recorded more than once/],
        ['foreign audit line', (r) => void r.audit.push({ line: n + 2, outcome: 'unchanged' }), /not a member line/],
        [
          'wrong outcome',
          (r) => void (r.audit[unchanged.index]!.outcome = 'failed'),
          /outcome failed, expected unchanged/,
        ],
        ['wrong fields', (r) => void (r.audit[upsert.index]!.fields = ['email', 'mobileNumber']), /fields/],
        ['not delivered', (r) => void (r.audit[upsert.index]!.delivered = false), /not recorded as delivered/],
        [
          'delivery to an unchanged member',
          (r) =>
            void r.deliveries.push({ memberId: unchanged.row.memberId, event: 'upsert', webhookId: 'x', status: 200 }),
          /who needed none/,
        ],
        ['wrong webhook-id', (r) => void (r.deliveries[0]!.webhookId = 'msg_other'), /webhook-id msg_other/],
        [
          'wrong event',
          (r) => void (r.deliveries[0]!.event = r.deliveries[0]!.event === 'upsert' ? 'delete' : 'upsert'),
          /event/,
        ],
        ['missing delivery', (r) => void r.deliveries.splice(0, 1), /no accepted delivery/],
        ['only refused deliveries', (r) => void (r.deliveries[0]!.status = 400), /no accepted delivery/],
        [
          'delivery for a stranger',
          (r) => void r.deliveries.push({ memberId: 'm-1', event: 'delete', webhookId: null, status: 200 }),
          /not a member of the data set/,
        ],
      ];
      for (const [what, spoil, pattern] of cases) {
        const run = exactRun();
        spoil(run);
        const result = check(run);
        expect(result.problemCount, what).toBeGreaterThan(0);
        expect(result.problems.join('\n'), what).toMatch(pattern);
      }
    });
  });
});
