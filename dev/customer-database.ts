import { writeFile } from 'node:fs/promises';
import type { Delivery } from './simulator/webhook-receiver';
import { readSource } from '../src/source/read-source';
import { MEMBER_COLUMNS, type ComparedField, type StoredMember } from '../src/domain/types';

// The customer's side of a repair, for the demo's "prove it" step and the verify tests: a "customer database" its webhook logic writes to. The
// receiver accepted every replay (2xx); what the logic really applied is decided here: some members' replays are
// dropped whole, some only in part (chosen fields left as they were). The database is then exported again (a CSV
// file) or is a PostgreSQL table updated in place, and the verify run reads that.

/** Which accepted replays the customer's logic does not apply: whole members, or only some fields of an upsert. */
export interface Drops {
  members?: ReadonlySet<string>;
  fields?: Readonly<Record<string, readonly ComparedField[]>>;
}

/** One write of the customer's logic. */
export type CustomerWrite =
  | { memberId: string; kind: 'delete' }
  | { memberId: string; kind: 'update'; values: Partial<Omit<StoredMember, 'memberId'>> };

const text = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v : null);

/** What the customer's logic writes for the accepted deliveries, in the order they arrived, less the drops. */
export function customerWrites(deliveries: readonly Delivery[], drops: Drops = {}): CustomerWrite[] {
  const writes: CustomerWrite[] = [];
  for (const d of [...deliveries].sort((a, b) => a.seq - b.seq)) {
    if (d.status < 200 || d.status > 299 || d.memberId === null || drops.members?.has(d.memberId)) continue;
    const body = d.body as { event?: string; entity?: Record<string, unknown> };
    if (body.event === 'delete') {
      writes.push({ memberId: d.memberId, kind: 'delete' });
      continue;
    }
    const entity = body.entity ?? {};
    const profile = (entity.profile ?? {}) as Record<string, unknown>;
    const all: Record<ComparedField, string | boolean | null> = {
      mobileNumber: text(entity.mobileNumber) ?? text(profile.mobileNumber),
      email: text(entity.email) ?? text(profile.email),
      unsubscribeEmail: entity.unsubscribeEmail === true,
      unsubscribeTexting: entity.unsubscribeTexting === true,
    };
    const dropped = new Set(drops.fields?.[d.memberId] ?? []);
    const values = Object.fromEntries(Object.entries(all).filter(([field]) => !dropped.has(field as ComparedField)));
    writes.push({ memberId: d.memberId, kind: 'update', values });
  }
  return writes;
}

/** A customer database held as rows (first row of each memberId of an export), exported as CSV. */
export class CustomerRows {
  private constructor(readonly rows: Map<string, StoredMember>) {}

  static async fromCsv(file: string): Promise<CustomerRows> {
    const rows = new Map<string, StoredMember>();
    for await (const entry of readSource({ type: 'csv', path: file })) {
      if ('member' in entry && !rows.has(entry.member.memberId)) rows.set(entry.member.memberId, entry.member);
    }
    return new CustomerRows(rows);
  }

  apply(writes: readonly CustomerWrite[]): void {
    for (const w of writes) {
      const row = this.rows.get(w.memberId);
      if (w.kind === 'delete') this.rows.delete(w.memberId);
      else if (row) this.rows.set(w.memberId, { ...row, ...w.values });
    }
  }

  /** The export the verify run reads: the five columns, one row per member. */
  async exportCsv(file: string): Promise<void> {
    const cell = (v: string | boolean | null) => {
      const s = v === null ? '' : String(v);
      return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
    };
    const lines = [...this.rows.values()].map((row) => MEMBER_COLUMNS.map((c) => cell(row[c])).join(','));
    await writeFile(file, [MEMBER_COLUMNS.join(','), ...lines].join('\n') + '\n');
  }
}

/** The same writes as SQL on a table holding the five columns under their own (quoted) names. */
export async function applyToTable(
  query: (sql: string, values: unknown[]) => Promise<unknown>,
  table: string,
  writes: readonly CustomerWrite[],
): Promise<void> {
  for (const w of writes) {
    if (w.kind === 'delete') {
      await query(`DELETE FROM ${table} WHERE "memberId" = $1`, [w.memberId]);
      continue;
    }
    const entries = Object.entries(w.values);
    if (entries.length === 0) continue;
    const set = entries.map(([column], i) => `"${column}" = $${i + 2}`).join(', ');
    await query(`UPDATE ${table} SET ${set} WHERE "memberId" = $1`, [w.memberId, ...entries.map(([, v]) => v)]);
  }
}
