// Writes the example data set (members.csv, channel-users.json, faults.json, expected.json) from a fixed
// seed, together with its known answer. Run: npx tsx examples/generate.ts [outDir]
//
// The known answer comes from what the generator itself made each row to be (its "case"), never from
// src/decide.ts: test/unit/examples.test.ts then checks decide() against it from the other direction.
// All names, e-mail addresses (example.com/.org/.net) and phone numbers are made up.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChannelUser, ComparedField, OutcomeKind } from '../src/domain/types';
import { SeededRng } from '../dev/seeded-rng';

export const SEED = 20241112;
const ROWS = 300;
const CHANNEL_ID = '197228';
/** The Channel Talk client's attempt budget per member; channel faults below are sized against it. */
export const MAX_FETCH_ATTEMPTS = 5;

const OUTAGE_START = Date.parse('2024-11-01T00:40:00+09:00');
const OUTAGE_END = Date.parse('2024-11-12T15:37:00+09:00');
const HISTORY_START = Date.parse('2023-01-01T00:00:00+09:00');
const DAY = 24 * 60 * 60 * 1000;

// ---------------------------------------------------------------------------------------------------------
// Shapes of the written files

/** Counters of requests answered that way (in this order) before normal answers; delayMs slows every answer. */
export interface ChannelFault {
  reset?: number;
  status5xx?: number;
  malformed?: number;
  delayMs?: number;
}

/** The customer endpoint answers `status` `times` times for this member, then 200 (omitted = forever). */
export interface ReceiverBehaviour {
  status: number;
  times?: number;
}

export interface Faults {
  channel: Record<string, ChannelFault>;
  receiver: Record<string, ReceiverBehaviour>;
}

export interface Counts {
  rows: number;
  upserts: number;
  deletes: number;
  unchanged: number;
  failed: number;
  skipped: number;
}

export interface ExpectedOutcome {
  line: number;
  memberId: string;
  outcome: OutcomeKind;
  /** The differing fields, whenever the decision is an upsert (also when its replay then failed). */
  fields?: ComparedField[];
  /** delete: 'not-found' | 'unified'; failed: 'fetch' | 'replay'; skipped: 'malformed' | 'duplicate'. */
  reason?: string;
  dryRunOutcome: OutcomeKind;
  /** Only where the dry run's reason differs from `reason` (a replay that failed is still a plain delete). */
  dryRunReason?: string;
  /** What the generator made this row to be; for people reading the file. */
  case: string;
}

export interface Expected {
  counts: Counts;
  dryRunCounts: Counts;
  outcomes: ExpectedOutcome[];
}

export interface ExampleFiles {
  'members.csv': string;
  'channel-users.json': string;
  'faults.json': string;
  'expected.json': string;
}

// ---------------------------------------------------------------------------------------------------------
// Seeded randomness (mulberry32): the same seed always writes the same files.

// ---------------------------------------------------------------------------------------------------------
// People and their contact data

/** A Korean mobile number 010-MMMM-LLLL. */
interface Phone {
  mid: string;
  last: string;
}

interface Contact {
  phone: Phone | null;
  email: string | null;
  unsubscribeEmail: boolean;
  unsubscribeTexting: boolean;
}

interface Person {
  nameKo: string;
  given: string;
  family: string;
}

const FAMILY = [
  ['김', 'Kim'],
  ['이', 'Lee'],
  ['박', 'Park'],
  ['최', 'Choi'],
  ['정', 'Jung'],
  ['강', 'Kang'],
  ['조', 'Cho'],
  ['윤', 'Yoon'],
  ['장', 'Jang'],
  ['임', 'Lim'],
] as const;
const GIVEN = [
  ['민수', 'Minsu'],
  ['서연', 'Seoyeon'],
  ['지훈', 'Jihoon'],
  ['하은', 'Haeun'],
  ['도윤', 'Doyoon'],
  ['수아', 'Sua'],
  ['예준', 'Yejun'],
  ['지우', 'Jiwoo'],
  ['시우', 'Siwoo'],
  ['서준', 'Seojun'],
  ['유진', 'Yujin'],
  ['현우', 'Hyunwoo'],
  ['지민', 'Jimin'],
  ['은서', 'Eunseo'],
  ['준호', 'Junho'],
] as const;
const DOMAINS = ['example.com', 'example.org', 'example.net'] as const;

const e164 = (p: Phone): string => `+8210${p.mid}${p.last}`;

/** Ways customers store the same number; all must normalise to the same E.164. */
const PHONE_FORMATS = {
  dashed: (p: Phone) => `010-${p.mid}-${p.last}`,
  digits: (p: Phone) => `010${p.mid}${p.last}`,
  e164: (p: Phone) => e164(p),
  plus82: (p: Phone) => `+82 10-${p.mid}-${p.last}`,
  plus82Trunk: (p: Phone) => `+82 010-${p.mid}-${p.last}`,
  spaced: (p: Phone) => `010 ${p.mid} ${p.last}`,
  dotted: (p: Phone) => `010.${p.mid}.${p.last}`,
  parens: (p: Phone) => `(010) ${p.mid}-${p.last}`,
} as const;
type PhoneFormat = keyof typeof PHONE_FORMATS;
const ORDINARY_PHONE_FORMATS: readonly PhoneFormat[] = [
  'dashed',
  'dashed',
  'dashed',
  'digits',
  'digits',
  'e164',
  'plus82',
];

const TRUE_SPELLINGS = ['true', 'TRUE', 'True', '1', 'yes', 'Yes', 'YES'] as const;
const FALSE_SPELLINGS = ['false', 'FALSE', 'False', '0', 'no', 'No', ''] as const;
const INVALID_BOOLEANS = ['maybe', 'ture', 'sometimes'] as const;

class People {
  private usedPhones = new Set<string>();
  private usedEmails = new Set<string>();
  constructor(private rng: SeededRng) {}

  person(): Person {
    const [famKo, fam] = this.rng.pick(FAMILY);
    const [givKo, giv] = this.rng.pick(GIVEN);
    return { nameKo: famKo + givKo, given: giv, family: fam };
  }

  /** A number nobody else in the data set has, so a "changed" number really is different. */
  phone(): Phone {
    for (;;) {
      const p = { mid: this.rng.digits(4), last: this.rng.digits(4) };
      if (p.mid.startsWith('0')) continue; // 010-0xxx is not a mobile range; keep every number valid
      if (this.usedPhones.has(e164(p))) continue;
      this.usedPhones.add(e164(p));
      return p;
    }
  }

  /** A lower-case address unique in the data set (compared case-insensitively). */
  email(who: Person): string {
    for (;;) {
      const local = `${who.given}.${who.family}${this.rng.int(1, 999)}`.toLowerCase();
      const address = `${local}@${this.rng.pick(DOMAINS)}`;
      if (this.usedEmails.has(address)) continue;
      this.usedEmails.add(address);
      return address;
    }
  }

  contact(who: Person): Contact {
    return {
      phone: this.rng.chance(0.95) ? this.phone() : null,
      email: this.rng.chance(0.9) ? this.email(who) : null,
      unsubscribeEmail: this.rng.chance(0.25),
      unsubscribeTexting: this.rng.chance(0.3),
    };
  }
}

// ---------------------------------------------------------------------------------------------------------
// One row of the customer's table, and the Channel Talk user behind it

interface Cells {
  memberId: string;
  mobileNumber: string;
  email: string;
  unsubscribeEmail: string;
  unsubscribeTexting: string;
  name: string;
}

type Decided =
  | { kind: 'unchanged' }
  | { kind: 'upsert'; fields: ComparedField[] }
  | { kind: 'delete'; reason: 'not-found' | 'unified' }
  | { kind: 'skipped'; reason: 'malformed' | 'duplicate' };

/** How a row gets its memberId once rows are in their final order. */
type IdKind =
  | { kind: 'sequential' }
  | { kind: 'fixed'; id: string }
  | { kind: 'empty' }
  /** copy: repeat the first row's cells exactly; else keep this row's own (conflicting) values. */
  | { kind: 'duplicate'; copy: boolean };

interface Row {
  label: string;
  cells: Omit<Cells, 'memberId'>;
  /** null: Channel Talk does not know this member (answers 404). memberId is filled in later. */
  user: ChannelUser | null;
  decided: Decided;
  idKind: IdKind;
  memberId?: string;
}

type ClassOfRow = 'unchanged' | 'upsert' | 'unified' | 'not-found';

function classOf(row: Row): ClassOfRow | undefined {
  const d = row.decided;
  if (d.kind === 'unchanged' || d.kind === 'upsert') return d.kind;
  if (d.kind === 'delete') return d.reason;
  return undefined;
}

/** What a stored row looks like when the customer holds `contact`, spelled in the chosen ways. */
interface Spelling {
  phone?: PhoneFormat;
  /** Overrides the phone cell entirely (unparsable values). */
  phoneCell?: string;
  /** Overrides the e-mail cell entirely (case/whitespace tricks). */
  emailCell?: string;
  unsubscribeEmailCell?: string;
  unsubscribeTextingCell?: string;
}

type ContactTweak = (c: Contact, who: Person) => Contact;

interface UserShape {
  type?: 'member' | 'lead' | 'unified';
  /** Fields Channel Talk changed that the customer never heard of. */
  changed?: ComparedField[];
  /** The change happened before the outage (the customer still missed it). */
  changedBeforeOutage?: boolean;
}

class RowFactory {
  constructor(
    private rng: SeededRng,
    private people: People,
  ) {}

  private bool(value: boolean): string {
    return value ? this.rng.pick(TRUE_SPELLINGS) : this.rng.pick(FALSE_SPELLINGS);
  }

  private storedName(who: Person): string {
    const r = this.rng.float();
    if (r < 0.7) return who.nameKo;
    if (r < 0.9) return `${who.family}, ${who.given}`; // needs quoting: a comma
    return `${who.given} "${who.family}"`; // needs quoting: embedded quotes
  }

  cells(who: Person, contact: Contact, spelling: Spelling = {}): Omit<Cells, 'memberId'> {
    const format = spelling.phone ?? this.rng.pick(ORDINARY_PHONE_FORMATS);
    return {
      mobileNumber: spelling.phoneCell ?? (contact.phone ? PHONE_FORMATS[format](contact.phone) : ''),
      email: spelling.emailCell ?? contact.email ?? '',
      unsubscribeEmail: spelling.unsubscribeEmailCell ?? this.bool(contact.unsubscribeEmail),
      unsubscribeTexting: spelling.unsubscribeTextingCell ?? this.bool(contact.unsubscribeTexting),
      name: this.storedName(who),
    };
  }

  /** A Channel Talk user in the API's shape; optional values are omitted when there are none. */
  user(who: Person, contact: Contact, shape: UserShape = {}): ChannelUser {
    const changed = shape.changed ?? [];
    const createdAt = this.rng.int(HISTORY_START, OUTAGE_START - 60 * DAY);
    let updatedAt: number;
    if (changed.length === 0) {
      // Untouched contacts may still have been updated (name, tags...) at any time, outage included.
      updatedAt = this.rng.int(createdAt, OUTAGE_END + 10 * DAY);
    } else if (shape.changedBeforeOutage) {
      updatedAt = this.rng.int(createdAt + DAY, OUTAGE_START - DAY);
    } else {
      updatedAt = this.rng.int(OUTAGE_START, OUTAGE_END);
    }
    const flagTime = (field: ComparedField, value: boolean): number | undefined => {
      if (changed.includes(field)) return updatedAt;
      return value || this.rng.chance(0.5) ? this.rng.int(createdAt, updatedAt) : undefined;
    };
    const emailAt = flagTime('unsubscribeEmail', contact.unsubscribeEmail);
    const textingAt = flagTime('unsubscribeTexting', contact.unsubscribeTexting);
    const phone = contact.phone ? e164(contact.phone) : undefined;
    const email = contact.email ?? undefined;
    return {
      id: this.rng.hex(24),
      channelId: CHANNEL_ID,
      memberId: '',
      veilId: this.rng.hex(24),
      type: shape.type ?? 'member',
      ...(shape.type === 'unified' ? { unifiedId: this.rng.hex(24) } : {}),
      name: who.nameKo,
      ...(email !== undefined ? { email } : {}),
      ...(phone !== undefined ? { mobileNumber: phone } : {}),
      unsubscribeEmail: contact.unsubscribeEmail,
      ...(emailAt !== undefined ? { unsubscribeEmailUpdatedAt: emailAt } : {}),
      unsubscribeTexting: contact.unsubscribeTexting,
      ...(textingAt !== undefined ? { unsubscribeTextingUpdatedAt: textingAt } : {}),
      profile: {
        name: who.nameKo,
        ...(email !== undefined ? { email } : {}),
        ...(phone !== undefined ? { mobileNumber: phone } : {}),
      },
      tags: this.rng.chance(0.2) ? [this.rng.pick(['vip', 'newsletter', 'wholesale'])] : [],
      createdAt,
      updatedAt,
      version: this.rng.int(1, 40),
    };
  }

  /**
   * What the customer still holds when Channel Talk's `current` changed in `fields`: for contacts a different
   * value, or none (added at Channel Talk), or one Channel Talk no longer has (`removed`).
   */
  stale(who: Person, current: Contact, fields: readonly ComparedField[]): { stored: Contact; current: Contact } {
    const stored = { ...current };
    const now = { ...current };
    for (const field of fields) {
      const r = this.rng.float();
      if (field === 'mobileNumber') {
        if (r < 0.7 || now.phone === null) {
          now.phone ??= this.people.phone();
          stored.phone = this.people.phone();
        } else if (r < 0.85) stored.phone = null;
        else now.phone = null;
      } else if (field === 'email') {
        if (r < 0.7 || now.email === null) {
          now.email ??= this.people.email(who);
          stored.email = this.people.email(who);
        } else if (r < 0.85) stored.email = null;
        else now.email = null;
      } else if (field === 'unsubscribeEmail') stored.unsubscribeEmail = !now.unsubscribeEmail;
      else stored.unsubscribeTexting = !now.unsubscribeTexting;
    }
    return { stored, current: now };
  }

  // --- the cases ------------------------------------------------------------------------------------------

  unchanged(
    label: string,
    spelling: (c: Contact) => Spelling = () => ({}),
    tweak?: (u: ChannelUser) => void,
    contact?: ContactTweak,
    type: 'member' | 'lead' = 'member',
  ): Row {
    const who = this.people.person();
    const base = this.people.contact(who);
    const c = contact ? contact(base, who) : base;
    const user = this.user(who, c, { type });
    tweak?.(user);
    return {
      label,
      cells: this.cells(who, c, spelling(c)),
      user,
      decided: { kind: 'unchanged' },
      idKind: { kind: 'sequential' },
    };
  }

  upsert(
    label: string,
    fields: ComparedField[],
    opts: {
      type?: 'member' | 'lead';
      spelling?: Spelling;
      contact?: ContactTweak;
      tweak?: (u: ChannelUser) => void;
      stale?: (c: Contact, who: Person) => { stored: Contact; current: Contact };
    } = {},
  ): Row {
    const who = this.people.person();
    const base = this.people.contact(who);
    const c = opts.contact ? opts.contact(base, who) : base;
    const { stored, current } = opts.stale ? opts.stale(c, who) : this.stale(who, c, fields);
    const user = this.user(who, current, {
      type: opts.type,
      changed: fields,
      changedBeforeOutage: this.rng.chance(0.2),
    });
    opts.tweak?.(user);
    return {
      label,
      cells: this.cells(who, stored, opts.spelling),
      user,
      decided: { kind: 'upsert', fields },
      idKind: { kind: 'sequential' },
    };
  }

  unified(label: string, differing: ComparedField[] = []): Row {
    const who = this.people.person();
    const { stored, current } = this.stale(who, this.people.contact(who), differing);
    const user = this.user(who, current, { type: 'unified', changed: differing });
    return {
      label,
      cells: this.cells(who, stored),
      user,
      decided: { kind: 'delete', reason: 'unified' },
      idKind: { kind: 'sequential' },
    };
  }

  notFound(label: string): Row {
    const who = this.people.person();
    return {
      label,
      cells: this.cells(who, this.people.contact(who)),
      user: null,
      decided: { kind: 'delete', reason: 'not-found' },
      idKind: { kind: 'sequential' },
    };
  }

  malformed(label: string, spelling: (c: Contact) => Spelling, idKind: IdKind = { kind: 'sequential' }): Row {
    const who = this.people.person();
    const c = this.people.contact(who);
    // Channel Talk knows them; the row must still never be looked up.
    return {
      label,
      cells: this.cells(who, c, spelling(c)),
      user: idKind.kind === 'empty' ? null : this.user(who, c),
      decided: { kind: 'skipped', reason: 'malformed' },
      idKind,
    };
  }

  /** A second row for an earlier member; its values may even disagree with the first one. */
  duplicate(label: string, copy: boolean): Row {
    const who = this.people.person();
    const cells = this.cells(who, this.people.contact(who));
    return {
      label,
      cells,
      user: null,
      decided: { kind: 'skipped', reason: 'duplicate' },
      idKind: { kind: 'duplicate', copy },
    };
  }

  withId(row: Row, id: string): Row {
    return { ...row, idKind: { kind: 'fixed', id } };
  }
}

const ALL_FIELDS: ComparedField[] = ['mobileNumber', 'email', 'unsubscribeEmail', 'unsubscribeTexting'];

function mixedCase(email: string, rng: SeededRng): string {
  const [local = '', domain = ''] = email.split('@');
  const upperFirst = local.charAt(0).toUpperCase() + local.slice(1);
  return rng.chance(0.5) ? `${upperFirst}@${domain.toUpperCase()}` : `${local.toUpperCase()}@${domain}`;
}

/** Makes sure the contact has the value the case is about. */
const withPhone =
  (people: People): ContactTweak =>
  (c) => ({ ...c, phone: c.phone ?? people.phone() });
const withEmail =
  (people: People): ContactTweak =>
  (c, who) => ({ ...c, email: c.email ?? people.email(who) });

/** Every row, before shuffling. Fixed counts for the tricky cases, the rest ordinary. */
function planRows(rng: SeededRng, people: People): Row[] {
  const f = new RowFactory(rng, people);
  const rows: Row[] = [];
  const times = (n: number, make: (i: number) => Row) => {
    for (let i = 0; i < n; i++) rows.push(make(i));
  };

  // Unchanged, with equalities a naive comparison gets wrong.
  const phoneSpelled = (format: PhoneFormat) => () => ({ phone: format });
  times(3, () => f.unchanged('unchanged:phone-digits-only', phoneSpelled('digits'), undefined, withPhone(people)));
  times(3, () => f.unchanged('unchanged:phone-plus82-spaced', phoneSpelled('plus82'), undefined, withPhone(people)));
  times(2, () =>
    f.unchanged('unchanged:phone-plus82-trunk-zero', phoneSpelled('plus82Trunk'), undefined, withPhone(people)),
  );
  times(3, (i) =>
    f.unchanged(
      'unchanged:phone-spaces-dots-parens',
      phoneSpelled((['spaced', 'dotted', 'parens'] as const)[i % 3] ?? 'spaced'),
      undefined,
      withPhone(people),
    ),
  );
  times(3, (i) =>
    f.unchanged(
      'unchanged:phone-only-in-profile',
      () => ({}),
      (u) => {
        if (i === 0) delete u.mobileNumber;
        else u.mobileNumber = i === 1 ? '' : null;
      },
      withPhone(people),
    ),
  );
  times(3, () =>
    f.unchanged(
      'unchanged:email-case',
      (c) => ({ emailCell: mixedCase(c.email ?? '', rng) }),
      undefined,
      withEmail(people),
    ),
  );
  times(2, () =>
    f.unchanged(
      'unchanged:channel-email-case',
      () => ({}),
      (u) => {
        u.email = mixedCase(String(u.email), rng);
      },
      withEmail(people),
    ),
  );
  times(3, (i) =>
    f.unchanged(
      'unchanged:email-whitespace',
      (c) => ({ emailCell: [` ${c.email}`, `${c.email}  `, `  ${c.email} `][i] ?? '' }),
      undefined,
      withEmail(people),
    ),
  );
  times(2, () =>
    f.unchanged(
      'unchanged:email-only-in-profile',
      () => ({}),
      (u) => void delete u.email,
      withEmail(people),
    ),
  );
  times(3, (i) =>
    f.unchanged(
      'unchanged:email-empty-vs-missing',
      () => ({}),
      (u) => {
        // Stored empty; Channel Talk omits it, sends null, or sends ''.
        if (i === 1) u.email = null;
        if (i === 2) u.email = '';
      },
      (c) => ({ ...c, email: null }),
    ),
  );
  times(2, () =>
    f.unchanged(
      'unchanged:email-whitespace-only',
      () => ({ emailCell: '   ' }),
      undefined,
      (c) => ({ ...c, email: null }),
    ),
  );
  times(2, () =>
    f.unchanged(
      'unchanged:phone-empty-vs-missing',
      () => ({}),
      undefined,
      (c) => ({ ...c, phone: null }),
    ),
  );
  times(3, () =>
    f.unchanged(
      'unchanged:unsubscribe-empty-vs-false',
      () => ({ unsubscribeEmailCell: '', unsubscribeTextingCell: '' }),
      undefined,
      (c) => ({ ...c, unsubscribeEmail: false, unsubscribeTexting: false }),
    ),
  );
  times(3, (i) =>
    f.unchanged(
      'unchanged:unsubscribe-false-vs-missing',
      () => ({
        unsubscribeEmailCell: ['false', '0', 'No'][i] ?? 'false',
        unsubscribeTextingCell: ['FALSE', 'no', '0'][i] ?? '0',
      }),
      (u) => {
        if (i === 0) {
          delete u.unsubscribeEmail;
          delete u.unsubscribeTexting;
        } else {
          u.unsubscribeEmail = null;
          u.unsubscribeTexting = i === 1 ? null : false;
        }
      },
      (c) => ({ ...c, unsubscribeEmail: false, unsubscribeTexting: false }),
    ),
  );
  times(2, (i) =>
    f.unchanged(
      'unchanged:phone-unparsable-but-equal',
      () => ({ phoneCell: ['12-34', '5 55'][i] ?? '12-34' }),
      (u) => {
        // Neither side is a valid number; both spell the same digits.
        u.mobileNumber = ['1234', '5-55'][i] ?? '1234';
        if (u.profile) u.profile.mobileNumber = u.mobileNumber;
      },
    ),
  );
  times(2, () => f.unchanged('unchanged:lead', () => ({}), undefined, undefined, 'lead'));

  // Upserts a naive comparison would miss or mis-report.
  times(2, () =>
    f.upsert('upsert:phone-added-at-channel', ['mobileNumber'], {
      stale: (c) => ({ stored: { ...c, phone: null }, current: { ...c, phone: c.phone ?? people.phone() } }),
    }),
  );
  times(2, () =>
    f.upsert('upsert:email-removed-at-channel', ['email'], {
      stale: (c, who) => ({ stored: { ...c, email: c.email ?? people.email(who) }, current: { ...c, email: null } }),
    }),
  );
  times(2, () =>
    f.upsert('upsert:unsubscribe-true-vs-missing', ['unsubscribeEmail'], {
      contact: (c) => ({ ...c, unsubscribeEmail: false }),
      stale: (c) => ({ stored: { ...c, unsubscribeEmail: true }, current: c }),
      tweak: (u) => {
        delete u.unsubscribeEmail;
        delete u.unsubscribeEmailUpdatedAt;
      },
    }),
  );
  times(2, () => f.upsert('upsert:lead', ['email'], { type: 'lead', contact: withEmail(people) }));
  times(2, () =>
    f.upsert('upsert:phone-local-format-but-different', ['mobileNumber'], {
      spelling: { phone: 'dashed' },
      contact: withPhone(people),
    }),
  );

  // Deletes.
  const unifiedDifferences: ComparedField[][] = [['email'], ['mobileNumber', 'unsubscribeTexting'], ALL_FIELDS];
  for (const differing of unifiedDifferences) rows.push(f.unified('delete:unified-with-differences', differing));

  // Rows that must be skipped.
  times(3, (i) =>
    f.malformed('skipped:invalid-boolean', () =>
      i === 1
        ? { unsubscribeTextingCell: INVALID_BOOLEANS[i] }
        : { unsubscribeEmailCell: INVALID_BOOLEANS[i] ?? 'maybe' },
    ),
  );
  times(2, () => f.malformed('skipped:empty-memberId', () => ({}), { kind: 'empty' }));
  times(3, (i) => f.duplicate('skipped:duplicate', i === 0));

  // memberIds that need URL-encoding; all valid and processed normally.
  rows.push(
    f.withId(f.upsert('upsert:memberId-with-space', ['email'], { contact: withEmail(people) }), 'kim minsu 77'),
  );
  rows.push(f.withId(f.unchanged('unchanged:memberId-with-slash'), 'team/a/0042'));
  rows.push(f.withId(f.upsert('upsert:memberId-with-at', ['unsubscribeTexting']), 'm@0043'));
  rows.push(f.withId(f.notFound('delete:memberId-with-hash'), 'm#0044'));
  rows.push(
    f.withId(f.upsert('upsert:memberId-korean', ['mobileNumber'], { contact: withPhone(people) }), '회원-0045'),
  );
  rows.push(f.withId(f.unified('delete:memberId-korean-unified'), '고객 0046'));

  // Ordinary rows: about half unchanged, a third upserts, a tenth deletes.
  const single = (field: ComparedField) => () =>
    f.upsert(`upsert:${field}`, [field], { contact: field === 'mobileNumber' ? withPhone(people) : undefined });
  times(16, single('mobileNumber'));
  times(16, single('email'));
  times(16, single('unsubscribeEmail'));
  times(16, single('unsubscribeTexting'));
  times(20, () => {
    const fields = ALL_FIELDS.filter(() => rng.chance(0.6));
    while (fields.length < 2) {
      const extra = rng.pick(ALL_FIELDS);
      if (!fields.includes(extra)) fields.push(extra);
    }
    fields.sort((a, b) => ALL_FIELDS.indexOf(a) - ALL_FIELDS.indexOf(b));
    return f.upsert('upsert:several-fields', fields);
  });
  times(13, () => f.unified('delete:unified'));
  times(13, () => f.notFound('delete:not-found'));
  times(ROWS - rows.length, () => f.unchanged('unchanged:ordinary'));
  return rows;
}

/** Gives every row its memberId, now that the order is final. Duplicates copy an earlier ordinary row. */
function assignIds(rows: Row[], rng: SeededRng): void {
  let seq = 0;
  const usedAsDuplicateTarget = new Set<number>();
  rows.forEach((row, index) => {
    const kind = row.idKind;
    if (kind.kind === 'sequential') row.memberId = `m-${String(++seq).padStart(4, '0')}`;
    else if (kind.kind === 'fixed') row.memberId = kind.id;
    else if (kind.kind === 'empty') row.memberId = '';
    else {
      const earlier = rows
        .slice(0, index)
        .map((r, i) => ({ r, i }))
        .filter(({ r, i }) => r.label === 'unchanged:ordinary' && !usedAsDuplicateTarget.has(i));
      const target = earlier.length > 0 ? rng.pick(earlier) : undefined;
      if (!target) throw new Error(`no earlier row for the duplicate on line ${index + 2}; change the seed`);
      usedAsDuplicateTarget.add(target.i);
      row.memberId = target.r.memberId;
      if (kind.copy) row.cells = { ...target.r.cells };
    }
    if (row.user) row.user.memberId = row.memberId;
  });
}

// ---------------------------------------------------------------------------------------------------------
// Faults: attached to ordinary rows so that each one's effect is unambiguous

const CHANNEL_FAULTS: Array<[ChannelFault, ClassOfRow]> = [
  [{ status5xx: 2 }, 'unchanged'],
  [{ status5xx: 2 }, 'upsert'],
  [{ status5xx: 2 }, 'not-found'],
  [{ status5xx: 4 }, 'upsert'], // recovers on the last allowed attempt
  [{ status5xx: 5 }, 'unchanged'], // fails on the last allowed attempt
  [{ status5xx: 10 }, 'upsert'],
  [{ status5xx: 10 }, 'unchanged'],
  [{ malformed: 2 }, 'upsert'],
  [{ malformed: 2 }, 'unified'],
  [{ malformed: 10 }, 'unchanged'],
  [{ malformed: 10 }, 'not-found'],
  [{ reset: 1 }, 'upsert'],
  [{ reset: 1 }, 'unchanged'],
  [{ reset: 1, status5xx: 1 }, 'not-found'],
  [{ delayMs: 150 }, 'unchanged'],
  [{ delayMs: 150 }, 'upsert'],
];

const RECEIVER_FAULTS: Array<[ReceiverBehaviour, ClassOfRow]> = [
  [{ status: 400 }, 'upsert'],
  [{ status: 400 }, 'upsert'],
  [{ status: 400 }, 'unified'],
  [{ status: 400 }, 'not-found'],
  [{ status: 503, times: 2 }, 'upsert'],
  [{ status: 503, times: 2 }, 'not-found'],
  [{ status: 500, times: 1 }, 'unified'],
  [{ status: 400 }, 'unchanged'], // nothing is sent, so this never matters
];

const isOrdinary = (row: Row): boolean =>
  /^(unchanged:ordinary|upsert:(mobileNumber|email|unsubscribe\w+|several-fields)|delete:(unified|not-found))$/.test(
    row.label,
  );

function assignFaults(rows: Row[], rng: SeededRng): Faults {
  const duplicated = new Set(
    rows.filter((r) => r.decided.kind === 'skipped' && r.decided.reason === 'duplicate').map((r) => r.memberId),
  );
  const taken = new Set<string>();
  const choose = (cls: ClassOfRow): string => {
    const candidates = rows.filter(
      (r) => isOrdinary(r) && classOf(r) === cls && r.memberId && !taken.has(r.memberId) && !duplicated.has(r.memberId),
    );
    const row = rng.pick(candidates);
    const id = row.memberId ?? '';
    taken.add(id);
    return id;
  };
  const faults: Faults = { channel: {}, receiver: {} };
  for (const [fault, cls] of CHANNEL_FAULTS) faults.channel[choose(cls)] = fault;
  for (const [behaviour, cls] of RECEIVER_FAULTS) faults.receiver[choose(cls)] = behaviour;
  return faults;
}

const fetchGivesUp = (f: ChannelFault | undefined): boolean =>
  f !== undefined && (f.reset ?? 0) + (f.status5xx ?? 0) + (f.malformed ?? 0) >= MAX_FETCH_ATTEMPTS;

const replayGivesUp = (b: ReceiverBehaviour | undefined): boolean =>
  b !== undefined && b.times === undefined && b.status >= 400;

// ---------------------------------------------------------------------------------------------------------
// The known answer

function expectedOutcome(row: Row, line: number, faults: Faults): ExpectedOutcome {
  const memberId = row.memberId ?? '';
  const d = row.decided;
  const decision: Pick<ExpectedOutcome, 'outcome' | 'fields' | 'reason'> =
    d.kind === 'unchanged'
      ? { outcome: 'unchanged' }
      : d.kind === 'upsert'
        ? { outcome: 'upsert', fields: d.fields }
        : d.kind === 'delete'
          ? { outcome: 'delete', reason: d.reason }
          : { outcome: 'skipped', reason: d.reason };

  if (d.kind !== 'skipped' && fetchGivesUp(faults.channel[memberId])) {
    return { line, memberId, outcome: 'failed', reason: 'fetch', dryRunOutcome: 'failed', case: row.label };
  }
  const replayed = d.kind === 'upsert' || d.kind === 'delete';
  if (replayed && replayGivesUp(faults.receiver[memberId])) {
    return {
      line,
      memberId,
      outcome: 'failed',
      ...(decision.fields ? { fields: decision.fields } : {}),
      reason: 'replay',
      dryRunOutcome: decision.outcome,
      ...(decision.reason ? { dryRunReason: decision.reason } : {}),
      case: row.label,
    };
  }
  return { line, memberId, ...decision, dryRunOutcome: decision.outcome, case: row.label };
}

function tally(outcomes: OutcomeKind[]): Counts {
  const n = (k: OutcomeKind) => outcomes.filter((o) => o === k).length;
  return {
    rows: outcomes.length,
    upserts: n('upsert'),
    deletes: n('delete'),
    unchanged: n('unchanged'),
    failed: n('failed'),
    skipped: n('skipped'),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Serialisation

const CSV_COLUMNS = ['memberId', 'mobileNumber', 'email', 'unsubscribeEmail', 'unsubscribeTexting', 'name'] as const;

function csvCell(value: string): string {
  if (/[\r\n]/.test(value)) throw new Error('a CSV record must stay on one line');
  return /[",]|^\s|\s$/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

function toCsv(rows: Row[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const row of rows) {
    const cells: Cells = { memberId: row.memberId ?? '', ...row.cells };
    lines.push(CSV_COLUMNS.map((c) => csvCell(cells[c])).join(','));
  }
  return lines.join('\n') + '\n';
}

/** One item per line: small diffs, still valid JSON. */
function jsonLines(key: string, items: unknown[], head: Record<string, unknown> = {}): string {
  const headLines = Object.entries(head).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},\n`);
  const body = items.map((item) => `    ${JSON.stringify(item)}`).join(',\n');
  return `{\n${headLines.join('')}  ${JSON.stringify(key)}: [\n${body}\n  ]\n}\n`;
}

/** One member per line. */
function faultsJson(faults: Faults): string {
  const section = (entries: Record<string, unknown>) =>
    Object.entries(entries)
      .map(([id, v]) => `    ${JSON.stringify(id)}: ${JSON.stringify(v)}`)
      .join(',\n');
  return `{\n  "channel": {\n${section(faults.channel)}\n  },\n  "receiver": {\n${section(faults.receiver)}\n  }\n}\n`;
}

/** Users Channel Talk has that the customer's table does not: the repair must never look them up. */
function strangers(f: RowFactory, people: People): ChannelUser[] {
  return [1, 2, 3].map((n) => {
    const who = people.person();
    const user = f.user(who, people.contact(who));
    user.memberId = `m-9${String(n).padStart(3, '0')}`;
    return user;
  });
}

export function buildExamples(seed: number = SEED): ExampleFiles {
  const rng = new SeededRng(seed);
  const people = new People(rng);
  const rows = rng.shuffle(planRows(rng, people));
  assignIds(rows, rng);
  const faults = assignFaults(rows, rng);
  const outcomes = rows.map((row, i) => expectedOutcome(row, i + 2, faults));
  const expected: Expected = {
    counts: tally(outcomes.map((o) => o.outcome)),
    dryRunCounts: tally(outcomes.map((o) => o.dryRunOutcome)),
    outcomes,
  };
  const users = [
    ...rows.flatMap((r) => (r.user && r.decided.kind !== 'skipped' ? [r.user] : [])),
    ...strangers(new RowFactory(rng, people), people),
  ];
  // Rows skipped as malformed still have a Channel Talk user when they have a memberId.
  for (const r of rows) if (r.user && r.decided.kind === 'skipped') users.push(r.user);
  return {
    'members.csv': toCsv(rows),
    'channel-users.json': jsonLines('users', users),
    'faults.json': faultsJson(faults),
    'expected.json': jsonLines('outcomes', outcomes, { counts: expected.counts, dryRunCounts: expected.dryRunCounts }),
  };
}

if (require.main === module) {
  const outDir = process.argv[2] ?? __dirname;
  const files = buildExamples();
  for (const [name, content] of Object.entries(files)) writeFileSync(join(outDir, name), content);
  console.log(`wrote ${Object.keys(files).join(', ')} to ${outDir}`);
}
