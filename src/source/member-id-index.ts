import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FuseFilter, type FuseScratch } from './fuse-filter';

/**
 * First line of each memberId, for duplicate detection over sources of tens of millions of rows in memory that
 * does not grow with them (issue 26: a table that doubled at half full held 576 MiB at ten million members).
 *
 * Every memberId is kept as a 64-bit hash with its line. The newest ones are in an open-addressing table in typed
 * arrays (12 bytes a slot, off the JS heap) that grows up to `maxSlots`; when it is half full at that size, its
 * entries are sorted and written to a spill file as one run, and the table starts empty again. A run keeps in
 * memory only a binary fuse filter (fuse-filter.ts: 4-bit fingerprints, 4.4 bits a memberId at the default size,
 * 6.25% false positives) and every 256th hash; a memberId the filter may hold is looked up with one positioned read
 * of 2 KiB, and its line with one of 4 bytes. So a source of up to maxSlots / 2 memberIds (262,144 by default) is
 * handled as before, all in memory; ten million hold 6 MiB of table and 5.7 MB of filters and fence keys, and 11.5
 * million of their lookups read the disk (the page cache: 31 s of CPU for the whole index, measured). The filters
 * took 8-bit fingerprints before (11.0 MB, 0.8 million reads, 10 s), and split-block Bloom filters before that
 * (10 bits a memberId for about 1.2% false positives: 12.5 MB, 2.4 million reads) (issue 26).
 *
 * The spill file is unlinked as soon as it is opened (it holds hashes of memberIds, pseudonymous data): the
 * system frees it when close() runs or the process ends, whatever ends it.
 *
 * Two different memberIds share a 64-bit hash with probability about n²/2⁶⁵ (3·10⁻⁶ for ten million members);
 * such a pair would be reported as a duplicate. The hash is two independently seeded 32-bit lanes over the UTF-16
 * code units (cyrb53's mixing, both lanes kept whole): not cryptographic, which nothing here needs, and a tenth of
 * the cost of SHA-1 through node:crypto, which was 8% of preparing a million rows.
 */
export class MemberIdIndex {
  private hi = new Uint32Array(INITIAL_SLOTS);
  private lo = new Uint32Array(INITIAL_SLOTS);
  private lines = new Int32Array(INITIAL_SLOTS); // 0 = empty slot (source lines start at 1)
  private size = 0;
  private readonly runs: SpilledRun[] = [];
  private readonly slabs = new RunMemory();
  private spill: SpillFile | undefined;
  private readonly maxSlots: number;
  private readonly spillDir: string;

  constructor(options: { maxSlots?: number; spillDir?: string } = {}) {
    this.maxSlots = Math.max(INITIAL_SLOTS, options.maxSlots ?? DEFAULT_MAX_SLOTS);
    if ((this.maxSlots & (this.maxSlots - 1)) !== 0) throw new RangeError('maxSlots must be a power of two');
    this.spillDir = options.spillDir ?? tmpdir();
  }

  /** The line first seen with this memberId, recording `line` if it is new. */
  firstLine(memberId: string, line: number): number | undefined {
    const [hi, lo] = hash64(memberId);
    let slot = this.find(hi, lo);
    if (this.lines[slot] !== 0) return this.lines[slot];
    for (const run of this.runs) {
      const first = run.lineOf(hi, lo);
      if (first !== undefined) return first;
    }
    if ((this.size + 1) * 2 > this.lines.length) {
      if (this.lines.length < this.maxSlots) this.grow();
      else this.spillTable();
      slot = this.find(hi, lo);
    }
    this.hi[slot] = hi;
    this.lo[slot] = lo;
    this.lines[slot] = line;
    this.size++;
    return undefined;
  }

  /** Runs written to the spill file so far (for tests and measurements). */
  get spilledRuns(): number {
    return this.runs.length;
  }

  /** Bytes held in memory: the table, each run's filter and fence keys, and the spill file's read buffers. */
  get byteLength(): number {
    const table = this.hi.byteLength + this.lo.byteLength + this.lines.byteLength + (this.spill?.byteLength ?? 0);
    return this.runs.reduce((sum, run) => sum + run.byteLength, table);
  }

  /** The sizes of the blocks the runs' filters and fence keys are carved from (for tests and measurements). */
  get slabBytes(): number[] {
    return this.slabs.sizes;
  }

  /** Frees the spill file; the index answers no more lookups after it. Safe to call more than once. */
  close(): void {
    this.spill?.close();
    this.spill = undefined;
    this.runs.length = 0;
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

  /**
   * Writes the table's entries as one sorted run and empties the table. Done inside the table's own arrays, so a
   * spill allocates nothing: the table is half full, so its entries packed to the front leave the back half of each
   * array free, and a radix sort moves them between the two halves (an even number of passes ends in the front).
   * Copies for the sort (4 + 2 MiB at a time at the default size) were short-lived but each one raised the
   * worker's peak RSS while the batches ran beside the index (issue 26). The run's filter is built in them too:
   * once its lines are written, the keys are moved into their array, and hi and lo (4 MiB at the default size)
   * hold the filter's scratch (2 × 1.1 words a key).
   */
  private spillTable(): void {
    const count = this.packToFront();
    sortByKey(this.hi, this.lo, this.lines, count);
    this.spill ??= new SpillFile(this.spillDir);
    const lineOffset = this.spill.append(this.lines.subarray(0, count));
    const keys = this.interleaveKeys(count);
    const keyOffset = this.spill.append(keys);
    // hi and lo are free now that the keys are in lines' buffer: the filter's scratch (see SpilledRun).
    const scratch = { slots: this.hi, order: this.lo };
    this.runs.push(new SpilledRun(this.spill, keys, count, keyOffset, lineOffset, this.slabs, scratch));
    this.hi.fill(0);
    this.lo.fill(0);
    this.lines.fill(0);
    this.size = 0;
  }

  /**
   * Copies the first `count` keys as (hi, lo) pairs into the buffer of `lines` (once they are written: a pair takes
   * two entries and count is at most half of them), and returns that view.
   */
  private interleaveKeys(count: number): Uint32Array {
    const keys = new Uint32Array(this.lines.buffer, this.lines.byteOffset, 2 * count);
    for (let i = 0; i < count; i++) {
      keys[2 * i] = this.hi[i]!;
      keys[2 * i + 1] = this.lo[i]!;
    }
    return keys;
  }

  /** Moves every entry to the front of the arrays, in slot order; returns how many there are. */
  private packToFront(): number {
    let n = 0;
    for (let slot = 0; slot < this.lines.length; slot++) {
      if (this.lines[slot] === 0) continue;
      this.hi[n] = this.hi[slot]!;
      this.lo[n] = this.lo[slot]!;
      this.lines[n] = this.lines[slot]!;
      n++;
    }
    return n;
  }
}

/** Bits of the key a radix pass sorts by: 8 passes over the 64 bits, an even number (see sortByKey). */
const RADIX_BITS = 8;
const RADIX_PASSES = 64 / RADIX_BITS;
const RADIX_MASK = (1 << RADIX_BITS) - 1;

/**
 * Sorts the first `count` entries of the three parallel arrays by the unsigned key (hi, lo), using the entries from
 * `count` to `2 * count` as scratch (LSD radix sort: stable passes from the lowest byte of lo to the highest of hi).
 * Every pass moves the entries from one half to the other; RADIX_PASSES is even, so they end in the front half.
 */
export function sortByKey(hi: Uint32Array, lo: Uint32Array, lines: Int32Array, count: number): void {
  if (2 * count > lines.length) throw new RangeError('sortByKey needs as much scratch as entries');
  const counts = new Int32Array(1 << RADIX_BITS);
  for (let pass = 0; pass < RADIX_PASSES; pass++) {
    const from = pass % 2 === 0 ? 0 : count;
    const to = count - from;
    const word = pass < RADIX_PASSES / 2 ? lo : hi;
    const shift = (pass % (RADIX_PASSES / 2)) * RADIX_BITS;
    counts.fill(0);
    for (let i = from; i < from + count; i++) counts[(word[i]! >>> shift) & RADIX_MASK]!++;
    for (let digit = 0, start = to; digit < counts.length; digit++) {
      const size = counts[digit]!;
      counts[digit] = start;
      start += size;
    }
    for (let i = from; i < from + count; i++) {
      const at = counts[(word[i]! >>> shift) & RADIX_MASK]!++;
      hi[at] = hi[i]!;
      lo[at] = lo[i]!;
      lines[at] = lines[i]!;
    }
  }
}

const INITIAL_SLOTS = 1 << 16;
/**
 * 2¹⁹ slots: 6 MiB of table, a run of 262,144 memberIds. The table is resident for as long as a source is read and
 * the filters grow beside it, so at ten million members its size decides the worker's peak (issue 26: 2²⁰ slots
 * made it 224.8 MB against 203.9 MB at one million); twice the runs cost 2-5 s more CPU at ten million (more
 * filters to ask, more false positives read from disk).
 */
const DEFAULT_MAX_SLOTS = 1 << 19;
/** MemberIds the index holds before its first spill, with the default table: up to here it holds at most 6 MiB. */
export const MEMBER_IDS_BEFORE_SPILL = DEFAULT_MAX_SLOTS / 2;
/** Keys between two fence keys kept in memory: one positioned read of 2 KiB finds a key. */
const FENCE_EVERY = 256;
/**
 * 32 MiB: glibc's largest mmap threshold on 64-bit, so a block this size is always a mapping of its own, never in
 * malloc's heap. Its pages take memory only once a filter is written into them.
 */
const SLAB_BYTES = 32 * 1024 * 1024;

/**
 * Where the runs' filters and fence keys live: carved from blocks of SLAB_BYTES, not allocated one by one. They live
 * as long as the index, and one run's (about 150 KiB at the default size) is below the mmap threshold glibc has
 * raised by then (it raises it to the largest mapped block freed: the table's when it grew), so each would land in
 * malloc's heap between short-lived buffers of the same size (on BACKFILL_STORE=postgres, the INSERTs' parameter
 * buffers of the normaliser and of the audit log), whose memory then cannot go back: the heap held ~17 MB more at
 * ten million rows in bench:prepare --store postgres, with ~12 MB of filters (issue 26).
 */
class RunMemory {
  private slab: Uint32Array | undefined;
  private used = 0;
  readonly sizes: number[] = [];

  /** `words` zeroed 32-bit words, held until the index is dropped. */
  words(words: number): Uint32Array {
    if (!this.slab || this.used + words > this.slab.length) {
      this.slab = new Uint32Array(Math.max(SLAB_BYTES / 4, words));
      this.sizes.push(this.slab.byteLength);
      this.used = 0;
    }
    this.used += words;
    return this.slab.subarray(this.used - words, this.used);
  }

  /** `bytes` zeroed bytes, held until the index is dropped (whole words of the slab). */
  bytes(bytes: number): Uint8Array {
    const words = this.words(Math.ceil(bytes / 4));
    return new Uint8Array(words.buffer, words.byteOffset, bytes);
  }
}

/** One sorted run in the spill file: its filter and fence keys in memory, its keys and lines on disk. */
class SpilledRun {
  /** Undefined if no filter could be built (never seen: see FuseFilter.build); then every lookup reads the disk. */
  private readonly filter: FuseFilter | undefined;
  private readonly fenceHi: Uint32Array;
  private readonly fenceLo: Uint32Array;
  private readonly count: number;

  constructor(
    private readonly file: SpillFile,
    /** The run's sorted keys as (hi, lo) pairs (read here once, not kept). */
    keys: Uint32Array,
    count: number,
    private readonly keyOffset: number,
    private readonly lineOffset: number,
    memory: RunMemory,
    scratch: FuseScratch,
  ) {
    this.count = count;
    this.filter = FuseFilter.build(keys, count, scratch, (bytes) => memory.bytes(bytes));
    const fences = Math.ceil(this.count / FENCE_EVERY);
    this.fenceHi = memory.words(fences);
    this.fenceLo = memory.words(fences);
    for (let fence = 0; fence < fences; fence++) {
      this.fenceHi[fence] = keys[2 * fence * FENCE_EVERY]!;
      this.fenceLo[fence] = keys[2 * fence * FENCE_EVERY + 1]!;
    }
  }

  get byteLength(): number {
    const filter = this.filter?.byteLength ?? 0;
    return filter + this.fenceHi.byteLength + this.fenceLo.byteLength;
  }

  lineOf(hi: number, lo: number): number | undefined {
    if (this.filter?.mayContain(hi, lo) === false) return undefined;
    const fence = this.lastFenceAtOrBelow(hi, lo);
    if (fence < 0) return undefined;
    const first = fence * FENCE_EVERY;
    const count = Math.min(FENCE_EVERY, this.count - first);
    const { block, line } = this.file;
    this.file.read(block, 8 * count, this.keyOffset + 8 * first);
    for (let i = 0; i < count; i++) {
      if (block[2 * i] !== hi || block[2 * i + 1] !== lo) continue;
      this.file.read(line, 4, this.lineOffset + 4 * (first + i));
      return line[0];
    }
    return undefined;
  }

  /** The last fence key <= (hi, lo), or -1 when every key of the run is above it. */
  private lastFenceAtOrBelow(hi: number, lo: number): number {
    let low = 0;
    let high = this.fenceHi.length - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const fenceHi = this.fenceHi[mid]!;
      if (fenceHi < hi || (fenceHi === hi && this.fenceLo[mid]! <= lo)) {
        found = mid;
        low = mid + 1;
      } else high = mid - 1;
    }
    return found;
  }
}

/**
 * An anonymous file for the runs: created 0600 in a fresh private directory and unlinked (with the directory)
 * right away, so nothing is left behind; written and read synchronously (a run is a few MiB, a lookup 2 KiB from
 * the page cache: an asynchronous call would cost more than the read).
 */
class SpillFile {
  private readonly fd: number;
  private end = 0;
  /** What a lookup reads, one block of keys and one line: one pair for all runs, as lookups come one at a time. */
  readonly block = new Uint32Array(2 * FENCE_EVERY);
  readonly line = new Int32Array(1);

  constructor(parent: string) {
    const dir = mkdtempSync(path.join(parent, 'member-ids-'));
    try {
      this.fd = openSync(path.join(dir, 'runs'), 'w+', 0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Appends the array's bytes; returns the offset they start at. */
  append(data: Uint32Array | Int32Array): number {
    const start = this.end;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    for (let written = 0; written < bytes.length;) {
      written += writeSync(this.fd, bytes, written, bytes.length - written, start + written);
    }
    this.end += bytes.length;
    return start;
  }

  get byteLength(): number {
    return this.block.byteLength + this.line.byteLength;
  }

  read(into: Uint32Array | Int32Array, length: number, position: number): void {
    const bytes = new Uint8Array(into.buffer, into.byteOffset, length);
    for (let done = 0; done < length;) {
      const read = readSync(this.fd, bytes, done, length - done, position + done);
      if (read === 0) throw new Error('the memberId spill file is shorter than what was written to it');
      done += read;
    }
  }

  close(): void {
    closeSync(this.fd);
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
