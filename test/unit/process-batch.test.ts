import { Context } from '@temporalio/activity';
import type { Logger, LogLevel } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { debugEnabled } from '../../activities/process-batch';

/** What processBatch decides about its per-member debug lines, inside a real activity context with this logger. */
async function decidedWith(logger: Logger): Promise<boolean> {
  const env = new MockActivityEnvironment(undefined, { logger });
  return env.run(async () => debugEnabled(Context.current().log));
}

describe('per-member debug lines of processBatch', () => {
  it.each<[LogLevel, boolean]>([
    ['TRACE', true],
    ['DEBUG', true],
    ['INFO', false],
    ['WARN', false],
    ['ERROR', false],
  ])('with the runtime logger at %s: %s', async (level, expected) => {
    expect(await decidedWith(new DefaultLogger(level, () => undefined))).toBe(expected);
  });

  it('are written whenever they are decided: an activity debug line reaches a DEBUG logger', async () => {
    const entries: LogEntry[] = [];
    const logger = new DefaultLogger('DEBUG', (entry) => entries.push(entry));
    const env = new MockActivityEnvironment(undefined, { logger });
    const decided = await env.run(async () => {
      const log = Context.current().log;
      if (debugEnabled(log)) log.debug('member recorded', { line: 7 });
      return debugEnabled(log);
    });
    expect(decided).toBe(true);
    expect(entries.filter((e) => e.message === 'member recorded').map((e) => [e.level, e.meta?.line])).toEqual([['DEBUG', 7]]);
  });

  it('are kept with a logger whose level it cannot see', async () => {
    const seen: string[] = [];
    const custom: Logger = {
      log: (level, message) => void seen.push(`${level} ${message}`),
      trace: (message) => void seen.push(`TRACE ${message}`),
      debug: (message) => void seen.push(`DEBUG ${message}`),
      info: (message) => void seen.push(`INFO ${message}`),
      warn: (message) => void seen.push(`WARN ${message}`),
      error: (message) => void seen.push(`ERROR ${message}`),
    };
    expect(await decidedWith(custom)).toBe(true);
    expect(debugEnabled(custom)).toBe(true);
  });
});
