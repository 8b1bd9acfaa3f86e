import { describe, expect, it } from 'vitest';
import { ProgressOutput } from '../../src/cli/progress-bar';

// Progress where there is no terminal (issue 27): a file, a CI log or `docker logs` gets plain lines every few seconds,
// never carriage-return updates; a terminal gets the line redrawn in place.

type Update = [line: string, at: number, final?: boolean];

/** Feeds the updates and returns what each one wrote. */
function run(options: ConstructorParameters<typeof ProgressOutput>[0], updates: Update[]): string[] {
  const output = new ProgressOutput(options);
  return updates.map(([line, at, final]) => output.update(line, at, final));
}

describe('ProgressOutput', () => {
  it.each<[string, ConstructorParameters<typeof ProgressOutput>[0], Update[], string[]]>([
    [
      'a terminal: every update redrawn in place, the last one ended by a line feed',
      { tty: true },
      [
        ['10/100', 0],
        ['20/100', 500],
        ['100/100 done', 900, true],
      ],
      ['\r\x1b[K10/100', '\r\x1b[K20/100', '\r\x1b[K100/100 done\n'],
    ],
    [
      'a terminal: a drawn line is cut to its width, the final one is not',
      { tty: true, columns: 8 },
      [
        ['0123456789', 0],
        ['0123456789', 1, true],
      ],
      ['\r\x1b[K012345…', '\r\x1b[K0123456789\n'],
    ],
    [
      'a log: the first update, then one line per interval while it moves; the final one always',
      { tty: false, intervalMs: 5000 },
      [
        ['1', 0],
        ['2', 500],
        ['3', 4999],
        ['4', 5000],
        ['5', 7000],
        ['6', 10_100],
        ['7', 10_200, true],
      ],
      ['1\n', '', '', '4\n', '', '6\n', '7\n'],
    ],
    [
      'a log: a line that does not change is repeated only once per heartbeat',
      { tty: false, intervalMs: 1000, heartbeatMs: 60_000 },
      [
        ['paused', 0],
        ['paused', 5000],
        ['paused', 59_999],
        ['paused', 60_000],
      ],
      ['paused\n', '', '', 'paused\n'],
    ],
    [
      'a log: each line stamped',
      { tty: false, stamp: (at) => new Date(at).toISOString() },
      [['half', Date.parse('2026-12-06T12:00:00Z')]],
      ['2026-12-06T12:00:00.000Z  half\n'],
    ],
  ])('%s', (_what, options, updates, written) => {
    expect(run(options, updates)).toEqual(written);
  });

  it('a log of a run polled twice a second for 8 s: a few plain lines, not one line of carriage returns', () => {
    const updates: Update[] = Array.from({ length: 16 }, (_, i) => [`${(i + 1) * 6}/100`, i * 500]);
    updates.push(['100/100 done', 8000, true]);
    const text = run({ tty: false }, updates).join('');
    expect(text).not.toContain('\r');
    expect(text.split('\n').filter(Boolean)).toEqual(['6/100', '66/100', '100/100 done']);
  });

  it('ends a drawn terminal line on an early end (error, Ctrl-C), and writes nothing in a log', () => {
    const tty = new ProgressOutput({ tty: true });
    tty.update('half', 0);
    expect(tty.end()).toBe('\n');
    expect(tty.end()).toBe('');
    const log = new ProgressOutput({ tty: false });
    log.update('half', 0);
    expect(log.end()).toBe('');
  });
});
