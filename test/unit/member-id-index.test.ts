import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fingerprintBytes, fuseLayout } from '../../src/source/fuse-filter';
import { hash64, MemberIdIndex, sortByKey } from '../../src/source/member-id-index';

describe('MemberIdIndex', () => {
  it('returns undefined for a new memberId and the first line for a repeat', () => {
    const index = new MemberIdIndex();
    expect(index.firstLine('m-1', 2)).toBeUndefined();
    expect(index.firstLine('m-2', 3)).toBeUndefined();
    expect(index.firstLine('m-1', 9)).toBe(2);
    expect(index.firstLine('m-1', 12)).toBe(2);
    expect(index.firstLine('M-1', 13)).toBeUndefined(); // exact: case matters, as in the source
    expect(index.firstLine('고객 0046', 14)).toBeUndefined();
    expect(index.firstLine('고객 0046', 15)).toBe(14);
  });

  it('stays exact while it grows through many doublings', () => {
    const index = new MemberIdIndex();
    const n = 300_000;
    for (let i = 0; i < n; i++) expect(index.firstLine(`member-${i}`, i + 2)).toBeUndefined();
    for (let i = 0; i < n; i += 997) expect(index.firstLine(`member-${i}`, n + 10)).toBe(i + 2);
    expect(index.firstLine(`member-${n}`, n + 11)).toBeUndefined();
  });
});

describe('MemberIdIndex spilling to disk (memory that does not grow with the source)', () => {
  /** A small table (2¹⁶ slots: a run every 32,768 memberIds) so that a test source spills many runs. */
  const SMALL = 1 << 16;

  it('answers exactly like a map over many runs: new ids, repeats of any earlier run and of the table', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'member-id-index-'));
    const index = new MemberIdIndex({ maxSlots: SMALL, spillDir: dir });
    const expected = new Map<string, number>();
    let seed = 7;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 0x1_0000_0000;
    try {
      for (let line = 1; line <= 400_000; line++) {
        // Mostly new ids; one in ten repeats an id seen anywhere before (often one spilled long ago).
        const id = random() < 0.1 && line > 2 ? `member-${Math.floor(random() * line * 0.9)}` : `member-${line}`;
        const first = expected.get(id);
        expect(index.firstLine(id, line)).toBe(first);
        if (first === undefined) expected.set(id, line);
      }
      expect(index.spilledRuns).toBeGreaterThanOrEqual(10);
      // Memory: the table at its cap and the runs' filters, far below 12 bytes a memberId.
      expect(index.byteLength).toBeLessThan(12 * SMALL + 2 * expected.size);
      // Every run's filter and fence keys in one block of 32 MiB, a mapping of its own: never one by one in
      // malloc's heap, where they pinned the short-lived buffers between them (issue 26).
      expect(index.slabBytes).toEqual([32 * 1024 * 1024]);
      // The spill file was unlinked at once: nothing in the directory even while the index is open.
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      index.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds every memberId of every spilled run: a filter that says no for one it holds fails here', () => {
    const index = new MemberIdIndex({ maxSlots: SMALL });
    const runs = 5;
    const count = runs * (SMALL / 2);
    try {
      for (let i = 0; i < count; i++) expect(index.firstLine(`id-${i}`, i + 2)).toBeUndefined();
      expect(index.spilledRuns).toBe(runs - 1); // the last run's memberIds still in the table, which is full
      let wrong = 0;
      for (let i = 0; i < count; i++) if (index.firstLine(`id-${i}`, count + 2) !== i + 2) wrong++;
      expect(wrong).toBe(0);
    } finally {
      index.close();
    }
  });

  it("counts in byteLength each run's filter (0.59 bytes a memberId here), fence keys, and the read buffers", () => {
    const index = new MemberIdIndex({ maxSlots: SMALL });
    try {
      for (let i = 0; i < 3 * (SMALL / 2) + 1; i++) index.firstLine(`id-${i}`, i + 2);
      expect(index.spilledRuns).toBe(3);
      const table = 12 * SMALL;
      const readBuffers = 2048 + 4; // one block of keys and one line, shared by the runs
      const perRun = fingerprintBytes(fuseLayout(SMALL / 2)) + 2 * 4 * (SMALL / 2 / 256);
      expect(perRun).toBe(19_200 + 1024);
      expect(index.byteLength).toBe(table + readBuffers + 3 * perRun);
    } finally {
      index.close();
    }
  });

  it('keeps everything in memory, without a spill file, up to half its largest table', () => {
    const index = new MemberIdIndex({ maxSlots: SMALL, spillDir: '/nonexistent/never-created' });
    for (let i = 0; i < SMALL / 2; i++) expect(index.firstLine(`m-${i}`, i + 2)).toBeUndefined();
    expect(index.spilledRuns).toBe(0);
    expect(index.firstLine('m-0', 99)).toBe(2);
    expect(() => index.firstLine('one too many', 100)).toThrow(/ENOENT/);
    index.close();
  });

  it('rejects a largest table that is not a power of two', () => {
    expect(() => new MemberIdIndex({ maxSlots: 100_000 })).toThrow(/power of two/);
  });
});

describe('hash64', () => {
  it('spreads two million similar memberIds over 64 bits without a collision, and no half repeats often', () => {
    const seen = new Set<string>();
    const lows = new Map<number, number>();
    const ids = (i: number) => [`syn-${String(i).padStart(7, '0')}`, `member-${i}`];
    for (let i = 0; i < 1_000_000; i++) {
      for (const id of ids(i)) {
        const [hi, lo] = hash64(id);
        seen.add(`${hi}:${lo}`);
        const bucket = lo & 0xffff;
        lows.set(bucket, (lows.get(bucket) ?? 0) + 1);
      }
    }
    expect(seen.size).toBe(2_000_000);
    // The table's slot comes from the low bits: 2M ids over 65,536 buckets is ~30 each; none may pile up.
    expect(Math.max(...lows.values())).toBeLessThan(80);
  });

  it('depends on every code unit and is stable', () => {
    expect(hash64('고객 0046')).toEqual(hash64('고객 0046'));
    expect(hash64('m-1')).not.toEqual(hash64('m-2'));
    expect(hash64('ab')).not.toEqual(hash64('ba'));
    expect(hash64('')).not.toEqual(hash64('\u0000'));
  });
});

describe('sortByKey (the spill sorts inside the table, its back half as scratch)', () => {
  const cases: Array<{ name: string; keys: Array<[number, number]> }> = [
    { name: 'nothing', keys: [] },
    { name: 'one key', keys: [[7, 9]] },
    {
      name: 'equal high words ordered by the low word, extremes of both',
      keys: [
        [5, 0xffffffff],
        [5, 0],
        [0xffffffff, 1],
        [0, 0xffffffff],
        [5, 0x80000000],
        [0, 0],
        [0x80000000, 0x7fffffff],
      ],
    },
    {
      name: 'keys differing only in one byte of either word',
      keys: [0, 8, 16, 24].flatMap((shift) => [
        [0x01020304, (0xaa << shift) >>> 0] as [number, number],
        [((0xaa << shift) | 1) >>> 0, 0x01020304] as [number, number],
      ]),
    },
    {
      name: 'five thousand pseudo-random keys',
      keys: Array.from({ length: 5000 }, (_, i) => hash64(`member-${i}`)),
    },
  ];

  it.each(cases)('$name: ascending by (hi, lo), each line still with its key', ({ keys }) => {
    const hi = new Uint32Array(2 * keys.length + 1);
    const lo = new Uint32Array(hi.length);
    const lines = new Int32Array(hi.length);
    keys.forEach(([h, l], i) => {
      hi[i] = h;
      lo[i] = l;
      lines[i] = i + 1;
    });
    sortByKey(hi, lo, lines, keys.length);
    const sorted = Array.from({ length: keys.length }, (_, i) => [hi[i]!, lo[i]!, lines[i]!]);
    const expected = keys
      .map(([h, l], i) => [h, l, i + 1])
      .sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!);
    expect(sorted).toEqual(expected);
  });

  it('refuses arrays without room for the scratch half', () => {
    expect(() => sortByKey(new Uint32Array(3), new Uint32Array(3), new Int32Array(3), 2)).toThrow(RangeError);
  });
});
