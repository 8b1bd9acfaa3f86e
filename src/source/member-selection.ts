import { hash } from 'node:crypto';
import { COMPARED_FIELDS, type ComparedField, type PlannedDecision } from '../domain/types';

/**
 * The memberIds an `only` or `fromPlan` run selects, each with what the plan decided, without holding a string or
 * an object per member: an open-addressing table of 64-bit memberId hashes with one packed Int32 code per slot, in
 * typed arrays (12 bytes a slot, 25 for a verify selection, at most 2 slots per member, off the JS heap), as MemberIdIndex does for duplicates.
 * Two memberIds share a 64-bit hash with probability about n²/2⁶⁵; such a member would be selected too (and, being
 * checked against Channel Talk like any other, replayed only if it differs).
 *
 * A code: bit 0 set (0 = empty slot); bits 1-2 the action (0 none, 1 upsert, 2 delete); bits 3-6 the planned fields
 * (COMPARED_FIELDS order); bits 7.. the planned reason, as 1 + its index in a small table of distinct reasons.
 */
export class MemberSelection {
  private hi = new Uint32Array(1 << 10);
  private lo = new Uint32Array(1 << 10);
  private codes = new Int32Array(1 << 10);
  private count = 0;
  // A verify selection's extra columns (the repair's source line and delivery time, whether the export held the
  // member): allocated by the first add() that gives them, so `only` and `fromPlan` selections stay 12 bytes a slot.
  private lines: Int32Array | undefined;
  private times: Float64Array | undefined;
  private marks: Uint8Array | undefined;
  private readonly reasons: string[] = [];
  private readonly reasonIndex = new Map<string, number>();

  get size(): number {
    return this.count;
  }

  /** Bytes held by the table (what grows with the selection). */
  get byteLength(): number {
    const extra = (this.lines?.byteLength ?? 0) + (this.times?.byteLength ?? 0) + (this.marks?.byteLength ?? 0);
    return this.hi.byteLength + this.lo.byteLength + this.codes.byteLength + extra;
  }

  /**
   * Selects a memberId with its plan (null: no plan) and, for a verify run, the earlier run's source line and
   * delivery time (epoch ms). A memberId selected before keeps its first plan.
   */
  add(memberId: string, planned: PlannedDecision | null, at?: { line: number; time: number }): void {
    const [hi, lo] = digest(memberId);
    if ((this.count + 1) * 2 > this.codes.length) this.grow();
    if (at && !this.lines) {
      this.lines = new Int32Array(this.codes.length);
      this.times = new Float64Array(this.codes.length);
      this.marks = new Uint8Array(this.codes.length);
    }
    const slot = this.find(hi, lo);
    if (this.codes[slot] !== 0) return;
    this.hi[slot] = hi;
    this.lo[slot] = lo;
    this.codes[slot] = this.encode(planned);
    if (at) {
      this.lines![slot] = at.line;
      this.times![slot] = at.time;
    }
    this.count++;
  }

  /** The line and time given to add(), if any. */
  at(memberId: string): { line: number; time: number } | undefined {
    const [hi, lo] = digest(memberId);
    const slot = this.find(hi, lo);
    if (this.codes[slot] === 0 || !this.lines || this.lines[slot] === 0) return undefined;
    return { line: this.lines[slot]!, time: this.times![slot]! };
  }

  /** Marks a selected memberId (a verify run: the export holds it); true only the first time. */
  mark(memberId: string): boolean {
    const [hi, lo] = digest(memberId);
    const slot = this.find(hi, lo);
    if (this.codes[slot] === 0) return false;
    this.marks ??= new Uint8Array(this.codes.length);
    if (this.marks[slot] === 1) return false;
    this.marks[slot] = 1;
    return true;
  }

  /** Whether mark() was called for this memberId. */
  marked(memberId: string): boolean {
    const [hi, lo] = digest(memberId);
    return this.marks?.[this.find(hi, lo)] === 1;
  }

  has(memberId: string): boolean {
    const [hi, lo] = digest(memberId);
    return this.codes[this.find(hi, lo)] !== 0;
  }

  /** The plan of a selected memberId; null when selected without one; undefined when not selected. */
  get(memberId: string): PlannedDecision | null | undefined {
    const [hi, lo] = digest(memberId);
    const code = this.codes[this.find(hi, lo)]!;
    return code === 0 ? undefined : this.decode(code);
  }

  private encode(planned: PlannedDecision | null): number {
    if (!planned) return 1;
    let code = 1 | ((planned.action === 'upsert' ? 1 : 2) << 1);
    for (const field of planned.fields ?? []) code |= 1 << (3 + COMPARED_FIELDS.indexOf(field));
    if (planned.reason !== undefined) {
      let index = this.reasonIndex.get(planned.reason);
      if (index === undefined) {
        index = this.reasons.length;
        // Plans carry a handful of reasons (not-found, unified); 2^24 leaves the code positive.
        if (index >= 1 << 23) throw new RangeError('too many distinct planned reasons');
        this.reasons.push(planned.reason);
        this.reasonIndex.set(planned.reason, index);
      }
      code |= (index + 1) << 7;
    }
    return code;
  }

  private decode(code: number): PlannedDecision | null {
    const action = (code >> 1) & 3;
    if (action === 0) return null;
    const fields: ComparedField[] = COMPARED_FIELDS.filter((_, bit) => (code >> (3 + bit)) & 1);
    const reason = code >> 7;
    return {
      action: action === 1 ? 'upsert' : 'delete',
      ...(fields.length > 0 ? { fields } : {}),
      ...(reason > 0 ? { reason: this.reasons[reason - 1]! } : {}),
    };
  }

  private find(hi: number, lo: number): number {
    const mask = this.codes.length - 1;
    for (let slot = lo & mask; ; slot = (slot + 1) & mask) {
      if (this.codes[slot] === 0 || (this.hi[slot] === hi && this.lo[slot] === lo)) return slot;
    }
  }

  private grow(): void {
    const { hi, lo, codes, lines, times, marks } = this;
    const size = codes.length * 2;
    this.hi = new Uint32Array(size);
    this.lo = new Uint32Array(size);
    this.codes = new Int32Array(size);
    if (lines) this.lines = new Int32Array(size);
    if (times) this.times = new Float64Array(size);
    if (marks) this.marks = new Uint8Array(size);
    for (let i = 0; i < codes.length; i++) {
      if (codes[i] === 0) continue;
      const slot = this.find(hi[i]!, lo[i]!);
      this.hi[slot] = hi[i]!;
      this.lo[slot] = lo[i]!;
      this.codes[slot] = codes[i]!;
      if (lines) this.lines![slot] = lines[i]!;
      if (times) this.times![slot] = times[i]!;
      if (marks) this.marks![slot] = marks[i]!;
    }
  }
}

function digest(memberId: string): [number, number] {
  const d = hash('sha1', memberId, 'buffer') as unknown as Buffer; // one-shot: no Hash object per member
  return [d.readUInt32LE(0), d.readUInt32LE(4)];
}
