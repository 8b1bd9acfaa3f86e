import { hash } from 'node:crypto';

/**
 * First line of each memberId, for duplicate detection over sources of millions of rows without
 * holding every memberId as a string: an open-addressing table of 64-bit hashes in typed arrays
 * (12 bytes a slot, off the JS heap). Two different memberIds share a 64-bit hash with probability
 * about n²/2⁶⁵ (3·10⁻⁸ for a million members); such a pair would be reported as a duplicate.
 */
export class MemberIdIndex {
  private hi = new Uint32Array(1 << 16);
  private lo = new Uint32Array(1 << 16);
  private lines = new Int32Array(1 << 16); // 0 = empty slot (source lines start at 1)
  private size = 0;

  /** The line first seen with this memberId, recording `line` if it is new. */
  firstLine(memberId: string, line: number): number | undefined {
    const digest = hash('sha1', memberId, 'buffer') as unknown as Buffer; // one-shot: no Hash object per row
    const hi = digest.readUInt32LE(0);
    const lo = digest.readUInt32LE(4);
    if ((this.size + 1) * 2 > this.lines.length) this.grow();
    const slot = this.find(hi, lo);
    if (this.lines[slot] !== 0) return this.lines[slot];
    this.hi[slot] = hi;
    this.lo[slot] = lo;
    this.lines[slot] = line;
    this.size++;
    return undefined;
  }

  private find(hi: number, lo: number): number {
    const mask = this.lines.length - 1;
    for (let slot = lo & mask; ; slot = (slot + 1) & mask) {
      if (this.lines[slot] === 0 || (this.hi[slot] === hi && this.lo[slot] === lo)) return slot;
    }
  }

  private grow(): void {
    const { hi, lo, lines } = this;
    this.hi = new Uint32Array(lines.length * 2);
    this.lo = new Uint32Array(lines.length * 2);
    this.lines = new Int32Array(lines.length * 2);
    for (let i = 0; i < lines.length; i++) {
      if (lines[i] === 0) continue;
      const slot = this.find(hi[i]!, lo[i]!);
      this.hi[slot] = hi[i]!;
      this.lo[slot] = lo[i]!;
      this.lines[slot] = lines[i]!;
    }
  }
}
