import { describe, expect, it } from 'vitest';
import { fingerprintBytes, FuseFilter, fuseLayout, MAX_ATTEMPTS } from '../../src/source/fuse-filter';
import { hash64 } from '../../src/source/member-id-index';

/** Keys as the duplicate index gives them: (hi, lo) pairs in one array. */
function keysOf(pairs: Array<[number, number]>): Uint32Array {
  const keys = new Uint32Array(2 * pairs.length);
  pairs.forEach(([hi, lo], i) => {
    keys[2 * i] = hi;
    keys[2 * i + 1] = lo;
  });
  return keys;
}

const hashed = (count: number, prefix = 'member-') =>
  keysOf(Array.from({ length: count }, (_, i) => hash64(`${prefix}${i}`)));

function scratchFor(count: number) {
  const slots = fuseLayout(count).slots;
  return { slots: new Uint32Array(slots), order: new Uint32Array(slots) };
}

/** Builds with fresh scratch; also counts the calls to allocate. */
function build(keys: Uint32Array, count: number, seeds?: number[]) {
  let allocations = 0;
  const filter = FuseFilter.build(
    keys,
    count,
    scratchFor(count),
    (bytes) => {
      allocations++;
      return new Uint8Array(bytes);
    },
    seeds,
  );
  return { filter, allocations };
}

function falseNegatives(filter: FuseFilter, keys: Uint32Array, count: number): number {
  let missed = 0;
  for (let i = 0; i < count; i++) if (!filter.mayContain(keys[2 * i]!, keys[2 * i + 1]!)) missed++;
  return missed;
}

describe('FuseFilter: never says no for a key of its set', () => {
  const cases: Array<{ name: string; keys: Uint32Array }> = [
    { name: 'no key', keys: keysOf([]) },
    { name: 'one key', keys: keysOf([[7, 9]]) },
    {
      name: 'two keys',
      keys: keysOf([
        [0, 0],
        [0xffffffff, 0xffffffff],
      ]),
    },
    { name: 'a hundred hashed memberIds', keys: hashed(100) },
    {
      name: 'keys differing only in lo (small integers)',
      keys: keysOf(Array.from({ length: 5000 }, (_, i) => [0, i])),
    },
    { name: 'keys differing only in hi', keys: keysOf(Array.from({ length: 5000 }, (_, i) => [i << 12, 42])) },
    { name: 'a run at the smallest table (32,768 keys)', keys: hashed(32_768) },
    { name: 'a run at the default table (262,144 keys)', keys: hashed(262_144) },
  ];

  it.each(cases)('$name', ({ keys }) => {
    const count = keys.length / 2;
    const { filter, allocations } = build(keys, count);
    expect(filter).toBeDefined();
    expect(allocations).toBe(1);
    expect(falseNegatives(filter!, keys, count)).toBe(0);
  });

  it('reuses one set of scratch arrays from build to build, whatever they held', () => {
    const scratch = scratchFor(32_768);
    scratch.slots.fill(0xffffffff);
    scratch.order.fill(12345);
    for (const prefix of ['a-', 'b-', 'c-']) {
      const keys = hashed(32_768, prefix);
      const filter = FuseFilter.build(keys, 32_768, scratch, (bytes) => new Uint8Array(bytes));
      expect(falseNegatives(filter!, keys, 32_768)).toBe(0);
    }
  });
});

describe('FuseFilter: false positives and size', () => {
  it('says yes for 5.9-6.6% of other keys at a run of 262,144 (1/16 = 6.25% expected)', () => {
    const count = 262_144;
    const { filter } = build(hashed(count), count);
    let yes = 0;
    const probes = 1_000_000;
    for (let i = 0; i < probes; i++) {
      const [hi, lo] = hash64(`absent-${i}`);
      if (filter!.mayContain(hi, lo)) yes++;
    }
    // 4-bit fingerprints: a rate far below would mean a broken test, one above that the slots are not independent.
    expect(yes / probes).toBeLessThan(0.066);
    expect(yes / probes).toBeGreaterThan(0.059);
  });

  const sizes = [
    { count: 262_144, slots: 288_768, maxBitsPerKey: 4.41 }, // the default table's run: 8.8 bits a key with 8-bit ones
    { count: 32_768, slots: 38_400, maxBitsPerKey: 4.7 }, // the smallest table's run
    { count: 1_000_000, slots: 1_077_248, maxBitsPerKey: 4.35 },
  ];

  it.each(sizes)('$count keys take $slots slots, half a byte each', ({ count, slots, maxBitsPerKey }) => {
    const layout = fuseLayout(count);
    expect(layout.slots).toBe(slots);
    expect(fingerprintBytes(layout)).toBe(slots / 2);
    expect((8 * fingerprintBytes(layout)) / count).toBeLessThan(maxBitsPerKey);
  });

  it('rounds an odd number of slots up to whole bytes', () => {
    expect(fingerprintBytes({ segmentLength: 1, segmentCountLength: 2, slots: 5 })).toBe(3);
  });

  it('holds exactly its fingerprints', () => {
    const { filter } = build(hashed(32_768), 32_768);
    expect(filter!.byteLength).toBe(fingerprintBytes(fuseLayout(32_768)));
  });
});

describe('FuseFilter: a seed that fails', () => {
  /** Four keys: about half the seeds leave a cycle that cannot be peeled (at real sizes, none in 40 tried). */
  const keys = hashed(4);
  const seedsThatFail = (wanted: number) => {
    const found: number[] = [];
    for (let seed = 1; found.length < wanted && seed < 10_000; seed++) {
      if (build(keys, 4, [seed]).filter === undefined) found.push(seed);
    }
    return found;
  };
  const seedThatWorks = () => {
    for (let seed = 1; ; seed++) if (build(keys, 4, [seed]).filter) return seed;
  };

  it('is retried with the next seed, and only the filter that was built takes memory', () => {
    const failing = seedsThatFail(3);
    expect(failing).toHaveLength(3);
    const { filter, allocations } = build(keys, 4, [...failing, seedThatWorks()]);
    expect(filter).toBeDefined();
    expect(allocations).toBe(1);
    expect(falseNegatives(filter!, keys, 4)).toBe(0);
  });

  it(`gives up after ${MAX_ATTEMPTS} seeds: no filter (every key may be present), nothing allocated`, () => {
    const failing = seedsThatFail(MAX_ATTEMPTS);
    expect(failing).toHaveLength(MAX_ATTEMPTS);
    expect(build(keys, 4, [...failing, seedThatWorks()])).toEqual({ filter: undefined, allocations: 0 });
  });

  it('gives up on duplicate keys (never given: the runs hold distinct hashes) instead of looping', () => {
    const twice = keysOf([...Array.from({ length: 1000 }, (_, i) => hash64(`m-${i}`)), hash64('m-7')]);
    expect(build(twice, 1001)).toEqual({ filter: undefined, allocations: 0 });
  });

  it('refuses scratch smaller than the filter, and a count beyond the keys', () => {
    const keys1000 = hashed(1000);
    const small = { slots: new Uint32Array(1000), order: new Uint32Array(1000) };
    expect(() => FuseFilter.build(keys1000, 1000, small, (bytes) => new Uint8Array(bytes))).toThrow(/scratch/);
    expect(() => build(keys1000, 1001)).toThrow(RangeError);
  });
});
