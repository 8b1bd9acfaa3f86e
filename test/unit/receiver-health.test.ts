import { describe, expect, it } from 'vitest';
import { isOutageSign, ReceiverHealth } from '../../src/webhook/receiver-health';
import type { SendResult } from '../../src/domain/types';

const refused: SendResult = { kind: 'retryable', reason: 'ECONNREFUSED' };
const reset: SendResult = { kind: 'retryable', reason: 'ECONNRESET' };
const timeout: SendResult = { kind: 'retryable', reason: 'timeout after 400ms' };
const status = (s: number): SendResult =>
  s < 300
    ? { kind: 'delivered', status: s }
    : s >= 500 || s === 429 || s === 408
      ? { kind: 'retryable', status: s, reason: `HTTP ${s}` }
      : { kind: 'rejected', status: s, reason: `HTTP ${s}` };

describe('one send result: a sign the endpoint is unavailable?', () => {
  it.each<[string, SendResult, boolean]>([
    ['connection refused', refused, true],
    ['connection reset', reset, true],
    ['timeout', timeout, true],
    ['502', status(502), true],
    ['503', status(503), true],
    ['504', status(504), true],
    ['500 (the endpoint answered)', status(500), false],
    ['429 (slow down: it is there)', status(429), false],
    ['408', status(408), false],
    ['400', status(400), false],
    ['410', status(410), false],
    ['200', status(200), false],
  ])('%s: %s', (_, result, expected) => {
    expect(isOutageSign(result)).toBe(expected);
  });
});

describe('an endpoint outage told from per-member failures', () => {
  // Each step: member, result; then whether the endpoint is unavailable after it, and since which step.
  type Step = [member: string, result: SendResult];
  it.each<[string, Step[], number | undefined]>([
    ['nothing sent', [], undefined],
    [
      'three members refused in a row',
      [
        ['a', refused],
        ['b', refused],
        ['c', refused],
      ],
      0,
    ],
    [
      'mixed outage signs across three members',
      [
        ['a', reset],
        ['b', status(503)],
        ['c', timeout],
      ],
      0,
    ],
    [
      'two members only',
      [
        ['a', refused],
        ['b', refused],
      ],
      undefined,
    ],
    [
      'one member, again and again (a per-member 503)',
      [
        ['a', status(503)],
        ['a', status(503)],
        ['a', status(503)],
        ['a', status(503)],
      ],
      undefined,
    ],
    [
      'a 503 for one member while others succeed',
      [
        ['a', status(503)],
        ['b', status(200)],
        ['a', status(503)],
        ['c', status(200)],
        ['a', status(503)],
      ],
      undefined,
    ],
    [
      '4xx for three members (per-member rejections)',
      [
        ['a', status(400)],
        ['b', status(422)],
        ['c', status(404)],
      ],
      undefined,
    ],
    [
      '500 for three members (the endpoint answers)',
      [
        ['a', status(500)],
        ['b', status(500)],
        ['c', status(500)],
      ],
      undefined,
    ],
    [
      'a success ends the outage',
      [
        ['a', refused],
        ['b', refused],
        ['c', refused],
        ['d', status(200)],
      ],
      undefined,
    ],
    [
      'a rejection ends it too (the endpoint answered)',
      [
        ['a', refused],
        ['b', refused],
        ['c', refused],
        ['d', status(400)],
      ],
      undefined,
    ],
    [
      'since the first sign of the unbroken run',
      [
        ['a', refused],
        ['b', status(200)],
        ['c', refused],
        ['d', refused],
        ['e', refused],
        ['f', refused],
      ],
      2,
    ],
    [
      'a repeat of one member counts once',
      [
        ['a', refused],
        ['a', refused],
        ['b', refused],
        ['c', refused],
      ],
      0,
    ],
  ])('%s', (_, steps, sinceStep) => {
    const health = new ReceiverHealth();
    steps.forEach(([member, result], i) => health.observe(member, result, 1_000 * i));
    expect(health.unavailableSince()).toBe(sinceStep === undefined ? undefined : 1_000 * sinceStep);
  });
});
