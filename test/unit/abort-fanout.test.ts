import { describe, expect, it } from 'vitest';
import { whenAborted } from '../../src/abort-fanout';

describe('whenAborted', () => {
  it('one listener on the signal however many wait; an abort calls each waiter still watching once', () => {
    const controller = new AbortController();
    let added = 0;
    const add = controller.signal.addEventListener.bind(controller.signal);
    controller.signal.addEventListener = ((...args: Parameters<typeof add>) => {
      added += 1;
      add(...args);
    }) as typeof controller.signal.addEventListener;
    const called: number[] = [];
    const stops = Array.from({ length: 50 }, (_, i) => whenAborted(controller.signal, () => called.push(i)));
    for (let i = 0; i < 50; i += 2) stops[i]!();
    expect(added).toBe(1);
    controller.abort(new Error('stop'));
    controller.abort(new Error('again'));
    expect(called).toEqual(Array.from({ length: 25 }, (_, k) => 2 * k + 1));
    // Stopping after the abort is harmless.
    for (const stop of stops) stop();
    expect(called).toHaveLength(25);
  });

  it('signals are watched apart', () => {
    const a = new AbortController();
    const b = new AbortController();
    const called: string[] = [];
    whenAborted(a.signal, () => called.push('a'));
    whenAborted(b.signal, () => called.push('b'));
    b.abort();
    expect(called).toEqual(['b']);
  });
});
