import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { OUTCOME_CODE_LAYOUT, outcomeCodeArray } from '../domain/outcome-code';

/** Codes per page of OutcomeCodes: 128 KiB at 16 bits. */
const PAGE_CODES = 2 ** 16;
/**
 * A page is packed once this many codes were read or set elsewhere since it was last used: the batches running
 * write the lines in front of them, however many run at once, and every page among those stays open; a late record
 * (a deferred replay, a redone batch) opens a packed page again for a while.
 */
const IDLE_USES = 2 * PAGE_CODES;
/** How often (in codes read or set) open pages are checked for idleness. */
const SWEEP_EVERY = 4096;
/** Deflate's fastest level: a page is packed about once, in well under a millisecond. */
const DEFLATE = { level: 1 };

type CodeArray = Uint8Array | Uint16Array | Uint32Array;

interface OpenPage {
  codes: CodeArray;
  /** The value of `uses` when the page was last read or written. */
  used: number;
}

/**
 * One code per source line (0: none), in pages made when a line in them is first set. A page the batches have moved
 * past is kept deflated: a run's codes are a handful of values (an audit of ten million members: 17 distinct codes
 * per page), so a page of 65,536 lines deflates from 128 KiB to 15-30 KiB. Held whole, the codes were 2 bytes a
 * line, 20 MB at ten million members, the last of the worker's memory that grew with the source (issue 26: its
 * peak at ten million must stay within 10% of a million's). A packed page asked for again is inflated and reopened.
 */
export class OutcomeCodes {
  private readonly open = new Map<number, OpenPage>();
  private readonly packed = new Map<number, Buffer>();
  private uses = 0;
  // The page of the last get or set: most calls are for lines beside the last one.
  private lastIndex = -1;
  private last: OpenPage | undefined;

  constructor(private readonly layout = OUTCOME_CODE_LAYOUT) {}

  get(line: number): number {
    const code = this.page(Math.floor(line / PAGE_CODES), false)?.codes[line % PAGE_CODES] ?? 0;
    this.used();
    return code;
  }

  set(line: number, code: number): void {
    this.page(Math.floor(line / PAGE_CODES), true)!.codes[line % PAGE_CODES] = code;
    this.used();
  }

  private used(): void {
    if (++this.uses % SWEEP_EVERY === 0) this.packIdle();
  }

  /** Bytes held: open pages whole, the others deflated (for tests and measurements). */
  get byteLength(): number {
    let bytes = 0;
    for (const { codes } of this.open.values()) bytes += codes.byteLength;
    for (const packed of this.packed.values()) bytes += packed.byteLength;
    return bytes;
  }

  private page(index: number, create: boolean): OpenPage | undefined {
    let page = index === this.lastIndex ? this.last : this.open.get(index);
    if (!page) {
      const packed = this.packed.get(index);
      if (!packed && !create) return undefined;
      page = { codes: packed ? this.inflate(packed) : outcomeCodeArray(PAGE_CODES, this.layout), used: 0 };
      this.packed.delete(index);
      this.open.set(index, page);
    }
    page.used = this.uses;
    this.lastIndex = index;
    this.last = page;
    return page;
  }

  private packIdle(): void {
    for (const [index, page] of this.open) {
      if (this.uses - page.used <= IDLE_USES) continue;
      const { codes } = page;
      this.packed.set(index, deflateRawSync(new Uint8Array(codes.buffer, codes.byteOffset, codes.byteLength), DEFLATE));
      this.open.delete(index);
      if (index === this.lastIndex) this.lastIndex = -1;
    }
  }

  private inflate(packed: Buffer): CodeArray {
    const codes = outcomeCodeArray(PAGE_CODES, this.layout);
    new Uint8Array(codes.buffer).set(inflateRawSync(packed));
    return codes;
  }
}
