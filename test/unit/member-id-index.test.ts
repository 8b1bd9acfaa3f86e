import { describe, expect, it } from 'vitest';
import { hash64, MemberIdIndex } from '../../src/source/member-id-index';

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
