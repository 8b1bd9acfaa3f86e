import { describe, expect, it } from 'vitest';
import { SeededRng } from '../../dev/seeded-rng';
import { rateShare, type ShareInputs } from '../../src/domain/rate-share';

describe('rateShare', () => {
  it.each<[string, ShareInputs, number]>([
    [
      '600 members, batchSize 500, parallel 4: first of 2 batches',
      { parallelBatches: 4, inFlight: 0, redo: 0, notStarted: 1 },
      2,
    ],
    [
      '600 members, batchSize 500, parallel 4: second of 2 batches',
      { parallelBatches: 4, inFlight: 1, redo: 0, notStarted: 0 },
      2,
    ],
    ['a single batch gets the whole budget', { parallelBatches: 4, inFlight: 0, redo: 0, notStarted: 0 }, 1],
    ['many batches left: capped at parallelBatches', { parallelBatches: 4, inFlight: 0, redo: 0, notStarted: 99 }, 4],
    ['full slots, many left', { parallelBatches: 4, inFlight: 3, redo: 0, notStarted: 50 }, 4],
    ['parallel 1 is always 1', { parallelBatches: 1, inFlight: 0, redo: 5, notStarted: 5 }, 1],
    ['redo queue counts as still to launch', { parallelBatches: 4, inFlight: 0, redo: 2, notStarted: 0 }, 3],
    ['tail: one other in flight, nothing left', { parallelBatches: 3, inFlight: 1, redo: 0, notStarted: 0 }, 2],
    ['tail: two others in flight, one left to start', { parallelBatches: 8, inFlight: 2, redo: 0, notStarted: 1 }, 4],
    ['nonsense negatives are clamped', { parallelBatches: 4, inFlight: -3, redo: -1, notStarted: -7 }, 1],
  ])('%s -> %i', (_label, inputs, expected) => {
    expect(rateShare(inputs)).toBe(expected);
  });
});

/** A seeded generator, so a failure reproduces. */
function seeded(seed: number): () => number {
  const rng = new SeededRng(seed);
  return () => rng.float();
}

interface SimulationResult {
  /** The largest sum over running batches of 1/share seen at any moment (1 = the whole budget). */
  maxBudget: number;
  launches: number;
  finished: number;
}

/**
 * Runs the workflow's batch scheduling (workflows/backfill.ts) with random completion orders: batches taken
 * from the redo queue first, then new ones, while fewer than parallelBatches are in flight and nothing blocks
 * launching (pause, the deferred-replay backlog, a pending continue-as-new); a batch finishes complete or
 * incomplete (back to the redo queue); a pause cancels every batch in flight, and a cancelled batch stays in
 * flight until its cancellation completes, then goes to the redo queue.
 */
function simulate(seed: number, share: (inputs: ShareInputs) => number): SimulationResult {
  const random = seeded(seed);
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;
  const parallelBatches = 1 + Math.floor(random() * 6);
  const batches = 1 + Math.floor(random() * 20);
  let nextBatch = 0;
  const redo: number[] = [];
  const running = new Map<number, { share: number; cancelled: boolean }>();
  let finished = 0;
  let blocked = false;
  let maxBudget = 0;
  let launches = 0;

  for (let step = 0; step < 10_000 && finished < batches; step++) {
    if (!blocked) {
      while (running.size < parallelBatches) {
        const next = redo.length > 0 ? redo.shift() : nextBatch < batches ? nextBatch++ : undefined;
        if (next === undefined) break;
        const s = share({
          parallelBatches,
          inFlight: running.size,
          redo: redo.length,
          notStarted: batches - nextBatch,
        });
        expect(s).toBeGreaterThanOrEqual(1);
        expect(s).toBeLessThanOrEqual(parallelBatches);
        running.set(next, { share: s, cancelled: false });
        launches++;
        const budget = [...running.values()].reduce((sum, r) => sum + 1 / r.share, 0);
        maxBudget = Math.max(maxBudget, budget);
      }
    }
    const roll = random();
    if (roll < 0.05) {
      // pause: cancel everything in flight; launching stops until resume
      for (const r of running.values()) r.cancelled = true;
      blocked = true;
    } else if (roll < 0.15) {
      blocked = !blocked; // resume / backlog drained / new run, or the opposite
    } else if (running.size > 0) {
      const batch = pick([...running.keys()]);
      const { cancelled } = running.get(batch)!;
      running.delete(batch);
      if (cancelled || random() < 0.15) redo.push(batch);
      else finished++;
    } else {
      blocked = false;
    }
  }
  return { maxBudget, launches, finished };
}

describe('rateShare over simulated runs', () => {
  it('never lets the batches running at once use more than the whole budget (2,000 seeded runs)', () => {
    let launches = 0;
    for (let seed = 1; seed <= 2_000; seed++) {
      const result = simulate(seed, rateShare);
      expect(result.maxBudget, `seed ${seed}`).toBeLessThanOrEqual(1 + 1e-9);
      launches += result.launches;
    }
    expect(launches).toBeGreaterThan(20_000); // the runs did launch, cancel and relaunch plenty
  });

  it('uses the whole budget when fewer batches than slots are left', () => {
    // 2 batches, 4 slots: both run at once with half the budget each (a static split gave each a quarter).
    const first = rateShare({ parallelBatches: 4, inFlight: 0, redo: 0, notStarted: 1 });
    const second = rateShare({ parallelBatches: 4, inFlight: 1, redo: 0, notStarted: 0 });
    expect(1 / first + 1 / second).toBe(1);
  });

  it('the check catches a share that ignores batches still to launch', () => {
    // Counting only batches in flight lets the first batch take the whole budget, then a second one more.
    const naive = ({ parallelBatches, inFlight }: ShareInputs) => Math.min(parallelBatches, inFlight + 1);
    const worst = Math.max(...Array.from({ length: 200 }, (_, i) => simulate(i + 1, naive).maxBudget));
    expect(worst).toBeGreaterThan(1.4);
  });

  it('the check catches a share that forgets the redo queue', () => {
    const noRedo = ({ parallelBatches, inFlight, notStarted }: ShareInputs) =>
      Math.min(parallelBatches, inFlight + 1 + notStarted);
    const worst = Math.max(...Array.from({ length: 2_000 }, (_, i) => simulate(i + 1, noRedo).maxBudget));
    expect(worst).toBeGreaterThan(1);
  });
});
