// The file store's disk fails mid-run, for real (issue 28): BACKFILL_DATA_DIR is a small tmpfs in the worker's own
// mount namespace (`unshare -m`), first filled up (ENOSPC) and later remounted read-only (EROFS), each for several
// seconds. The batches stop sending, keep what they know and wait; when space or write access is back they record it
// and carry on: lookups stop within a write-behind flush of the fault and stay stopped while it lasts. Lookups and
// deliveries made twice are counted and bounded by what was in flight when the disk went, and the report (from the
// log alone) lists the two outages. Root, unshare and nsenter only (mount); skipped otherwise, with the reason.
import { existsSync } from 'node:fs';
import { appendFile, readdir, readFile, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import type { AuditEntry } from '../../src/audit/audit-entry';
import { createFileAuditStore, newReadStats, type AuditReadStats } from '../../src/audit/audit-store';
import { DEFAULT_SYNTHETIC_SEED, syntheticUsers } from '../../dev/synthetic';
import type { AuditSummary } from '../../src/report/summary';
import { TICK_MS } from '../../activities/heartbeat-pace';
import { WORKFLOW_TYPE, type BackfillResult } from '../../workflows/definitions';
import { runProcess } from '../support/child-process';
import { cliInProcess } from '../support/cli';
import { startStack, waitFor, type Stack } from '../support/stack';
import { syntheticSuite } from '../support/synthetic-suite';
import { expectKnownCounts, checkKnownAnswer, auditPathOf } from '../support/known-answer';
import { workerProcess, type WorkerProcess } from '../support/worker-process';

const MEMBERS = 1_500;
const SEED = DEFAULT_SYNTHETIC_SEED;
const RATE_LIMIT = 100;
/** How long each fault lasts: several times the store's backoff (5 s at most between tries). */
const DOWN_MS = 8_000;
const PARALLEL_BATCHES = 4;
const MEMBER_CONCURRENCY = 16;
/** Members in flight at once: the most that may be looked up or delivered again per fault. */
const IN_FLIGHT = PARALLEL_BATCHES * MEMBER_CONCURRENCY;
/** The tmpfs: room for the run's files (about 1 MB here) and not much more, so a filler fills it at once. */
const DISK = '16m';

/**
 * How soon every batch knows the disk is gone: at its next write-behind flush (once a TICK_MS), plus slack for a loaded
 * machine. Lookups started before then (in flight, or let through by the rate) are recorded once it is back, not
 * made twice; after it, none starts until the disk takes writes again.
 */
const NOTICED_WITHIN_MS = 3 * TICK_MS;

const onPath = (command: string) =>
  (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(path.join(dir, command)));
/** Why this test cannot run here (it mounts a tmpfs in a mount namespace of the worker's own), or '' when it can. */
const skipReason =
  process.getuid?.() !== 0
    ? 'needs root (it mounts a tmpfs and remounts it read-only)'
    : (['unshare', 'nsenter', 'mount'].filter((c) => !onPath(c)).map((c) => `needs ${c} on PATH`)[0] ?? '');

// Not under /tmp, and the source outside the tmpfs: the worker reads it through its namespace as it is.
const suite = syntheticSuite({
  members: MEMBERS,
  seed: SEED,
  parent: '/var/tmp',
  prefix: 'disk-outage-',
  dataDir: true,
});

/** The worker in a mount namespace of its own, with a private tmpfs of DISK on BACKFILL_DATA_DIR. */
const onSmallDisk =
  (mountPoint: string) =>
  (command: string, args: string[]): [string, string[]] => [
    'unshare',
    [
      '-m',
      'bash',
      '-c',
      `mount -t tmpfs -o size=${DISK},mode=0700 tmpfs '${mountPoint}' && exec "$0" "$@"`,
      command,
      ...args,
    ],
  ];

/** The worker's view of a path under its tmpfs, from outside its namespace (as root). */
const seen = (worker: WorkerProcess, file: string) => `/proc/${worker.pid!}/root${file}`;

/** Runs `mount` (or another command) in the worker's mount namespace. */
async function inWorkerNamespace(worker: WorkerProcess, args: string[]): Promise<void> {
  const r = await runProcess('nsenter', ['-t', String(worker.pid!), '-m', ...args], {});
  if (r.code !== 0) throw new Error(`nsenter ${args.join(' ')}: ${r.stderr}`);
}

/**
 * Fills the tmpfs to the last byte and keeps it full until `stop` aborts: the worker itself frees space while it runs
 * (a settled replay's pending file is removed), and a write that finds those pages free goes through (the first
 * runs of this test saw every batch record through the "full" disk on the room its replays had freed).
 */
async function keepDiskFull(
  worker: WorkerProcess,
  stop: AbortSignal,
): Promise<{ filler: string; kept: Promise<void> }> {
  const filler = seen(worker, path.join(suite.dataDir, 'filler'));
  const zeros = Buffer.alloc(64 * 1024);
  const fill = async () => {
    for (;;) {
      const error = await appendFile(filler, zeros).then(
        () => undefined,
        (err: NodeJS.ErrnoException) => err,
      );
      if (error?.code === 'ENOSPC') return;
      if (error) throw error;
    }
  };
  await fill();
  const kept = (async () => {
    while (!stop.aborted) {
      await sleep(10);
      if (!stop.aborted) await fill();
    }
  })();
  return { filler, kept };
}

/** The replays the run has handed to the pending store and not settled yet (their files free space when they are). */
async function unsettledReplays(worker: WorkerProcess, auditPath: string): Promise<number> {
  const names = await readdir(seen(worker, path.join(path.dirname(auditPath), 'pending'))).catch(() => []);
  return names.filter((name) => name.endsWith('.json')).length;
}

/** The audit log's records and waits as the report reads them (a torn line from the full disk is skipped). */
async function readLog(file: string): Promise<{ entries: AuditEntry[]; stats: AuditReadStats }> {
  const stats = newReadStats();
  const entries: AuditEntry[] = [];
  for await (const entry of createFileAuditStore().entries(file, stats)) entries.push(entry);
  return { entries, stats };
}

/** What the simulator saw while a fault lasted: lookups in all, and how long none had started when it ended. */
interface FaultLookups {
  lookups: number;
  quietMs: number;
}

/** Holds a fault for DOWN_MS once work is under way, watching the lookups the simulator sees meanwhile. */
async function duringFault(
  stack: Stack,
  start: () => Promise<unknown>,
  end: () => Promise<unknown>,
): Promise<FaultLookups> {
  const requests = () => stack.simulator.stats().requests;
  const before = requests();
  await start();
  try {
    const until = Date.now() + DOWN_MS;
    let seen = requests();
    let lastLookup = Date.now();
    while (Date.now() < until) {
      await sleep(100);
      if (requests() !== seen) [seen, lastLookup] = [requests(), Date.now()];
    }
    return { lookups: requests() - before, quietMs: Date.now() - lastLookup };
  } finally {
    await end();
  }
}

/** How often the worker logged `message`. */
const timesLogged = async (worker: WorkerProcess, message: string) => (await worker.log()).split(message).length - 1;

it.skipIf(skipReason !== '')(
  'a full disk, then a read-only remount, mid-run: the batches wait and carry on; what is done twice is bounded' +
    (skipReason ? ` (skipped: ${skipReason})` : ''),
  { timeout: 300_000 },
  async () => {
    const stack = await startStack({
      server: suite.server,
      users: syntheticUsers(MEMBERS, SEED),
      worker: false,
      env: { BACKFILL_MEMBER_CONCURRENCY: String(MEMBER_CONCURRENCY) },
    });
    const worker = workerProcess({
      env: { ...stack.env, BACKFILL_DATA_DIR: suite.dataDir },
      logFile: path.join(suite.dir, 'worker.log'),
      wrap: onSmallDisk(suite.dataDir),
    });
    try {
      await worker.start();
      const workflowId = 'disk-outage';
      const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId,
        args: [
          {
            source: { type: 'csv', path: suite.csv },
            batchSize: 100,
            parallelBatches: PARALLEL_BATCHES,
            rateLimit: RATE_LIMIT,
          },
        ],
      });
      const auditPath = await auditPathOf(handle);
      const audit = seen(worker, auditPath);
      const recorded = (n: number) => async () => ((await readLog(audit)).entries.length >= n ? true : undefined);

      await waitFor('work under way', recorded(300), 90_000);
      // The replays the delete guard held at the start settle first: what they free is not room the test left.
      await waitFor(
        'the held replays settled',
        async () => ((await unsettledReplays(worker, auditPath)) === 0 ? true : undefined),
        90_000,
      );
      const full = new AbortController();
      let disk: { filler: string; kept: Promise<void> } | undefined;
      const whileFull = await duringFault(
        stack,
        async () => (disk = await keepDiskFull(worker, full.signal)),
        async () => {
          full.abort();
          await disk?.kept;
          if (disk) await unlink(disk.filler);
        },
      );
      // Every batch that waited goes on (its backoff is up to 5 s after the disk is back) and records anew, so the
      // read-only remount is an outage of its own rather than the same one prolonged.
      await waitFor(
        'the store back for every batch that waited',
        async () =>
          (await timesLogged(worker, 'audit and pending store back')) >=
          (await timesLogged(worker, 'audit or pending store unavailable'))
            ? true
            : undefined,
        90_000,
      );
      const afterFull = (await readLog(audit)).entries.length;
      await waitFor('work under way again', recorded(afterFull + 100), 90_000);
      const whileReadOnly = await duringFault(
        stack,
        () => inWorkerNamespace(worker, ['mount', '-o', 'remount,ro', suite.dataDir]),
        () => inWorkerNamespace(worker, ['mount', '-o', 'remount,rw', suite.dataDir]),
      );

      const result = (await handle.result()) as BackfillResult;
      expectKnownCounts(result, { n: MEMBERS, seed: SEED });
      const { entries, stats } = await readLog(audit);
      const check = checkKnownAnswer({
        n: MEMBERS,
        seed: SEED,
        workflowId,
        audit: entries,
        deliveries: stack.receiver.deliveries(),
      });
      if (check.problems.length > 0) {
        const raw = (await readFile(audit, 'utf8')).split('\n');
        const missing = check.problems.slice(0, 3).map((p) => Number(/line (\d+)/.exec(p)?.[1]));
        console.log(
          `disk-outage: ${stats.unreadable} unreadable lines; raw lines of ${missing.join(', ')}: ` +
            JSON.stringify(
              raw.filter((l) => missing.some((n) => l.includes(`"line":${n},`))).map((l) => l.slice(0, 300)),
            ),
        );
      }
      expect(check.problems).toEqual([]);
      const extraLookups = stack.simulator.stats().requests - MEMBERS;
      // Replays that waited look their member up again by design (REPLAY_RECHECK_AFTER_MS): not what the faults cost.
      const rechecked = entries.filter((e) => e.recheckedAt !== undefined).length;
      const report = await cliInProcess(['report', '--audit', audit, '--summary', '--format', 'json'], {});
      expect(report.code, report.err).toBe(0);
      const { waits } = JSON.parse(report.out) as AuditSummary;
      console.log(
        `disk-outage: ${whileFull.lookups} lookups while the disk was full (none in its last ${whileFull.quietMs} ms), ` +
          `${whileReadOnly.lookups} while read-only (none in its last ${whileReadOnly.quietMs} ms; ${DOWN_MS} ms each); ` +
          `${extraLookups} lookups beyond one per member (${rechecked} of them replays' re-checks by design), ` +
          `${check.extraAcceptedDeliveries} deliveries accepted twice (bound ${IN_FLIGHT} per fault); ` +
          `${stats.unreadable} torn lines skipped; the report's store outages: ${JSON.stringify(waits.store)}`,
      );
      // Lookups stop once every batch knows the disk is gone (NOTICED_WITHIN_MS) and none starts again while it is: the
      // fault ends after a quiet stretch, with far fewer lookups than an unaffected 8 s makes (RATE_LIMIT per second).
      for (const fault of [whileFull, whileReadOnly]) {
        expect(fault.quietMs).toBeGreaterThanOrEqual(DOWN_MS - NOTICED_WITHIN_MS);
        expect(fault.lookups).toBeLessThan((RATE_LIMIT * DOWN_MS) / 1_000 / 2);
      }
      expect(extraLookups - rechecked).toBeLessThanOrEqual(2 * IN_FLIGHT);
      expect(check.extraAcceptedDeliveries).toBeLessThanOrEqual(2 * IN_FLIGHT);
      // Both faults are in the report, each as one outage of the store that the batches waited through.
      expect(waits.store.length).toBeGreaterThanOrEqual(2);
      const log = await worker.log();
      expect(log).toContain('audit or pending store unavailable');
      for (const code of ['ENOSPC', 'EROFS']) expect(log).toContain(code);
    } finally {
      await worker.stop();
      await stack.close();
    }
  },
);
