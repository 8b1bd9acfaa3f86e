import { describe, expect, it } from 'vitest';
import { MemberIdIndex } from '../../src/source/member-id-index';

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
