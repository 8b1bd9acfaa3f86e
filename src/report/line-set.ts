/**
 * A set of source line numbers as a growable bitset: a million lines cost 125 KB, where a Set<number>
 * would cost tens of megabytes. Used to keep the first audit record of a line and drop repeats.
 */
/** Largest line number a LineSet takes (32 MB of bits); an audit entry beyond it is treated as unreadable. */
export const MAX_LINE = 2 ** 28;

export class LineSet {
  private bits = new Uint8Array(1024);

  has(line: number): boolean {
    const byte = line >>> 3;
    return byte < this.bits.length && (this.bits[byte]! & (1 << (line & 7))) !== 0;
  }

  /** Adds the line (a positive integer up to MAX_LINE); false if it was already there. */
  add(line: number): boolean {
    if (!Number.isInteger(line) || line < 0 || line > MAX_LINE) throw new RangeError(`line ${line} is out of range`);
    if (this.has(line)) return false;
    const byte = line >>> 3;
    if (byte >= this.bits.length) {
      let size = this.bits.length;
      while (size <= byte) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.bits);
      this.bits = grown;
    }
    this.bits[byte] = (this.bits[byte] ?? 0) | (1 << (line & 7));
    return true;
  }
}
