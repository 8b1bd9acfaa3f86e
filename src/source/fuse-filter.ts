/**
 * A 4-wise binary fuse filter with 4-bit fingerprints, two a byte (Graf and Lemire, "Binary Fuse Filters: Fast and
 * Smaller Than Xor Filters", 2022; construction as in FastFilter/xor_singleheader's binaryfusefilter.h) over a static
 * set of 64-bit keys given as two 32-bit words. It never says no for a key of the set; it says yes for another key
 * with probability 1/16 (6.25%), in about 0.55 bytes a key (4.4 bits at 262,144 keys).
 *
 * Why 4 bits and not 8 (1/256 in 8.8 bits a key): the duplicate index keeps one filter per spilled run for as long
 * as a source is read, so at ten million members the filters are what its memory grows with (issue 26: the worker's
 * peak at ten million within 10% of a million's). 8-bit fingerprints held 11.0 MB there, 4-bit ones 5.7 MB; the
 * price is the false positives, each one positioned read of 2 KiB from the page cache: 11.5 million reads instead
 * of 0.8 million at ten million members, 31 s of CPU for the index instead of 10 s (measured in a harness feeding
 * the index ten million memberIds, BENCHMARKS.md).
 *
 * A key's words are mixed with a seed into two words a and b, each depending on both words (so keys sharing a word,
 * or small integers, spread as hashes do) and together one to one with the key. The first of its four slots comes
 * from a, in any segment of `segmentLength` slots but the last three; the other three are in the three segments
 * after it, at offsets from b and from c = (a ^ b) · K, which also gives the fingerprint: the XOR of the four slots'
 * fingerprints. Construction peels the hypergraph of slots (a slot held by one key only fixes that key last) and
 * fails for a seed only if what remains holds a cycle: none of 200 seeds at 262,144 keys nor of 400 at 32,768, about
 * half at 4 keys (measured); it is retried with other seeds, at most MAX_ATTEMPTS times.
 *
 * Everything is in typed arrays: the caller gives the keys and the scratch (see FuseScratch), so building allocates
 * nothing but the fingerprints, which the caller allocates too.
 */
export class FuseFilter {
  private constructor(
    private readonly fingerprints: Uint8Array,
    private readonly seed: number,
    private readonly segmentLength: number,
    private readonly segmentCountLength: number,
  ) {}

  /**
   * The filter of the first `count` keys of `keys` (key i is keys[2i], keys[2i + 1]), or undefined if none could be
   * built within MAX_ATTEMPTS seeds (duplicate keys, or more than MAX_KEYS keys): then every key may be present.
   * `allocate` gives `bytes` zeroed bytes for the fingerprints, kept by the filter; it is called once, on success.
   */
  static build(
    keys: Uint32Array,
    count: number,
    scratch: FuseScratch,
    allocate: (bytes: number) => Uint8Array,
    seeds: readonly number[] = DEFAULT_SEEDS,
  ): FuseFilter | undefined {
    if (2 * count > keys.length) throw new RangeError('FuseFilter.build: fewer keys than count');
    const layout = fuseLayout(count);
    if (scratch.slots.length < layout.slots || scratch.order.length < layout.slots) {
      throw new RangeError(`FuseFilter.build: the scratch arrays need ${layout.slots} entries each`);
    }
    if (count > MAX_KEYS) return undefined;
    for (const seed of seeds.slice(0, MAX_ATTEMPTS)) {
      const hashes = new KeyHashes(seed, layout);
      if (!peel(keys, count, hashes, scratch, layout.slots)) continue;
      const fingerprints = allocate(fingerprintBytes(layout));
      assign(keys, count, hashes, scratch.order, fingerprints);
      return new FuseFilter(fingerprints, seed, layout.segmentLength, layout.segmentCountLength);
    }
    return undefined;
  }

  /**
   * False only if the key is not in the set the filter was built from. KeyHashes.of inlined: the duplicate index
   * asks every run's filter for each new memberId, about 185 million calls at ten million members.
   */
  mayContain(hi: number, lo: number): boolean {
    const x = mix32(hi ^ this.seed);
    const b = mix32(lo ^ x);
    const a = mix32(x ^ b);
    const c = Math.imul(a ^ b, 0x9e3779b1);
    const length = this.segmentLength;
    const mask = length - 1;
    const h0 = ((a * this.segmentCountLength) / 0x1_0000_0000) | 0;
    const fp = this.fingerprints;
    const h1 = (h0 + length) ^ (b & mask);
    const h2 = (h0 + 2 * length) ^ ((b >>> 16) & mask);
    const h3 = (h0 + 3 * length) ^ ((c >>> 8) & mask);
    // fingerprintAt inlined: slot s is the low (even s) or high (odd s) half of byte s / 2.
    return (
      (((c >>> 24) ^
        (fp[h0 >>> 1]! >>> ((h0 & 1) << 2)) ^
        (fp[h1 >>> 1]! >>> ((h1 & 1) << 2)) ^
        (fp[h2 >>> 1]! >>> ((h2 & 1) << 2)) ^
        (fp[h3 >>> 1]! >>> ((h3 & 1) << 2))) &
        FINGERPRINT_MASK) ===
      0
    );
  }

  /** Bytes held: the fingerprints (half a byte a slot). */
  get byteLength(): number {
    return this.fingerprints.byteLength;
  }
}

/**
 * Scratch for a build, two arrays of at least `fuseLayout(count).slots` entries each (about 1.1 × count): `slots`
 * holds, for each slot, how many keys use it and the XOR of their indices; `order` the keys in the order they are
 * peeled (from its front) and the slots waiting to be peeled (from its back). Reused from build to build; their
 * contents on entry do not matter.
 */
export interface FuseScratch {
  slots: Uint32Array;
  order: Uint32Array;
}

/** The size of a filter of `count` keys (its fingerprints take fingerprintBytes(layout) bytes). */
export interface FuseLayout {
  segmentLength: number;
  /** The first slots h0 can be: every segment but the last three. */
  segmentCountLength: number;
  slots: number;
}

const ARITY = 4;
/** Bits of a fingerprint: two a byte. */
const FINGERPRINT_BITS = 4;
const FINGERPRINT_MASK = (1 << FINGERPRINT_BITS) - 1;
/** A slot's entry in the scratch: the XOR of its keys' indices (24 bits), of their positions (2), their count (6). */
const INDEX_BITS = 24;
const INDEX_MASK = (1 << INDEX_BITS) - 1;
/** Which of its slots a key is in (0 to 3), XORed over a slot's keys, and kept with a peeled key's index in order. */
const POSITION_BITS = 2;
const POSITION_MASK = (1 << POSITION_BITS) - 1;
const COUNT_SHIFT = 26;
const ONE_KEY = 1 << COUNT_SHIFT;
const MAX_COUNT = 63;
/** Keys a filter can take: their indices are XORed in INDEX_BITS. */
export const MAX_KEYS = 1 << INDEX_BITS;
/** Seeds tried before giving up: at a run's sizes no seed failed in 600 tried (see the class comment). */
export const MAX_ATTEMPTS = 16;
const DEFAULT_SEEDS = Array.from({ length: MAX_ATTEMPTS }, (_, i) => mix32(0x726b2b9d + i) >>> 0);

/** The reference's sizes for 4-wise filters (binary_fuse_calculate_segment_length and _size_factor). */
export function fuseLayout(count: number): FuseLayout {
  const n = Math.max(count, 2);
  const segmentLength = Math.min(1 << 16, 2 ** Math.max(0, Math.floor(Math.log(n) / Math.log(2.91) - 0.5)));
  const sizeFactor = Math.max(1.075, 0.77 + (0.305 * Math.log(600_000)) / Math.log(n));
  const capacity = Math.round(n * sizeFactor);
  const segmentCount = Math.max(1, Math.ceil(capacity / segmentLength) - (ARITY - 1));
  return {
    segmentLength,
    segmentCountLength: segmentCount * segmentLength,
    slots: (segmentCount + ARITY - 1) * segmentLength,
  };
}

/** The bytes of a filter's fingerprints: one a pair of slots. */
export function fingerprintBytes(layout: FuseLayout): number {
  return Math.ceil(layout.slots / 2);
}

/** The fingerprint in `slot`: the low half of byte slot / 2 for an even slot, the high half for an odd one. */
function fingerprintAt(fingerprints: Uint8Array, slot: number): number {
  return (fingerprints[slot >>> 1]! >>> ((slot & 1) << 2)) & FINGERPRINT_MASK;
}

/** A key's four slots and fingerprint for one seed, computed into `at` and `fingerprint` (as in mayContain). */
class KeyHashes {
  readonly at = new Int32Array(ARITY);
  fingerprint = 0;

  constructor(
    readonly seed: number,
    private readonly layout: FuseLayout,
  ) {}

  of(hi: number, lo: number): void {
    const x = mix32(hi ^ this.seed);
    const b = mix32(lo ^ x);
    const a = mix32(x ^ b);
    const c = Math.imul(a ^ b, 0x9e3779b1);
    const length = this.layout.segmentLength;
    const mask = length - 1;
    const h0 = ((a * this.layout.segmentCountLength) / 0x1_0000_0000) | 0;
    this.at[0] = h0;
    this.at[1] = (h0 + length) ^ (b & mask);
    this.at[2] = (h0 + 2 * length) ^ ((b >>> 16) & mask);
    this.at[3] = (h0 + 3 * length) ^ ((c >>> 8) & mask);
    this.fingerprint = (c >>> 24) & FINGERPRINT_MASK;
  }
}

/**
 * Counts the keys of each slot, then peels: a slot held by one key gives that key its place in `order`, and the
 * key leaves its other slots. True if every key was peeled. `order` takes the peeled keys from its front and the
 * slots waiting from its back; they never meet, as each slot waits at most once and each key peeled took one
 * slot off the waiting ones.
 */
function peel(keys: Uint32Array, count: number, hashes: KeyHashes, scratch: FuseScratch, size: number): boolean {
  const { slots, order } = scratch;
  slots.fill(0, 0, size);
  for (let i = 0; i < count; i++) {
    hashes.of(keys[2 * i]!, keys[2 * i + 1]!);
    for (let k = 0; k < ARITY; k++) {
      const slot = hashes.at[k]!;
      const entry = slots[slot]!;
      if (entry >>> COUNT_SHIFT === MAX_COUNT) return false;
      slots[slot] = (entry + ONE_KEY) ^ (k << INDEX_BITS) ^ i;
    }
  }
  let waiting = size;
  for (let slot = 0; slot < size; slot++) if (slots[slot]! >>> COUNT_SHIFT === 1) order[--waiting] = slot;
  let peeled = 0;
  while (waiting < size) {
    const slot = order[waiting++]!;
    const entry = slots[slot]!;
    if (entry >>> COUNT_SHIFT !== 1) continue;
    const i = entry & INDEX_MASK;
    const position = (entry >>> INDEX_BITS) & POSITION_MASK;
    order[peeled++] = (i << POSITION_BITS) | position;
    slots[slot] = 0;
    hashes.of(keys[2 * i]!, keys[2 * i + 1]!);
    for (let k = 0; k < ARITY; k++) {
      if (k === position) continue;
      const other = hashes.at[k]!;
      const otherEntry = slots[other]!;
      if (otherEntry >>> COUNT_SHIFT === 2) order[--waiting] = other;
      slots[other] = (otherEntry - ONE_KEY) ^ (k << INDEX_BITS) ^ i;
    }
  }
  return peeled === count;
}

/** Writes the fingerprints, the keys in the reverse of their peeling order: each fixes the slot it was peeled from. */
function assign(
  keys: Uint32Array,
  count: number,
  hashes: KeyHashes,
  order: Uint32Array,
  fingerprints: Uint8Array,
): void {
  for (let n = count - 1; n >= 0; n--) {
    const i = order[n]! >>> POSITION_BITS;
    hashes.of(keys[2 * i]!, keys[2 * i + 1]!);
    const at = hashes.at;
    const own = at[order[n]! & POSITION_MASK]!;
    // The own slot is still 0 (keys are fixed in reverse peeling order), so XORing all four gives the other three.
    const value =
      hashes.fingerprint ^
      fingerprintAt(fingerprints, at[0]!) ^
      fingerprintAt(fingerprints, at[1]!) ^
      fingerprintAt(fingerprints, at[2]!) ^
      fingerprintAt(fingerprints, at[3]!);
    fingerprints[own >>> 1] = fingerprints[own >>> 1]! | (value << ((own & 1) << 2));
  }
}

/** murmur3's 32-bit finaliser: every input bit changes each output bit with probability about 1/2. */
function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
