import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { worthCollecting } from '../../activities/normalise';
import { collectGarbageSoon } from '../../src/collect-garbage';
import { MEMBER_IDS_BEFORE_SPILL } from '../../src/source/member-id-index';

const global = globalThis as { gc?: unknown };
const exposed = global.gc;
afterEach(() => {
  global.gc = exposed;
});

const arrayBufferMb = () => process.memoryUsage().arrayBuffers / 2 ** 20;

describe('collectGarbageSoon', () => {
  it('without --expose-gc does nothing and throws nothing', () => {
    delete global.gc;
    expect(() => collectGarbageSoon()).not.toThrow();
  });

  it('with --expose-gc gives back typed arrays just dropped, without waiting for V8 to decide', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    global.gc = gc;
    // 24 MB of typed arrays held from the old generation, as the duplicate index holds them.
    let held: Uint8Array[] | undefined = Array.from({ length: 24 }, () => new Uint8Array(2 ** 20).fill(1));
    gc();
    gc();
    const before = arrayBufferMb();
    expect(before).toBeGreaterThanOrEqual(24);
    held = undefined;
    collectGarbageSoon();
    const deadline = Date.now() + 5_000;
    while (arrayBufferMb() > before - 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(held).toBeUndefined();
    expect(arrayBufferMb()).toBeLessThanOrEqual(before - 20);
  });
});

describe('worthCollecting: the normaliser forces a collection only after a large duplicate index', () => {
  it.each([
    [0, false],
    [20_000, false],
    [MEMBER_IDS_BEFORE_SPILL - 1, false],
    [MEMBER_IDS_BEFORE_SPILL, true],
    [10_000_000, true],
  ])('%i rows read: %s', (rows, expected) => {
    expect(worthCollecting(rows)).toBe(expected);
  });
});
