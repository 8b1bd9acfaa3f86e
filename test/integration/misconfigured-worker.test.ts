// Issue 10: a worker without WEBHOOK_URL among the workers of a real run (target "url"). Two real worker processes
// (`src/worker.ts`) on one task queue, the second without WEBHOOK_URL/WEBHOOK_TOKEN. The misconfigured worker cannot
// know at start-up which runs it will see, so it polls; a batch or replay of a run to WEBHOOK_URL that lands on it is
// refused before any lookup with a retryable failure naming the worker and WEBHOOK_URL, which Temporal retries on
// the task queue, where the worker with WEBHOOK_URL takes it. The run completes exact, every member delivered once,
// and the refusal is visible while it is retried: the pending activity's last failure (what the Web UI shows) and
// `webhook-backfill status --json` / `--once`.
import { PassThrough } from 'node:stream';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main';
import type { CliIo } from '../../src/cli/io';
import { DEFAULT_SYNTHETIC_SEED, syntheticUsers } from '../../dev/synthetic';
import {
  pauseSignal,
  progressQuery,
  resumeSignal,
  WORKFLOW_TYPE,
  type BackfillInput,
  type BackfillResult,
} from '../../workflows/definitions';
import { activitySchedule, readAudit, startStack, waitFor } from '../support/stack';
import { syntheticSuite } from '../support/synthetic-suite';
import { expectKnownCounts, checkKnownAnswer } from '../support/known-answer';
import { workerProcess } from '../support/worker-process';

const MEMBERS = 600;
const SEED = DEFAULT_SYNTHETIC_SEED;
/** The longest wait between attempts of a refused batch or replay. */
const BACKOFF_S = 2;

const suite = syntheticSuite({ members: MEMBERS, seed: SEED, parent: '/var/tmp', prefix: 'misconfigured-worker-' });

/** `webhook-backfill status` in this process, as a user runs it; returns its exit code and stdout. */
async function status(env: Record<string, string>, args: string[]): Promise<{ code: number; out: string }> {
  const stdout = new PassThrough();
  let out = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const io: CliIo = {
    stdout,
    stderr: new PassThrough(),
    env,
    cwd: suite.dir,
    now: () => new Date(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
  const code = await main(['status', ...args], io);
  return { code, out };
}

/** The identity a worker process logs at start (JSON log line "webhook-backfill worker starting"). */
function identityIn(log: string): string {
  for (const line of log.split('\n')) {
    if (!line.includes('webhook-backfill worker starting')) continue;
    const identity = (JSON.parse(line) as { identity?: unknown }).identity;
    if (typeof identity === 'string') return identity;
  }
  throw new Error(`no start line with an identity in:\n${log}`);
}

/** The first refused batch (not a refused deferred replay) that `status --json` listed as retrying. */
function refusedBatch(json: { retrying?: { activity: string; worker: string | null; message: string }[] } | undefined) {
  return json?.retrying?.find((r) => r.activity === 'processBatch' && /WEBHOOK_URL/.test(r.message));
}

describe('a worker without WEBHOOK_URL beside one with it', () => {
  it('refuses the batches it takes, visibly and by name; the run completes with every member delivered exactly once', async () => {
    const stack = await startStack({
      server: suite.server,
      users: syntheticUsers(MEMBERS, SEED),
      worker: false,
      env: { CHANNEL_RATE_LIMIT: '80', LOG_FORMAT: 'json' },
    });
    const { WEBHOOK_URL: _url, WEBHOOK_TOKEN: _token, ...withoutUrl } = stack.env;
    const good = workerProcess({ env: stack.env, logFile: path.join(suite.dir, 'good.log') });
    const bad = workerProcess({ env: withoutUrl, logFile: path.join(suite.dir, 'bad.log') });
    const cliEnv = {
      TEMPORAL_ADDRESS: stack.env.TEMPORAL_ADDRESS!,
      BACKFILL_TASK_QUEUE: stack.env.BACKFILL_TASK_QUEUE!,
    };
    try {
      // The good worker prepares (a worker without WEBHOOK_URL preparing a real run fails it at once, having
      // done nothing: README "Workers without WEBHOOK_URL"); the run is held paused until both poll.
      await good.start();
      const workflowId = 'backfill-misconfigured-worker';
      // Refused batches and replays are retried on the task queue after their backoff (1 s doubling, product
      // default up to 30 s): capped at BACKOFF_S here, so that the run does not wait on backoffs more than it works.
      const input: BackfillInput = {
        source: { type: 'csv', path: suite.csv },
        batchSize: 20,
        parallelBatches: 4,
        batchMaxBackoffSeconds: BACKOFF_S,
        replayMaxBackoffSeconds: BACKOFF_S,
      };
      const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId,
        args: [input],
      });
      await handle.signal(pauseSignal, 'until the second worker polls');
      await waitFor(
        'prepared and paused',
        async () => {
          const p = await handle.query(progressQuery);
          return p.paused && p.batchesTotal > 0 ? p : undefined;
        },
        60_000,
      );
      await bad.start();
      const badIdentity = identityIn(await bad.log());
      await handle.signal(resumeSignal);

      // While it runs: a refused batch is a pending activity whose last failure names the worker and WEBHOOK_URL.
      let seenJson: { retrying?: { activity: string; worker: string | null; message: string }[] } | undefined;
      let seenText: string | undefined;
      let seenUi: { lastFailure?: { message?: string | null } | null; lastWorkerIdentity?: string | null } | undefined;
      for (;;) {
        const description = await handle.describe();
        if (description.status.name !== 'RUNNING') break;
        // Deferred replays are refused too (by design); what is checked here is a refused batch, so each view is
        // sampled until it shows one.
        seenUi ??= description.raw.pendingActivities?.find(
          (p) => p.activityType?.name === 'processBatch' && /WEBHOOK_URL/.test(p.lastFailure?.message ?? ''),
        );
        if (!refusedBatch(seenJson)) {
          const json = await status(cliEnv, ['--workflow-id', workflowId, '--json']).catch(() => undefined);
          if (json?.code === 0) seenJson = JSON.parse(json.out) as typeof seenJson;
        }
        if (!/retrying processBatch .*WEBHOOK_URL/.test(seenText ?? '')) {
          const once = await status(cliEnv, ['--workflow-id', workflowId, '--once']).catch(() => undefined);
          if (once?.code === 0) seenText = once.out;
        }
        await new Promise((r) => setTimeout(r, 150));
      }
      const result = (await handle.result()) as BackfillResult;

      const expected = expectKnownCounts(result, { n: MEMBERS, seed: SEED, also: { total: MEMBERS } });
      const entries = await readAudit(result.auditPath);
      const check = checkKnownAnswer({
        n: MEMBERS,
        seed: SEED,
        workflowId,
        audit: entries,
        deliveries: stack.receiver.deliveries(),
      });
      expect(check.problems).toEqual([]);
      expect(check.auditEntries).toBe(MEMBERS);
      // Exactly once: one accepted delivery per member replayed, no webhook-id twice.
      const accepted = stack.receiver.accepted().map((d) => d.webhookId);
      expect(accepted).toHaveLength(expected.upserts + expected.deletes);
      expect(new Set(accepted).size).toBe(accepted.length);

      // Visible while retried, naming the worker and the variable: the Web UI's pending activity, and `status`.
      const expectedMessage = new RegExp(
        `worker ${badIdentity.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} has no WEBHOOK_URL and cannot replay batch \\d+ of ${workflowId}`,
      );
      expect(seenUi?.lastFailure?.message).toMatch(expectedMessage);
      expect(seenUi?.lastWorkerIdentity).toBe(badIdentity);
      const retrying = refusedBatch(seenJson);
      expect(retrying).toMatchObject({ activity: 'processBatch', worker: badIdentity });
      expect(retrying?.message).toMatch(expectedMessage);
      expect(seenText).toMatch(
        /retrying processBatch \(attempt \d+, last failed on .*\): worker .* has no WEBHOOK_URL/,
      );
      // Refused batches were attempted again, on the shortened backoff.
      const batches = await activitySchedule(handle, 'processBatch');
      expect(batches).toMatchObject({ maxBackoffSeconds: BACKOFF_S });
      expect(batches!.maxAttempt).toBeGreaterThanOrEqual(2);
      // The misconfigured worker took work and refused it, by name, before any lookup.
      const badLog = await bad.log();
      expect(badLog).toMatch(/refused: no WEBHOOK_URL on this worker/);
      expect(badLog).not.toMatch(/batch done/);
      console.log(
        `misconfigured worker ${badIdentity}: ${badLog.match(/refused: no WEBHOOK_URL/g)?.length ?? 0} refusals; run exact (${accepted.length} deliveries)`,
      );
    } finally {
      await good.stop();
      await bad.stop();
      await stack.close();
    }
  }, 300_000);
});
