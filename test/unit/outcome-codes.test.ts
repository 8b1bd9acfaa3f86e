import { describe, expect, it } from 'vitest';
import { OutcomeCodes } from '../../src/audit/outcome-codes';

const PAGE = 65_536;

describe('OutcomeCodes: one code per line, in pages made on first use', () => {
  it.each([0, 1, PAGE - 1, PAGE, PAGE + 1, 10_000_001])('line %i: 0 until set, then what was set', (line) => {
    const codes = new OutcomeCodes();
    expect(codes.get(line)).toBe(0);
    codes.set(line, 0x1ff);
    expect(codes.get(line)).toBe(0x1ff);
    expect(codes.get(line + 1)).toBe(0);
    if (line > 0) expect(codes.get(line - 1)).toBe(0);
  });

  it('reading a line of a page never written makes no page', () => {
    const codes = new OutcomeCodes();
    codes.get(5 * PAGE);
    expect(codes.byteLength).toBe(0);
  });
});

describe('OutcomeCodes: pages the batches moved past are kept deflated', () => {
  // 17 distinct codes, as an audit of the synthetic ten-million-member set has per page.
  const codeOf = (line: number) => ((line * 7919) % 17 === 0 ? 0 : 1 + ((line * 7919) % 17));
  const LINES = 20 * PAGE;

  function written(): OutcomeCodes {
    const codes = new OutcomeCodes();
    for (let line = 0; line < LINES; line++) if (codeOf(line)) codes.set(line, codeOf(line));
    return codes;
  }

  it('holds far less than 2 bytes a line once written in order', () => {
    expect(written().byteLength).toBeLessThan(LINES / 2);
  });

  it('gives back every line, in order and out of order, after its page was packed', () => {
    const codes = written();
    const wrong: number[] = [];
    for (let line = 0; line < LINES; line++) if (codes.get(line) !== codeOf(line)) wrong.push(line);
    for (let line = LINES - 1; line >= 0; line -= 997) if (codes.get(line) !== codeOf(line)) wrong.push(line);
    expect(wrong).toEqual([]);
  });

  it('a late record on a packed page is kept beside the others (a deferred replay)', () => {
    const codes = written();
    let late = 3 * PAGE;
    while (codeOf(late) !== 0) late++; // a line never set in order

    codes.set(late, 0x1ff);
    for (let line = LINES - PAGE; line < LINES; line++) codes.get(line); // its page packed again
    expect(codes.get(late)).toBe(0x1ff);
    expect(codes.get(late - 1)).toBe(codeOf(late - 1));
    expect(codes.get(late + 1)).toBe(codeOf(late + 1));
  });

  it('reading a whole log back (a worker started again) leaves the pages it passed packed', () => {
    const codes = written();
    for (let line = 0; line < LINES; line++) codes.get(line);
    expect(codes.byteLength).toBeLessThan(LINES / 2);
  });

  it('pages written at once by many batches stay open, however many they are (no packing back and forth)', () => {
    const codes = new OutcomeCodes();
    const pages = 8;
    for (let i = 0; i < pages * PAGE; i++) codes.set((i % pages) * PAGE + Math.floor(i / pages), 1);
    expect(codes.byteLength).toBe(pages * PAGE * 2); // every page whole: none was packed meanwhile
  });
});
