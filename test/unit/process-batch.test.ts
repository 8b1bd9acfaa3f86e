import type { Logger, LogLevel } from '@temporalio/common';
import { DefaultLogger } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { debugEnabled } from '../../src/observability';

// processBatch writes a debug line per member only when the worker's logger keeps debug lines. The worker asks
// its runtime logger (public: Runtime.instance().logger, its `level`) once; no private SDK field is read.
describe('per-member debug lines of processBatch', () => {
  it.each<[LogLevel, boolean]>([
    ['TRACE', true],
    ['DEBUG', true],
    ['INFO', false],
    ['WARN', false],
    ['ERROR', false],
  ])('with the runtime logger at %s: %s', (level, expected) => {
    expect(debugEnabled(new DefaultLogger(level, () => undefined))).toBe(expected);
  });

  it('are kept with a logger whose level it cannot see', () => {
    const seen: string[] = [];
    const custom: Logger = {
      log: (level, message) => void seen.push(`${level} ${message}`),
      trace: (message) => void seen.push(`TRACE ${message}`),
      debug: (message) => void seen.push(`DEBUG ${message}`),
      info: (message) => void seen.push(`INFO ${message}`),
      warn: (message) => void seen.push(`WARN ${message}`),
      error: (message) => void seen.push(`ERROR ${message}`),
    };
    expect(debugEnabled(custom)).toBe(true);
  });

  it("never look into the SDK's private logger chain", () => {
    // A logger that only a private `parentLogger` link would reveal as INFO: the old check answered false here
    // by reading it; the supported check does not read it and keeps the lines (the logger filters for itself).
    const wrapped = {
      ...new DefaultLogger('INFO', () => undefined),
      parentLogger: new DefaultLogger('INFO', () => undefined),
    } as unknown as Logger;
    expect(debugEnabled(wrapped)).toBe(true);
  });
});
