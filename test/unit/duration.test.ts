import { describe, expect, it } from 'vitest';
import { formatDuration } from '../../src/domain/duration';

describe('formatDuration', () => {
  it.each<[number, string]>([
    [0, '0:00'],
    [59.6, '1:00'],
    [75, '1:15'],
    [3725, '1:02:05'],
  ])('formatDuration(%s) = %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});
