import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import {
  afterRefusal,
  deliveryAttempt,
  keepReplayAlive,
  keepSent,
  recordRefusal,
  refusedAttempts,
} from '../../activities/replay-attempts';
import type { AuditEntry } from '../../src/audit/audit-entry';

describe('replay attempts: refused ones do not count', () => {
  it.each([
    [undefined, 0],
    [null, 0],
    [{}, 0],
    [{ done: 40 }, 0], // a batch's progress details, not a replay's
    [{ refused: 2 }, 2],
    [{ refused: -1 }, 0],
    [{ refused: 1.5 }, 0],
    [{ refused: '3' }, 0],
  ])('refusedAttempts(%j) = %i', (details, n) => {
    expect(refusedAttempts(details)).toBe(n);
  });

  it.each([
    [undefined, { refused: 1 }],
    [{ refused: 1 }, { refused: 2 }],
    [{ something: 'else' }, { refused: 1 }],
    // an attempt that sent and could not record keeps that for the next, whatever refuses in between
    [
      { refused: 1, sent: { line: 9 } },
      { refused: 2, sent: { line: 9 } },
    ],
  ])('afterRefusal(%j) = %j', (details, next) => {
    expect(afterRefusal(details)).toEqual(next);
  });

  it.each([
    [1, undefined, 1],
    [4, undefined, 4],
    [4, { refused: 3 }, 1], // three refusals, then the first real try
    [6, { refused: 2 }, 4],
    [2, { refused: 5 }, 1], // never below 1, whatever the details say
  ])('attempt %i with %j is delivery attempt %i', (attempt, details, n) => {
    expect(deliveryAttempt(attempt, details)).toBe(n);
  });
});

describe('keepReplayAlive: a replay heartbeats while it waits, and never drops the details it carries', () => {
  /** The heartbeats of an attempt that waits until `wanted` of them came (at most 10 s), then stops keeping alive. */
  const beatsOf = async (
    info: { heartbeatTimeoutMs?: number; heartbeatDetails?: unknown },
    wanted: number,
    during: () => void = () => undefined,
  ): Promise<{ beats: unknown[]; afterStop: number }> => {
    const env = new MockActivityEnvironment(info);
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    let atStop = 0;
    await env.run(async () => {
      const stop = keepReplayAlive();
      during();
      // A 2 s heartbeat timeout: a beat every second (half of it, at least a tick).
      for (const deadline = Date.now() + 10_000; beats.length < wanted && Date.now() < deadline;)
        await new Promise((r) => setTimeout(r, 50));
      stop();
      atStop = beats.length;
      await new Promise((r) => setTimeout(r, 1_500)); // more than a gap: a beat would have come
    });
    return { beats, afterStop: beats.length - atStop };
  };

  it('repeats the details the attempt started with', async () => {
    const { beats, afterStop } = await beatsOf({ heartbeatTimeoutMs: 2_000, heartbeatDetails: { refused: 2 } }, 2);
    expect(beats).toEqual([{ refused: 2 }, { refused: 2 }]);
    expect(afterStop).toBe(0);
  });

  it('repeats what the attempt heartbeated last (a refusal counted, a sent replay kept), not what it started with', async () => {
    const sent = { line: 9 } as unknown as AuditEntry;
    const { beats } = await beatsOf({ heartbeatTimeoutMs: 2_000, heartbeatDetails: { refused: 1 } }, 3, () => {
      recordRefusal();
      keepSent(sent);
    });
    expect(beats).toEqual([{ refused: 2 }, { refused: 1, sent }, { refused: 1, sent }]);
  });

  it('does not beat for a replay scheduled without a heartbeat timeout (runs recorded before)', async () => {
    const env = new MockActivityEnvironment({ heartbeatDetails: { refused: 1 } });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    await env.run(async () => {
      const stop = keepReplayAlive();
      await new Promise((r) => setTimeout(r, 1_500)); // more than the shortest gap (a tick)
      stop();
    });
    expect(beats).toEqual([]);
  });
});
