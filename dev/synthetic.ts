// A deterministic synthetic member table and the Channel Talk users behind it, with its known answer, for
// tests (a few thousand members) and benchmarks (up to millions).
//
// Every member is a pure function of (index, seed): nothing is kept in memory, so a CSV of a million rows is
// written as a stream, the expected counts are computed without enumerating members one by one, and a
// simulator can serve any user lazily through `syntheticUserLookup`.
//
// The mix is exact per block of 100 consecutive members (the order inside a block is a seeded permutation):
//   55 unchanged (with tricky equalities: local vs E.164 phone numbers, e-mail case and spaces, empty vs false
//      consent, values only in `profile`), 30 upsert (one to four differing fields), 8 unified (delete),
//   7 absent from Channel Talk (404, delete).
// No faults: every lookup and delivery is meant to succeed; tests add faults on top if they want them.
//
// The expected outcome comes from what the generator made each member to be, never from src/domain/decide.ts, so the
// unit test that compares the two checks both. All names, e-mail addresses (example.com/.org/.net) and phone
// numbers are made up.
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { COMPARED_FIELDS, type ChannelUser, type ComparedField, type StoredMember } from '../src/domain/types';
import { SeededRng } from './seeded-rng';

export const DEFAULT_SYNTHETIC_SEED = 20241101;

export type SyntheticCategory = 'unchanged' | 'upsert' | 'unified' | 'not-found';

/** Members of each category in every block of BLOCK consecutive indexes. */
export const SYNTHETIC_MIX: Readonly<Record<SyntheticCategory, number>> = {
  unchanged: 55,
  upsert: 30,
  unified: 8,
  'not-found': 7,
};
const BLOCK = 100;

/** The CSV columns, in order; `name` is an extra column the reader ignores. */
export const SYNTHETIC_CSV_COLUMNS = [
  'memberId',
  'mobileNumber',
  'email',
  'unsubscribeEmail',
  'unsubscribeTexting',
  'name',
] as const;
export type SyntheticCsvColumn = (typeof SYNTHETIC_CSV_COLUMNS)[number];
export const SYNTHETIC_CSV_HEADER = SYNTHETIC_CSV_COLUMNS.join(',');

export interface SyntheticExpected {
  outcome: 'upsert' | 'delete' | 'unchanged';
  /** upsert: the differing fields, in COMPARED_FIELDS order. */
  fields?: ComparedField[];
  /** delete: why. */
  reason?: 'not-found' | 'unified';
  /** What the generator made this member to be, e.g. "unchanged phone:dashed email:upper". For people. */
  case: string;
}

export interface SyntheticMember {
  index: number;
  /** The member's physical line in the CSV written by writeSyntheticCsv (the header is line 1). */
  line: number;
  category: SyntheticCategory;
  /** The row as the source reader parses it. */
  row: StoredMember;
  /** The same row as written into the CSV, cell by cell (boolean spellings and phone formats vary). */
  cells: Record<SyntheticCsvColumn, string>;
  /** What `GET /open/v5/users/@{memberId}` answers; undefined means 404. */
  user: ChannelUser | undefined;
  expected: SyntheticExpected;
}

export interface SyntheticCounts {
  rows: number;
  upserts: number;
  deletes: number;
  unchanged: number;
  failed: number;
  skipped: number;
  /** Of `deletes`: users Channel Talk does not know (404). */
  notFound: number;
  /** Of `deletes`: users of type "unified". */
  unified: number;
}

// ---------------------------------------------------------------------------------------------------------
// Seeded, index-addressable randomness

const GOLDEN = 0x9e3779b9;

/** murmur3's 32-bit finaliser: a bijective scramble of a 32-bit integer. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit hash of (seed, salt, n); n may be any non-negative safe integer. */
function hash(seed: number, salt: number, n: number): number {
  const hi = Math.floor(n / 0x100000000);
  const key = fmix32((seed ^ Math.imul(salt + 1, GOLDEN)) >>> 0);
  return fmix32((key + fmix32((n >>> 0) ^ Math.imul(hi, 0x27d4eb2f))) >>> 0);
}

/** mulberry32, seeded per member, so member i never depends on member i-1. */

function checkIndex(index: number): void {
  if (!Number.isSafeInteger(index) || index < 0)
    throw new RangeError(`synthetic member index must be a non-negative integer, got ${index}`);
}

function checkCount(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`synthetic member count must be a non-negative integer, got ${n}`);
}

// ---------------------------------------------------------------------------------------------------------
// Categories: an exact mix per block, in a seeded order

/** Multipliers coprime to 100: `(a * p + c) mod 100` is then a permutation of 0..99. */
const UNITS_MOD_BLOCK = Array.from({ length: BLOCK }, (_, a) => a).filter((a) => a % 2 !== 0 && a % 5 !== 0);

const CATEGORY_ORDER: readonly SyntheticCategory[] = ['unchanged', 'upsert', 'unified', 'not-found'];

function categoryOfSlot(slot: number): SyntheticCategory {
  let upTo = 0;
  for (const category of CATEGORY_ORDER) {
    upTo += SYNTHETIC_MIX[category];
    if (slot < upTo) return category;
  }
  throw new Error(`slot ${slot} outside the block`);
}

/** The category of member `index`, cheaply (no member is built). */
export function syntheticCategory(index: number, seed: number = DEFAULT_SYNTHETIC_SEED): SyntheticCategory {
  checkIndex(index);
  const block = Math.floor(index / BLOCK);
  const a = UNITS_MOD_BLOCK[hash(seed, 1, block) % UNITS_MOD_BLOCK.length] as number;
  const c = hash(seed, 2, block) % BLOCK;
  return categoryOfSlot((a * (index % BLOCK) + c) % BLOCK);
}

/** The expected counts of a data set of `n` members: O(1) per full block of 100, no member is built. */
export function syntheticCounts(n: number, seed: number = DEFAULT_SYNTHETIC_SEED): SyntheticCounts {
  checkCount(n);
  const fullBlocks = Math.floor(n / BLOCK);
  const per: Record<SyntheticCategory, number> = {
    unchanged: fullBlocks * SYNTHETIC_MIX.unchanged,
    upsert: fullBlocks * SYNTHETIC_MIX.upsert,
    unified: fullBlocks * SYNTHETIC_MIX.unified,
    'not-found': fullBlocks * SYNTHETIC_MIX['not-found'],
  };
  for (let i = fullBlocks * BLOCK; i < n; i++) per[syntheticCategory(i, seed)]++;
  return {
    rows: n,
    upserts: per.upsert,
    deletes: per.unified + per['not-found'],
    unchanged: per.unchanged,
    failed: 0,
    skipped: 0,
    notFound: per['not-found'],
    unified: per.unified,
  };
}

// ---------------------------------------------------------------------------------------------------------
// memberIds

const MEMBER_ID_PREFIX = 'syn-';
const MEMBER_ID_PATTERN = /^syn-(\d{7,})/;
/** Some memberIds carry characters that must be URL-encoded in the lookup path (kept inside, never at the ends). */
const EXOTIC_SUFFIXES = ['/a', '@corp', ' kr', '#1', '?x=1', '-회원', '+b', '%41'];

/** The memberId of member `index` (unique per index; about 2% carry characters that need URL encoding). */
export function syntheticMemberId(index: number, seed: number = DEFAULT_SYNTHETIC_SEED): string {
  checkIndex(index);
  const h = hash(seed, 3, index);
  const base = `${MEMBER_ID_PREFIX}${String(index).padStart(7, '0')}`;
  return h % 50 === 0 ? base + (EXOTIC_SUFFIXES[(h >>> 8) % EXOTIC_SUFFIXES.length] as string) : base;
}

/** The index a synthetic memberId was made for, or undefined when it is not one (of this seed). */
export function syntheticIndexOf(memberId: string, seed: number = DEFAULT_SYNTHETIC_SEED): number | undefined {
  const match = MEMBER_ID_PATTERN.exec(memberId);
  if (!match?.[1]) return undefined;
  const index = Number(match[1]);
  if (!Number.isSafeInteger(index)) return undefined;
  return syntheticMemberId(index, seed) === memberId ? index : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Contact data

/** Korean mobile numbers 010-MMMM-LLLL, MMMM starting 2-9: 80,000,000 of them. */
const PHONE_SPACE = 80_000_000;
const PHONE_STRIDE = 48_271; // coprime to PHONE_SPACE: index -> number is injective below PHONE_SPACE

/** The 8 digits after 010; distinct for distinct indexes below 80 million (and `variant` 1 differs from 0). */
function phoneDigits(index: number, seed: number, variant: 0 | 1): string {
  const offset = hash(seed, 4, 0) % PHONE_SPACE;
  const shift = variant === 0 ? 0 : PHONE_SPACE / 2;
  const n = (((index % PHONE_SPACE) * PHONE_STRIDE + offset + shift) % PHONE_SPACE) + 20_000_000;
  return String(n);
}

const e164 = (digits: string) => `+8210${digits}`;

/** Spellings of one number that all normalise to the same E.164 value (region KR). */
const PHONE_SPELLINGS = {
  e164: (d: string) => e164(d),
  dashed: (d: string) => `010-${d.slice(0, 4)}-${d.slice(4)}`,
  digits: (d: string) => `010${d}`,
  spaced: (d: string) => `010 ${d.slice(0, 4)} ${d.slice(4)}`,
  plus82: (d: string) => `+82 10-${d.slice(0, 4)}-${d.slice(4)}`,
  dotted: (d: string) => `010.${d.slice(0, 4)}.${d.slice(4)}`,
} as const;
type PhoneSpelling = keyof typeof PHONE_SPELLINGS;
const PHONE_SPELLING_WEIGHTS: readonly PhoneSpelling[] = [
  'dashed',
  'dashed',
  'dashed',
  'digits',
  'digits',
  'e164',
  'e164',
  'spaced',
  'plus82',
  'dotted',
];

const GIVEN = [
  'minjun',
  'seoyeon',
  'jiho',
  'haeun',
  'doyun',
  'jiwoo',
  'junho',
  'sua',
  'yejun',
  'chaewon',
  'alex',
  'sam',
];
const FAMILY = ['kim', 'lee', 'park', 'choi', 'jung', 'kang', 'cho', 'yoon', 'jang', 'lim'];
const DOMAINS = ['example.com', 'example.org', 'example.net'];

const TRUE_SPELLINGS = ['true', 'TRUE', 'True', '1', 'yes', 'Yes'];
const FALSE_SPELLINGS = ['false', 'FALSE', 'False', '0', 'no', 'No'];

const CHANNEL_ID = '197228';
const HISTORY_START = Date.parse('2023-01-01T00:00:00+09:00');
const OUTAGE_START = Date.parse('2024-11-01T00:40:00+09:00');
const OUTAGE_END = Date.parse('2024-11-12T15:37:00+09:00');

/** One member's contact as it really is (Channel Talk's side) and as the customer stored it. */
interface Side {
  phone: string | null; // E.164
  email: string | null;
  unsubscribeEmail: boolean;
  unsubscribeTexting: boolean;
}

function titleCase(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** An e-mail spelling that compares equal (case-insensitive, surrounding spaces ignored). */
function emailSpelling(rng: SeededRng, email: string): { cell: string; how: string } {
  const r = rng.float();
  if (r < 0.7) return { cell: email, how: 'same' };
  if (r < 0.85) return { cell: email.toUpperCase(), how: 'upper' };
  if (r < 0.95) return { cell: titleCase(email), how: 'title' };
  return { cell: ` ${email} `, how: 'padded' };
}

function flagCell(rng: SeededRng, value: boolean | null): string {
  if (value === null) return '';
  return rng.pick(value ? TRUE_SPELLINGS : FALSE_SPELLINGS);
}

/** How the stored side of an equal consent flag is written: false is sometimes left empty (never unsubscribed). */
function equalFlag(rng: SeededRng, value: boolean): boolean | null {
  return !value && rng.chance(0.25) ? null : value;
}

// ---------------------------------------------------------------------------------------------------------
// Members

/**
 * Member `index` of the data set `seed`: its stored row, its Channel Talk user (undefined = 404) and the
 * expected outcome. Pure and O(1): the same arguments always give the same member.
 */
export function syntheticMember(index: number, seed: number = DEFAULT_SYNTHETIC_SEED): SyntheticMember {
  checkIndex(index);
  const category = syntheticCategory(index, seed);
  const rng = new SeededRng(hash(seed, 5, index));
  const memberId = syntheticMemberId(index, seed);
  const given = rng.pick(GIVEN);
  const family = rng.pick(FAMILY);
  const name = rng.chance(0.2)
    ? `${titleCase(family)}, ${titleCase(given)}`
    : `${titleCase(given)} ${titleCase(family)}`;
  const email = `${given}.${family}${index}@${rng.pick(DOMAINS)}`;
  const ownDigits = phoneDigits(index, seed, 0);

  // Channel Talk's current values (after the changes the outage did not deliver).
  const now: Side = {
    phone: rng.chance(0.93) ? e164(ownDigits) : null,
    email: rng.chance(0.95) ? email : null,
    unsubscribeEmail: rng.chance(0.2),
    unsubscribeTexting: rng.chance(0.25),
  };
  // What the customer stored: equal to `now` except in the fields the category changes below.
  let stored: Side = { ...now };
  const cases: string[] = [];
  let differing: ComparedField[] = [];

  if (category === 'upsert') {
    const mask = rng.int(1, 15); // a non-empty subset of the four fields
    differing = COMPARED_FIELDS.filter((_, bit) => (mask & (1 << bit)) !== 0);
    stored = { ...now };
    for (const field of differing) {
      const r = rng.float();
      switch (field) {
        case 'mobileNumber':
          // changed number | number added since | number removed since
          if (r < 0.6 || now.phone === null) {
            now.phone ??= e164(ownDigits);
            stored.phone = e164(phoneDigits(index, seed, 1));
            cases.push('phone:changed');
          } else if (r < 0.8) {
            stored.phone = null;
            cases.push('phone:added');
          } else {
            stored.phone = now.phone;
            now.phone = null;
            cases.push('phone:removed');
          }
          break;
        case 'email':
          if (r < 0.6 || now.email === null) {
            now.email ??= email;
            stored.email = `old.${given}${index}@${rng.pick(DOMAINS)}`;
            cases.push('email:changed');
          } else if (r < 0.8) {
            stored.email = null;
            cases.push('email:added');
          } else {
            stored.email = now.email;
            now.email = null;
            cases.push('email:removed');
          }
          break;
        case 'unsubscribeEmail':
          stored.unsubscribeEmail = !now.unsubscribeEmail;
          cases.push(now.unsubscribeEmail ? 'unsubscribeEmail:opted-out' : 'unsubscribeEmail:opted-in');
          break;
        case 'unsubscribeTexting':
          stored.unsubscribeTexting = !now.unsubscribeTexting;
          cases.push(now.unsubscribeTexting ? 'unsubscribeTexting:opted-out' : 'unsubscribeTexting:opted-in');
          break;
      }
    }
  } else if (category === 'unified' || category === 'not-found') {
    // Whatever the customer stored, a merged-away or unknown user is a delete; make the row differ sometimes.
    if (rng.chance(0.3)) stored = { ...stored, unsubscribeEmail: !stored.unsubscribeEmail };
  }

  // Spell the stored row; equal fields use the tricky-but-equal spellings.
  const phoneSpelling = rng.pick(PHONE_SPELLING_WEIGHTS);
  const phoneCell = stored.phone === null ? '' : PHONE_SPELLINGS[phoneSpelling](stored.phone.slice('+8210'.length));
  const emailEqual = stored.email !== null && stored.email === now.email;
  const emailWritten =
    stored.email === null
      ? { cell: '', how: 'none' }
      : emailEqual
        ? emailSpelling(rng, stored.email)
        : { cell: stored.email, how: 'same' };
  const storedUnsubEmail = differing.includes('unsubscribeEmail')
    ? stored.unsubscribeEmail
    : equalFlag(rng, stored.unsubscribeEmail);
  const storedUnsubTexting = differing.includes('unsubscribeTexting')
    ? stored.unsubscribeTexting
    : equalFlag(rng, stored.unsubscribeTexting);
  if (category !== 'not-found') {
    if (stored.phone !== null && !differing.includes('mobileNumber')) cases.push(`phone:${phoneSpelling}`);
    if (emailEqual && emailWritten.how !== 'same') cases.push(`email:${emailWritten.how}`);
    if (storedUnsubEmail === null || storedUnsubTexting === null) cases.push('consent:empty-is-false');
  }

  const cells: Record<SyntheticCsvColumn, string> = {
    memberId,
    mobileNumber: phoneCell,
    email: emailWritten.cell,
    unsubscribeEmail: flagCell(rng, storedUnsubEmail),
    unsubscribeTexting: flagCell(rng, storedUnsubTexting),
    name,
  };
  const row: StoredMember = {
    memberId,
    mobileNumber: phoneCell === '' ? null : phoneCell,
    email: emailWritten.cell === '' ? null : emailWritten.cell,
    unsubscribeEmail: storedUnsubEmail,
    unsubscribeTexting: storedUnsubTexting,
  };

  let user: ChannelUser | undefined;
  if (category !== 'not-found') {
    const built = buildUser(rng, { index, memberId, name, now, unified: category === 'unified' });
    user = built.user;
    if (built.how) cases.push(built.how);
  }

  const expected: SyntheticExpected =
    category === 'upsert'
      ? { outcome: 'upsert', fields: differing, case: ['upsert', ...cases].join(' ') }
      : category === 'unchanged'
        ? { outcome: 'unchanged', case: ['unchanged', ...cases].join(' ') }
        : { outcome: 'delete', reason: category, case: [`delete:${category}`, ...cases].join(' ') };

  return { index, line: index + 2, category, row, cells, user, expected };
}

function buildUser(
  rng: SeededRng,
  o: { index: number; memberId: string; name: string; now: Side; unified: boolean },
): { user: ChannelUser; how?: string } {
  const { now } = o;
  const createdAt = HISTORY_START + Math.floor(rng.float() * (OUTAGE_START - HISTORY_START));
  const updatedAt = OUTAGE_START + Math.floor(rng.float() * (OUTAGE_END - OUTAGE_START));
  // Where Channel Talk keeps the contact: both places (usual), only `profile`, or a null top level.
  const r = rng.float();
  const placement = r < 0.9 ? 'both' : r < 0.95 ? 'profile-only' : 'null-top-level';
  const topLevel = placement === 'both';
  const profile: Record<string, unknown> = { name: o.name };
  if (now.email !== null) profile.email = now.email;
  if (now.phone !== null) profile.mobileNumber = now.phone;

  const user: ChannelUser = {
    id: rng.hex(24),
    channelId: CHANNEL_ID,
    memberId: o.memberId,
    veilId: rng.hex(24),
    type: o.unified ? 'unified' : rng.chance(0.05) ? 'lead' : 'member',
    name: o.name,
  };
  if (o.unified) user.unifiedId = rng.hex(24);
  if (topLevel) {
    if (now.email !== null) user.email = now.email;
    if (now.phone !== null) user.mobileNumber = now.phone;
  } else if (placement === 'null-top-level') {
    user.email = null;
    user.mobileNumber = null;
  }
  // A never-unsubscribed flag is sometimes absent rather than false.
  if (now.unsubscribeEmail || rng.chance(0.8)) user.unsubscribeEmail = now.unsubscribeEmail;
  if (now.unsubscribeEmail) user.unsubscribeEmailUpdatedAt = updatedAt;
  if (now.unsubscribeTexting || rng.chance(0.8)) user.unsubscribeTexting = now.unsubscribeTexting;
  if (now.unsubscribeTexting) user.unsubscribeTextingUpdatedAt = updatedAt;
  user.profile = profile;
  user.tags = rng.chance(0.1) ? ['vip'] : [];
  user.createdAt = createdAt;
  user.updatedAt = updatedAt;
  user.version = rng.int(1, 40);
  const how = placement === 'both' || (now.email === null && now.phone === null) ? undefined : `user:${placement}`;
  return { user, how };
}

/** Members 0..n-1, one at a time. */
export function* syntheticMembers(n: number, seed: number = DEFAULT_SYNTHETIC_SEED): Generator<SyntheticMember> {
  checkCount(n);
  for (let i = 0; i < n; i++) yield syntheticMember(i, seed);
}

/** The Channel Talk users of members 0..n-1 (404 members have none): for a simulator given an array. */
export function syntheticUsers(n: number, seed: number = DEFAULT_SYNTHETIC_SEED): ChannelUser[] {
  const users: ChannelUser[] = [];
  for (const m of syntheticMembers(n, seed)) if (m.user) users.push(m.user);
  return users;
}

/**
 * Answers a lookup for the data set of `n` members without holding it: the user behind `memberId`, or
 * undefined (404) for a member without one or a memberId that is not in the data set.
 */
export function syntheticUserLookup(
  n: number,
  seed: number = DEFAULT_SYNTHETIC_SEED,
): (memberId: string) => ChannelUser | undefined {
  checkCount(n);
  return (memberId) => {
    const index = syntheticIndexOf(memberId, seed);
    return index === undefined || index >= n ? undefined : syntheticMember(index, seed).user;
  };
}

// ---------------------------------------------------------------------------------------------------------
// CSV

const NEEDS_QUOTES = /[",\r\n]|^\s|\s$/;

function csvCell(value: string): string {
  return NEEDS_QUOTES.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** One CSV record (without its line end). */
export function syntheticCsvLine(member: SyntheticMember): string {
  return SYNTHETIC_CSV_COLUMNS.map((column) => csvCell(member.cells[column])).join(',');
}

/**
 * Writes members 0..n-1 as a CSV (header on line 1, member i on line i+2, LF line ends), streaming: memory
 * stays flat whatever `n` is. Resolves once the file is flushed and closed.
 */
export async function writeSyntheticCsv(
  path: string,
  n: number,
  seed: number = DEFAULT_SYNTHETIC_SEED,
): Promise<{ rows: number; bytes: number }> {
  checkCount(n);
  const out = createWriteStream(path, { encoding: 'utf8' });
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => undefined);
  let bytes = 0;
  const write = async (text: string) => {
    bytes += Buffer.byteLength(text, 'utf8');
    if (!out.write(text)) await Promise.race([once(out, 'drain'), failed]);
  };
  try {
    await write(SYNTHETIC_CSV_HEADER + '\n');
    const CHUNK = 1_000;
    for (let start = 0; start < n; start += CHUNK) {
      const lines: string[] = [];
      for (let i = start; i < Math.min(n, start + CHUNK); i++) lines.push(syntheticCsvLine(syntheticMember(i, seed)));
      await write(lines.join('\n') + '\n');
    }
    await Promise.race([new Promise<void>((resolve) => out.end(resolve)), failed]);
  } catch (err) {
    out.destroy();
    throw err;
  }
  return { rows: n, bytes };
}

// ---------------------------------------------------------------------------------------------------------
// Checking a finished run against the known answer (tests and benchmarks)

/** The parts of an audit entry the check reads (src/audit/audit-entry.ts). */
export interface AuditRecord {
  line: number;
  memberId?: string;
  outcome: string;
  fields?: string[];
  reason?: string;
  event?: string;
  webhookId?: string;
  delivered?: boolean;
}

/** The parts of a received webhook the check reads (dev/simulator/webhook-receiver.ts `Delivery`). */
export interface DeliveryRecord {
  memberId: string | null;
  event: string;
  webhookId: string | null;
  /** What the receiver answered; 2xx = accepted. */
  status: number;
}

export interface SyntheticRunCheck {
  /** Every disagreement with the known answer, the first `maxProblems` of them; empty when the run is exact. */
  problems: string[];
  /** How many problems there were in all. */
  problemCount: number;
  auditEntries: number;
  deliveries: number;
  accepted: number;
  /** Due members whose delivery was accepted more than once (at-least-once delivery at work). */
  membersAcceptedMoreThanOnce: number;
  /** Accepted deliveries beyond the first, over all members. */
  extraAcceptedDeliveries: number;
}

/**
 * Compares a finished run of the data set (n, seed) with its known answer: exactly one audit entry per source
 * line with the intended outcome, fields and reason; a delivered replay for every upsert and delete, none for
 * anyone else; every delivery of a member carrying the member's expected event and `webhook-id` (as computed
 * by `webhookIdOf(runLabel, memberId, event)`, passed in so this module stays free of the sender's code).
 */
export function checkSyntheticRun(o: {
  n: number;
  seed?: number;
  runLabel: string;
  webhookIdOf: (runLabel: string, memberId: string, event: 'upsert' | 'delete') => string;
  audit: Iterable<AuditRecord>;
  deliveries: Iterable<DeliveryRecord>;
  maxProblems?: number;
}): SyntheticRunCheck {
  const seed = o.seed ?? DEFAULT_SYNTHETIC_SEED;
  const maxProblems = o.maxProblems ?? 20;
  const problems: string[] = [];
  let problemCount = 0;
  const problem = (text: string) => {
    problemCount += 1;
    if (problems.length < maxProblems) problems.push(text);
  };
  const eventOf = (m: SyntheticMember): 'upsert' | 'delete' | undefined =>
    m.expected.outcome === 'unchanged' ? undefined : m.expected.outcome;

  // Audit: one entry per line 2..n+1.
  const seenLines = new Uint8Array(o.n + 2);
  let auditEntries = 0;
  for (const e of o.audit) {
    auditEntries += 1;
    const index = e.line - 2;
    if (!Number.isSafeInteger(index) || index < 0 || index >= o.n) {
      problem(`audit: entry for line ${e.line}, which is not a member line`);
      continue;
    }
    if (seenLines[e.line]) {
      problem(`audit: line ${e.line} recorded more than once`);
      continue;
    }
    seenLines[e.line] = 1;
    const m = syntheticMember(index, seed);
    const where = `audit line ${e.line} (${m.row.memberId}, ${m.expected.case})`;
    if (e.memberId !== m.row.memberId) problem(`${where}: memberId ${JSON.stringify(e.memberId)}`);
    if (e.outcome !== m.expected.outcome) {
      problem(`${where}: outcome ${e.outcome}${e.reason ? ` (${e.reason})` : ''}, expected ${m.expected.outcome}`);
      continue;
    }
    const event = eventOf(m);
    if (m.expected.fields && JSON.stringify(e.fields) !== JSON.stringify(m.expected.fields)) {
      problem(`${where}: fields ${JSON.stringify(e.fields)}, expected ${JSON.stringify(m.expected.fields)}`);
    }
    if (m.expected.reason && e.reason !== m.expected.reason)
      problem(`${where}: reason ${e.reason}, expected ${m.expected.reason}`);
    if (event) {
      if (e.event !== event) problem(`${where}: event ${e.event}, expected ${event}`);
      if (e.delivered !== true) problem(`${where}: not recorded as delivered`);
      if (e.webhookId !== o.webhookIdOf(o.runLabel, m.row.memberId, event))
        problem(`${where}: webhookId ${e.webhookId}`);
    }
  }
  for (let line = 2; line < o.n + 2; line++) if (!seenLines[line]) problem(`audit: line ${line} has no entry`);

  // Deliveries: only for due members, with their event and id; every due member accepted at least once.
  // Accepted deliveries per member index (saturating at 255): a typed array stays small at ten million members.
  const acceptedPerIndex = new Uint8Array(o.n);
  let deliveries = 0;
  let accepted = 0;
  for (const d of o.deliveries) {
    deliveries += 1;
    const ok = d.status >= 200 && d.status < 300;
    if (ok) accepted += 1;
    const index = d.memberId === null ? undefined : syntheticIndexOf(d.memberId, seed);
    if (index === undefined || index >= o.n) {
      problem(`delivery for ${JSON.stringify(d.memberId)}, not a member of the data set`);
      continue;
    }
    const m = syntheticMember(index, seed);
    const event = eventOf(m);
    if (!event) {
      problem(`delivery (${d.event}) for ${m.row.memberId}, who needed none (${m.expected.case})`);
      continue;
    }
    if (d.event !== event) problem(`delivery for ${m.row.memberId}: event ${d.event}, expected ${event}`);
    const id = o.webhookIdOf(o.runLabel, m.row.memberId, event);
    if (d.webhookId !== id) problem(`delivery for ${m.row.memberId}: webhook-id ${d.webhookId}, expected ${id}`);
    if (ok && acceptedPerIndex[index]! < 255) acceptedPerIndex[index]! += 1;
  }
  let membersAcceptedMoreThanOnce = 0;
  let extraAcceptedDeliveries = 0;
  for (const count of acceptedPerIndex) {
    if (count > 1) {
      membersAcceptedMoreThanOnce += 1;
      extraAcceptedDeliveries += count - 1;
    }
  }
  for (let i = 0; i < o.n; i++) {
    if (syntheticCategory(i, seed) === 'unchanged') continue;
    if (acceptedPerIndex[i] === 0) problem(`no accepted delivery for ${syntheticMemberId(i, seed)} (line ${i + 2})`);
  }

  return {
    problems,
    problemCount,
    auditEntries,
    deliveries,
    accepted,
    membersAcceptedMoreThanOnce,
    extraAcceptedDeliveries,
  };
}
