/**
 * First line of each memberId, for duplicate detection over sources of millions of rows without
 * holding every memberId as a string: an open-addressing table of 64-bit hashes in typed arrays
 * (12 bytes a slot, off the JS heap). Two different memberIds share a 64-bit hash with probability
 * about n²/2⁶⁵ (3·10⁻⁸ for a million members); such a pair would be reported as a duplicate.
 *
 * The hash is two independently seeded 32-bit lanes over the UTF-16 code units (cyrb53's mixing, both
 * lanes kept whole): not cryptographic, which nothing here needs, and a tenth of the cost of SHA-1 through
 * node:crypto, which was 8% of preparing a million rows.
 */
export class MemberIdIndex {
  private hi = new Uint32Array(1 << 16);
  private lo = new Uint32Array(1 << 16);
  private lines = new Int32Array(1 << 16); // 0 = empty slot (source lines start at 1)
  private size = 0;

  /** The line first seen with this memberId, recording `line` if it is new. */
  firstLine(memberId: string, line: number): number | undefined {
    const [hi, lo] = hash64(memberId);
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

/** 64 bits of hash of `text` as two unsigned 32-bit halves (see the class comment). */
export function hash64(text: string): [number, number] {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return [h1 >>> 0, h2 >>> 0];
}
