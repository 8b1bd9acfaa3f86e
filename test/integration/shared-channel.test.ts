// Issue 24: the channel's rate limit is shared with the customer's own production traffic (every key of the channel
// draws from one bucket). Two workers repair while a second client of the same channel, with its own credentials,
// makes production's calls: production must never be refused, and the repair must still use what production
// leaves. And in Channel Talk's grace period (over-limit calls succeed with a warning header) the job, with no
// budget configured, must pace itself from the headers so that almost nothing is warned.
import { describe, expect, it } from 'vitest';
import { DEFAULT_SYNTHETIC_SEED, syntheticUserLookup } from '../../dev/synthetic';
import { startProductionTraffic } from '../../dev/simulator/production-traffic';
import { createBackfillWorker, type BackfillWorker } from '../../src/worker-setup';
import { setTimeout as sleep } from 'node:timers/promises';
import { runState } from '../../src/cli/run-state';
import { connectTemporal, loadCliEnv } from '../../src/cli/temporal-env';
import {
  progressQuery,
  WORKFLOW_TYPE,
  type BackfillResult,
  type ChannelPace,
  type Progress,
} from '../../workflows/definitions';
import type { ChannelSimulatorOptions } from '../../dev/simulator/channel-simulator';
import { readAudit, startStack, workflowBundle, type Stack } from '../support/stack';
import { syntheticSuite } from '../support/synthetic-suite';
import { expectKnownCounts, checkKnownAnswer } from '../support/known-answer';

const MEMBERS = 1_000;
const SEED = DEFAULT_SYNTHETIC_SEED;
const PRODUCTION = { accessKey: 'production-app-key', accessSecret: 'production-app-secret' };

const suite = syntheticSuite({ members: MEMBERS, seed: SEED, prefix: 'shared-channel-' });

/** When the simulator admitted each of the job's lookups (production's calls are not lookups of members). */
function lookupClock(): { times: number[]; lookupUser: NonNullable<ChannelSimulatorOptions['lookupUser']> } {
  const lookup = syntheticUserLookup(MEMBERS, SEED);
  const times: number[] = [];
  return {
    times,
    lookupUser: (memberId) => {
      times.push(Date.now());
      return lookup(memberId);
    },
  };
}

/** Two workers on the stack's task queue: the stack's own and one more in this process. */
async function twoWorkers(
  o: Parameters<typeof startStack>[0],
): Promise<{ stack: Stack; second: BackfillWorker; close: () => Promise<void> }> {
  const stack = await startStack(o);
  const second = await createBackfillWorker(stack.config, { workflowBundle: await workflowBundle() });
  void second.run();
  return {
    stack,
    second,
    close: async () => {
      await second.close();
      await stack.close();
    },
  };
}

async function runExact(
  stack: Stack,
  workflowId: string,
  whileRunning?: (done: Promise<unknown>) => Promise<void>,
  batchSize = 100,
): Promise<Progress> {
  const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
    taskQueue: stack.config.BACKFILL_TASK_QUEUE,
    workflowId,
    args: [{ source: { type: 'csv', path: suite.csv }, batchSize }],
  });
  const done = handle.result();
  await whileRunning?.(done);
  const result = (await done) as BackfillResult;
  expectKnownCounts(result, { n: MEMBERS, seed: SEED, also: { total: MEMBERS } });
  const check = checkKnownAnswer({
    n: MEMBERS,
    seed: SEED,
    workflowId,
    audit: await readAudit(result.auditPath),
    deliveries: stack.receiver.deliveries(),
  });
  expect(check.problems).toEqual([]);
  return handle.query(progressQuery);
}

/**
 * What `webhook-backfill status` shows while the run goes, until a running batch's heartbeat shows the lookup rate
 * before any batch has ended (the workflow alone knows it only from ended batches): the first such state, if any.
 */
async function liveBeforeFirstBatchEnds(stack: Stack, workflowId: string, done: Promise<unknown>) {
  const session = await connectTemporal(loadCliEnv(stack.env));
  let ended = false;
  void done.finally(() => (ended = true)).catch(() => undefined);
  try {
    while (!ended) {
      const state = await runState(session, workflowId).catch(() => undefined);
      if (state?.kind !== 'running') break;
      const { channelPace, batchesDone } = state.progress;
      if (batchesDone > 0) return undefined;
      if (channelPace && channelPace.ratePerSecond > 0) return channelPace;
      await sleep(250);
    }
    return undefined;
  } finally {
    await session.close();
  }
}

/** Lookups per second from the first to the last. */
const rateOf = (times: number[]) => (times.length - 1) / ((times[times.length - 1]! - times[0]!) / 1000);

describe('a channel shared with the customer’s production (issue 24)', () => {
  it('bucket 200 at 50/s, CHANNEL_RATE_LIMIT=50, production 10/s + 20 every 5 s: production is never refused, the repair uses >= 90% of what it leaves', async () => {
    const lookups = lookupClock();
    const { stack, close } = await twoWorkers({
      server: suite.server,
      users: [],
      env: { CHANNEL_RATE_LIMIT: '50' },
      simulator: {
        rateLimit: { perSecond: 50, burst: 200 },
        otherCredentials: [PRODUCTION],
        lookupUser: lookups.lookupUser,
      },
    });
    const production = startProductionTraffic({
      url: stack.simulator.url,
      ...PRODUCTION,
      perSecond: 10,
      burst: 20,
      burstEveryMs: 5_000,
    });
    try {
      let live: ChannelPace | undefined;
      // Four batches of 250 at once: each heartbeats after 100 members (activities/heartbeat-pace.ts), long before
      // the first one ends.
      const progress = await runExact(
        stack,
        'shared-with-production',
        async (done) => {
          live = await liveBeforeFirstBatchEnds(stack, 'shared-with-production', done);
        },
        250,
      );
      // `status` shows the lookup rate now while the first batches still run (from their heartbeats).
      expect(live).toMatchObject({ limit: 200, rateLimited: 0 });
      expect(live!.ratePerSecond).toBeGreaterThan(0);
      // What `status` and the Web UI show: the bucket as last seen, and what the run met of it.
      expect(progress.channelPace).toMatchObject({ limit: 200, rateLimited: 0, warnings: 0 });
      const prod = await production.stop();
      const productionRate = prod.sent / (prod.elapsedMs / 1000);
      const repairRate = rateOf(lookups.times);
      const left = 50 - productionRate;
      console.log(
        `shared channel: production ${prod.sent} calls (${productionRate.toFixed(1)}/s), ${prod.rateLimited} refused; ` +
          `repair ${repairRate.toFixed(1)}/s = ${((100 * repairRate) / left).toFixed(1)}% of the ${left.toFixed(1)}/s left; ` +
          `repair 429s ${stack.simulator.stats().rateLimited}`,
      );
      expect(prod.rateLimited).toBe(0);
      expect(stack.simulator.stats().others.rateLimited).toBe(0);
      expect(repairRate / left).toBeGreaterThanOrEqual(0.9);
    } finally {
      await production.stop();
      await close();
    }
  }, 180_000);

  it('grace period, refill 100/s, bucket 20, no CHANNEL_RATE_LIMIT: at most 1% of lookups warned', async () => {
    const lookups = lookupClock();
    const { stack, close } = await twoWorkers({
      server: suite.server,
      users: [],
      simulator: { rateLimit: { perSecond: 100, burst: 20 }, grace: true, lookupUser: lookups.lookupUser },
    });
    try {
      const progress = await runExact(stack, 'grace-period');
      expect(progress.channelPace).toMatchObject({ limit: 20, rateLimited: 0 });
      const s = stack.simulator.stats();
      console.log(
        `grace period: ${s.requests} lookups, ${s.throttleWarnings} warned, ${rateOf(lookups.times).toFixed(1)}/s`,
      );
      expect(s.rateLimited).toBe(0);
      expect(s.throttleWarnings).toBeLessThanOrEqual(0.01 * s.requests);
    } finally {
      await close();
    }
  }, 180_000);
});
