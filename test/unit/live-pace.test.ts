import { describe, expect, it } from 'vitest';
import { LIVE_PACE_MAX_AGE_MS, livePaceOf, withLivePace, type BatchBeat } from '../../src/cli/live-pace';

// `status` shows the lookup rate now from the running batches' last heartbeats (each carries its worker's pace).

const NOW = 1_000_000;
const pace = (pacer: string, ratePerSecond: number, o: { remaining?: number; givingWay?: boolean } = {}) => ({
  pacer,
  ratePerSecond,
  limit: 200,
  remaining: o.remaining ?? 150,
  givingWay: o.givingWay ?? false,
});
const beat = (agoMs: number, details: unknown): BatchBeat => ({ at: NOW - agoMs, details });

describe('livePaceOf', () => {
  it.each<{ name: string; beats: BatchBeat[]; out: ReturnType<typeof livePaceOf> }>([
    { name: 'no batch running', beats: [], out: undefined },
    {
      name: 'one batch',
      beats: [beat(500, { done: 10, pace: pace('w1', 24.5) })],
      out: { ratePerSecond: 24.5, limit: 200, remaining: 150, givingWay: false },
    },
    {
      name: 'two batches on one worker: its rate once, from the later beat',
      beats: [beat(900, { done: 10, pace: pace('w1', 40) }), beat(100, { done: 12, pace: pace('w1', 50) })],
      out: { ratePerSecond: 50, limit: 200, remaining: 150, givingWay: false },
    },
    {
      name: 'two workers: rates add up; limit and remaining from the newest beat; one giving way is enough',
      beats: [
        beat(300, { done: 1, pace: pace('w1', 25.04, { remaining: 90 }) }),
        beat(100, { done: 1, pace: pace('w2', 24.98, { remaining: 41, givingWay: true }) }),
      ],
      out: { ratePerSecond: 50, limit: 200, remaining: 41, givingWay: true },
    },
    {
      name: 'a beat older than the limit says nothing about now',
      beats: [beat(LIVE_PACE_MAX_AGE_MS + 1, { done: 1, pace: pace('gone', 30) }), beat(0, { pace: pace('w2', 20) })],
      out: { ratePerSecond: 20, limit: 200, remaining: 150, givingWay: false },
    },
    {
      name: 'beats of older workers (no pace) or of another shape are left out',
      beats: [beat(0, { done: 5 }), beat(0, 'text'), beat(0, { pace: { pacer: 'x', ratePerSecond: -1 } })],
      out: undefined,
    },
    {
      name: 'an API without rate-limit headers: rate only',
      beats: [beat(0, { pace: { pacer: 'w', ratePerSecond: 9, limit: null, remaining: null, givingWay: false } })],
      out: { ratePerSecond: 9, limit: null, remaining: null, givingWay: false },
    },
  ])('$name', ({ beats, out }) => {
    expect(livePaceOf(beats, NOW)).toEqual(out);
  });
});

describe('withLivePace', () => {
  const known = {
    ratePerSecond: 3,
    limit: 100,
    remaining: 80,
    givingWay: true,
    rateLimited: 4,
    warnings: 1,
    waitedMs: 900,
  };
  const live = { ratePerSecond: 48, limit: 200, remaining: 120, givingWay: false };

  it.each([
    { name: 'nothing live: as the workflow knows it', known, live: undefined, out: known },
    { name: 'live over the known view, its totals kept', known, live, out: { ...known, ...live } },
    {
      name: 'live before any batch ended: totals zero',
      known: undefined,
      live,
      out: { ...live, rateLimited: 0, warnings: 0, waitedMs: 0 },
    },
    { name: 'neither', known: undefined, live: undefined, out: undefined },
  ])('$name', ({ known, live, out }) => {
    expect(withLivePace(known, live)).toEqual(out);
  });
});
