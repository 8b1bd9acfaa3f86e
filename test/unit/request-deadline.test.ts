import { describe, expect, it } from 'vitest';
import { ExpiryQueue, requestDeadline, type ExpiryClock } from '../../src/http/request-deadline';

/** A simulated clock: time moves only when the test says, firing the timers due by then in order. */
class StepClock implements ExpiryClock {
  t = 0;
  timers = new Map<number, { at: number; callback: () => void }>();
  private nextId = 1;
  now = () => this.t;
  setTimer = (callback: () => void, ms: number) => {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, callback });
    return id;
  };
  clearTimer = (handle: unknown) => {
    this.timers.delete(handle as number);
  };
  advanceTo(t: number): void {
    for (;;) {
      const next = [...this.timers].filter(([, x]) => x.at <= t).sort((a, b) => a[1].at - b[1].at)[0];
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].callback();
    }
    this.t = t;
  }
}

// Steps: `add NAME` at the current time, `remove NAME`, `at T` (time moves to T, timers firing on the way).
// Expected: each expired name with the time it expired at; a deadline expires exactly `ms` after it was added
// (as a timer of its own would), unless removed first; removed ones never.
describe('ExpiryQueue: one timer for deadlines of one length', () => {
  const cases: Array<[string, string[], Array<[string, number]>]> = [
    ['one deadline passes', ['add a', 'at 150'], [['a', 100]]],
    ['removed before it passes: never', ['add a', 'at 50', 'remove a', 'at 500'], []],
    [
      'each at its own time',
      ['add a', 'at 30', 'add b', 'at 60', 'add c', 'at 500'],
      [
        ['a', 100],
        ['b', 130],
        ['c', 160],
      ],
    ],
    [
      'the first removed: the next still passes on time',
      ['add a', 'at 30', 'add b', 'at 40', 'remove a', 'at 500'],
      [['b', 130]],
    ],
    [
      'removed out of order: only the others pass',
      ['add a', 'at 10', 'add b', 'at 20', 'add c', 'remove b', 'at 500'],
      [
        ['a', 100],
        ['c', 120],
      ],
    ],
    [
      'added at one instant: pass together',
      ['add a', 'add b', 'at 100'],
      [
        ['a', 100],
        ['b', 100],
      ],
    ],
    ['added again after the queue emptied', ['add a', 'at 20', 'remove a', 'at 300', 'add b', 'at 1000'], [['b', 400]]],
    [
      'added while the first passes',
      ['add a', 'at 100', 'add b', 'at 250'],
      [
        ['a', 100],
        ['b', 200],
      ],
    ],
  ];
  it.each(cases)('%s', (_name, steps, expected) => {
    const clock = new StepClock();
    const queue = new ExpiryQueue(100, clock);
    const expired: Array<[string, number]> = [];
    const handles = new Map<string, number>();
    for (const step of steps) {
      const [verb, arg] = step.split(' ') as [string, string];
      if (verb === 'add') handles.set(arg, queue.add({ expire: () => expired.push([arg, clock.now()]) }));
      else if (verb === 'remove') queue.remove(handles.get(arg)!);
      else clock.advanceTo(Number(arg));
    }
    expect(expired).toEqual(expected);
    expect(queue.size).toBe(0);
    // Nothing held: no timer left to keep the process alive.
    expect(clock.timers.size).toBe(0);
  });

  it('thousands removed behind one slow deadline: only it is held, until it is removed too', () => {
    const clock = new StepClock();
    const queue = new ExpiryQueue(10_000, clock);
    const slow = queue.add({ expire: () => undefined });
    for (let i = 0; i < 5000; i++) {
      clock.advanceTo(i);
      queue.remove(queue.add({ expire: () => undefined }));
    }
    expect(queue.size).toBe(1);
    queue.remove(slow);
    expect(queue.size).toBe(0);
    expect(clock.timers.size).toBe(0);
  });
});

describe('requestDeadline (real timers)', () => {
  const activeTimeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

  it('times out after its length: aborted, timedOut, the reason says so', async () => {
    const started = performance.now();
    const deadline = requestDeadline(40, undefined);
    await new Promise<void>((resolve) => deadline.signal.once('abort', resolve));
    expect(performance.now() - started).toBeGreaterThanOrEqual(39);
    expect(deadline.timedOut).toBe(true);
    expect(deadline.signal.aborted).toBe(true);
    expect((deadline.signal.reason as Error).message).toBe('request timed out');
    deadline.clear();
  });

  it("the caller's abort: its own reason, not a timeout", () => {
    const caller = new AbortController();
    const deadline = requestDeadline(10_000, caller.signal);
    caller.abort(new Error('cancelled'));
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.timedOut).toBe(false);
    expect((deadline.signal.reason as Error).message).toBe('cancelled');
    deadline.clear();
  });

  it('cleared: never aborts, and leaves no timer behind', async () => {
    const before = activeTimeouts();
    const deadlines = Array.from({ length: 50 }, () => requestDeadline(30, undefined));
    expect(activeTimeouts()).toBe(before + 1); // one timer for all fifty
    for (const d of deadlines) d.clear();
    expect(activeTimeouts()).toBe(before);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(deadlines.some((d) => d.signal.aborted || d.timedOut)).toBe(false);
  });
});
