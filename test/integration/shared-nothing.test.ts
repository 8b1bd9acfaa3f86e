// Issue 12: workers that share nothing but Temporal and PostgreSQL (BACKFILL_STORE=postgres).
//
// Two real worker processes (`src/worker.ts`), each in its own mount namespace with a private tmpfs on /tmp and
// BACKFILL_DATA_DIR under it: the same path on both, two different disks, neither can read the other's files.
// The first prepares the run (it alone reads the CSV) and works alone until deferred replays flow; then the
// second starts and the first is SIGKILLed for good. The second must finish the run exact from what is in
// PostgreSQL. On the file store this fails: the second worker cannot open the first's work file and index.
//
// Second test (issue 26: the growing work set on PostgreSQL): the first worker prepares and normalises the source
// while the batches run; the normaliser is held mid-way (a trigger waits on a lock the test holds for rows past the
// first commit), the second worker reads batches of the set the first is still writing, then the first is SIGKILLed
// mid-normalise and the second resumes the rest: exact counts, every row once.
//
// Third test: PostgreSQL itself crashes (pg_ctl -m immediate restart) mid-run; the worker reconnects and the
// run ends exact, nothing lost or counted twice.
import path from 'node:path';
import type { Pool } from 'pg';
import { describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/audit/audit-entry';
import { DEFAULT_SYNTHETIC_SEED, syntheticUsers } from '../../dev/synthetic';
import {
  progressQuery,
  WORKFLOW_TYPE,
  type BackfillInput,
  type BackfillResult,
  type Progress,
} from '../../workflows/definitions';
import { activitySchedule, startStack, waitFor, type Stack } from '../support/stack';
import { syntheticSuite } from '../support/synthetic-suite';
import { expectKnownCounts, checkKnownAnswer, auditPathOf } from '../support/known-answer';
import { COMMIT_ROWS } from '../../src/store/postgres-growing-work';
import { createStoreTables, GROWTH_TABLE, WORK_SETS_TABLE, WORK_TABLE } from '../../src/store/postgres-schema';
import { postgresAuditEntries } from '../support/stores';
import { workerProcess, type WorkerProcess } from '../support/worker-process';
import { runProcess } from '../support/child-process';

const MEMBERS = 1_500;
const SEED = DEFAULT_SYNTHETIC_SEED;
/** Slow enough that the run is far from done when the first worker dies (~30 s of lookups in all). */
const RATE_LIMIT = '50';
/** The same path on both workers; each sees its own private /tmp there. */
const PRIVATE_DATA_DIR = '/tmp/backfill-data';
/** A replay attempt's timeout: what a replay in flight on the killed worker waits before another attempt. */
const REPLAY_TIMEOUT_S = 20;

// Not under /tmp: the preparing worker, in its own mount namespace, must be able to read the source.
const suite = syntheticSuite({
  members: MEMBERS,
  seed: SEED,
  parent: '/var/tmp',
  prefix: 'shared-nothing-',
  postgres: true,
});

const asRoot = process.getuid?.() === 0;
/** This checkout: the worker runs from it, so a checkout under /tmp (a fresh clone in mktemp -d) must stay visible. */
const CHECKOUT = path.resolve(__dirname, '..', '..');
/**
 * A private /tmp for the worker: `unshare -m`, then a tmpfs mounted over /tmp, then the worker itself. A checkout
 * under /tmp is bound back at its own path inside the private /tmp (through a view of the outer /tmp in /run); the
 * rest of the outer /tmp stays out of sight.
 */
const privateTmp = (command: string, args: string[]): [string, string[]] => {
  if (!asRoot) return [command, args];
  const underTmp = CHECKOUT.startsWith('/tmp/');
  const outer = '/run/shared-nothing-outer-tmp';
  const script = underTmp
    ? `mkdir -p ${outer} && mount --bind /tmp ${outer} && mount -t tmpfs tmpfs /tmp && ` +
      `mkdir -p '${CHECKOUT}' && mount --bind '${outer}${CHECKOUT.slice('/tmp'.length)}' '${CHECKOUT}' && ` +
      `umount -l ${outer} && exec "$0" "$@"`
    : 'mount -t tmpfs tmpfs /tmp && exec "$0" "$@"';
  return ['unshare', ['-m', 'bash', '-c', script, command, ...args]];
};

const auditOf = (url: string, auditPath: string): Promise<AuditEntry[]> =>
  postgresAuditEntries(suite.pg, url, auditPath);

function expectExact(result: BackfillResult, entries: AuditEntry[], stack: Stack, workflowId: string) {
  const expected = expectKnownCounts(result, { n: MEMBERS, seed: SEED, also: { total: MEMBERS, dryRun: false } });
  const check = checkKnownAnswer({
    n: MEMBERS,
    seed: SEED,
    workflowId,
    audit: entries,
    deliveries: stack.receiver.deliveries(),
  });
  expect(check.problems).toEqual([]);
  expect(check.auditEntries).toBe(MEMBERS);
  expect(check.accepted).toBeGreaterThanOrEqual(expected.upserts + expected.deletes);
  return check;
}

/**
 * Holds every insert of a work row at position `from` or later until release(): a trigger waits on an advisory lock
 * this session holds. The normaliser then stops at a known point (its commit of those rows), mid-source.
 */
async function holdRowsFrom(db: Pool, from: number): Promise<{ release(): Promise<void> }> {
  await db.query(`CREATE FUNCTION hold_work_rows() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.ord >= ${from} THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF; RETURN NEW; END $$`);
  await db.query(
    `CREATE TRIGGER hold_work_rows BEFORE INSERT ON ${WORK_TABLE} FOR EACH ROW EXECUTE FUNCTION hold_work_rows()`,
  );
  const holder = await db.connect();
  await holder.query('SELECT pg_advisory_lock(4242)');
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      await holder.query('SELECT pg_advisory_unlock(4242)');
      holder.release();
    },
  };
}

const BIN = path.resolve(__dirname, '../../bin/webhook-backfill.js');

/**
 * Issue 22: the CLI chooses the store as the workers do. With BACKFILL_STORE=postgres alone (no
 * BACKFILL_AUDIT_STORE) `report` reads the log from PostgreSQL (the path names a file on another host's private
 * disk), a verify run on the same workers is reported the same way, and `purge` removes the kept work set.
 */
async function reportVerifyPurge(stack: Stack, workflowId: string, url: string, source: string): Promise<void> {
  const env = {
    PATH: process.env.PATH ?? '',
    TEMPORAL_ADDRESS: stack.env.TEMPORAL_ADDRESS!,
    BACKFILL_STORE: 'postgres',
    BACKFILL_DATABASE_URL: url,
  };
  const report = await runProcess(
    process.execPath,
    [BIN, 'report', '--workflow-id', workflowId, '--summary', '--format', 'json'],
    env,
  );
  expect(report.code, report.stderr).toBe(0);
  expect(JSON.parse(report.stdout)).toMatchObject({ rows: MEMBERS, inProgress: false });

  const verifyId = `${workflowId}-verify`;
  const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
    taskQueue: stack.config.BACKFILL_TASK_QUEUE,
    workflowId: verifyId,
    args: [
      {
        source: { type: 'csv', path: source },
        verifyAfter: { auditPath: (await resultOf(stack, workflowId)).auditPath },
      },
    ],
  });
  const verified = (await handle.result()) as BackfillResult;
  expect(verified.verify).toBeDefined();
  const verifyReport = await runProcess(process.execPath, [BIN, 'report', '--workflow-id', verifyId], env);
  expect(verifyReport.code, verifyReport.stderr).toBe(0);
  expect(verifyReport.stdout).toMatch(/still differs/);

  const purge = await runProcess(process.execPath, [BIN, 'purge', '--workflow-id', workflowId], env);
  expect(purge.code, purge.stderr).toBe(0);
  expect(purge.stdout).toMatch(/^removed work set .* from PostgreSQL: [1-9]\d* row\(s\)$/m);
  const again = await runProcess(process.execPath, [BIN, 'purge', '--workflow-id', workflowId], env);
  expect(again.stdout).toMatch(/^nothing left of .* to remove \(PostgreSQL and /);
}

const resultOf = async (stack: Stack, workflowId: string) =>
  (await stack.client.workflow.getHandle(workflowId).result()) as BackfillResult;

/**
 * The stack of the two-worker cases over the database at `url`, with no worker of its own, and its two worker
 * processes (not started), each with a private /tmp holding the same BACKFILL_DATA_DIR; their logs
 * `<logs>first.log` and `<logs>second.log` in the suite's directory. The work set is kept after completion, so that
 * `purge` has something to remove.
 */
async function twoHosts(url: string, logs: string) {
  const stack = await startStack({
    server: suite.server,
    users: syntheticUsers(MEMBERS, SEED),
    worker: false,
    env: {
      CHANNEL_RATE_LIMIT: RATE_LIMIT,
      BACKFILL_STORE: 'postgres',
      BACKFILL_DATABASE_URL: url,
      BACKFILL_KEEP_WORK_DATA: 'true',
    },
  });
  const env = { ...stack.env, BACKFILL_DATA_DIR: PRIVATE_DATA_DIR };
  const worker = (name: string) =>
    workerProcess({ env, logFile: path.join(suite.dir, `${logs}${name}.log`), wrap: privateTmp });
  return { stack, first: worker('first'), second: worker('second') };
}

describe('BACKFILL_STORE=postgres', () => {
  it('two workers with private disks: the second finishes what the first (SIGKILLed) left, exact', async () => {
    const url = await suite.pg.createDatabase('two_hosts');
    const { stack, first, second } = await twoHosts(url, '');
    try {
      // Replays are deferred while the receiver answers 503, and flow once it recovers.
      stack.receiver.setDefaultBehaviour({ status: 503 });
      await first.start();
      const workflowId = 'backfill-two-hosts';
      // A replay the first worker had in flight when it died is tried again after REPLAY_TIMEOUT_S (default 120 s).
      const input: BackfillInput = {
        source: { type: 'csv', path: suite.csv },
        batchSize: 50,
        batchHeartbeatSeconds: 3,
        replayAttemptTimeoutSeconds: REPLAY_TIMEOUT_S,
      };
      const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId,
        args: [input],
      });
      await waitFor(
        'replays deferred',
        async () => ((await handle.query(progressQuery)).pendingReplays >= 10 ? true : undefined),
        90_000,
      );
      stack.receiver.setDefaultBehaviour(undefined);
      const auditPath = (await handle.query(progressQuery)).auditPath!;
      expect(auditPath.startsWith(PRIVATE_DATA_DIR)).toBe(true); // a name only: no worker but the first has that directory
      await waitFor(
        'a deferred replay delivered',
        async () => ((await auditOf(url, auditPath)).some((e) => e.deferred === true) ? true : undefined),
        90_000,
      );

      await second.start();
      const beforeKill: Progress = await handle.query(progressQuery);
      await first.kill();
      const auditAtKill = (await auditOf(url, auditPath)).length;
      expect(auditAtKill).toBeLessThan(MEMBERS);

      const result = (await handle.result()) as BackfillResult;
      const entries = await auditOf(url, auditPath);
      const check = expectExact(result, entries, stack, workflowId);
      expect(entries.filter((e) => e.deferred === true).length).toBeGreaterThanOrEqual(10);
      // The second worker did take batches over (it could only have read them from PostgreSQL).
      const secondLog = await second.log();
      expect(secondLog).toMatch(/batch done/);
      expect(secondLog).not.toMatch(/ENOENT/);
      expect(first.kills).toBe(1);
      expect((await activitySchedule(handle, 'replayDeferred'))?.startToCloseSeconds).toBe(REPLAY_TIMEOUT_S);
      await reportVerifyPurge(stack, workflowId, url, suite.csv);
      console.log(
        `shared-nothing: first worker killed at ${auditAtKill}/${MEMBERS} audit entries (batches ${beforeKill.batchesDone}/${beforeKill.batchesTotal}, ${beforeKill.pendingReplays} replays waiting); ` +
          `${entries.filter((e) => e.deferred === true).length} deferred replays recorded; ${check.extraAcceptedDeliveries} repeated deliveries (same webhook-id)`,
      );
    } finally {
      await first.stop();
      await second.stop();
      await stack.close();
    }
  }, 300_000);

  it('two workers with private disks share one growing work set; the first, SIGKILLed mid-normalise, leaves the rest to the second: exact', async () => {
    const url = await suite.pg.createDatabase('growing_two_hosts');
    const db = suite.pg.pool('growing_two_hosts');
    await createStoreTables(db);
    const gate = await holdRowsFrom(db, COMMIT_ROWS);
    const { stack, first, second } = await twoHosts(url, 'growing-');
    try {
      await first.start();
      const workflowId = 'backfill-growing-two-hosts';
      const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId,
        args: [
          { source: { type: 'csv', path: suite.csv }, batchSize: 50, batchHeartbeatSeconds: 3 } satisfies BackfillInput,
        ],
      });
      const auditPath = await auditPathOf(handle);
      const marks = async () => {
        const [row] = await suite.pg.query(
          `SELECT (SELECT written FROM ${GROWTH_TABLE}) AS written, (SELECT count(*)::int FROM ${WORK_SETS_TABLE}) AS complete`,
          [],
          'growing_two_hosts',
        );
        return { written: row!.written as number | null, complete: row!.complete as number };
      };
      // Members looked up while the normaliser is held after its first commit: the first lookup did not wait for it.
      await waitFor(
        'lookups while the source is still being normalised',
        async () => ((await auditOf(url, auditPath)).length >= 100 ? true : undefined),
        90_000,
      );
      expect(await marks()).toEqual({ written: COMMIT_ROWS, complete: 0 });

      await second.start();
      await waitFor(
        'a batch done on the second worker',
        async () => (/batch done/.test(await second.log()) ? true : undefined),
        90_000,
      );
      expect(await marks()).toEqual({ written: COMMIT_ROWS, complete: 0 });
      await first.kill();
      const auditAtKill = (await auditOf(url, auditPath)).length;
      await gate.release();

      const result = (await handle.result()) as BackfillResult;
      expectExact(result, await auditOf(url, auditPath), stack, workflowId);
      const [rows] = await suite.pg.query(
        `SELECT count(*)::int AS rows, max(ord) + 1 AS span,
                count(entry->'member'->>'memberId') - count(DISTINCT entry->'member'->>'memberId') AS twice
         FROM ${WORK_TABLE}`,
        [],
        'growing_two_hosts',
      );
      expect({ rows: rows!.rows, span: rows!.span, twice: Number(rows!.twice) }).toEqual({
        rows: MEMBERS,
        span: MEMBERS,
        twice: 0,
      });
      expect(await marks()).toEqual({ written: MEMBERS, complete: 1 });
      const secondLog = await second.log();
      expect(secondLog).toMatch(/source normalised/);
      expect(secondLog).not.toMatch(/ENOENT/);
      console.log(
        `growing work set: first worker killed mid-normalise at ${auditAtKill}/${MEMBERS} audit entries, ${COMMIT_ROWS} rows committed; the second finished exact`,
      );
    } finally {
      await gate.release();
      await first.stop();
      await second.stop();
      await stack.close();
    }
  }, 300_000);

  it('PostgreSQL restarted mid-run: the worker reconnects, nothing is lost or counted twice', async () => {
    const url = await suite.pg.createDatabase('restarted');
    // The test cluster runs with synchronous_commit=off (speed), which lets a crash lose acknowledged commits,
    // as it would in production with that setting. This database commits durably, as a production one does.
    await suite.pg.query('ALTER DATABASE restarted SET synchronous_commit = on');
    const stack = await startStack({
      server: suite.server,
      users: syntheticUsers(MEMBERS, SEED),
      worker: false,
      env: { CHANNEL_RATE_LIMIT: RATE_LIMIT, BACKFILL_STORE: 'postgres', BACKFILL_DATABASE_URL: url },
    });
    const worker: WorkerProcess = workerProcess({ env: stack.env, logFile: path.join(suite.dir, 'restart.log') });
    try {
      await worker.start();
      const workflowId = 'backfill-pg-restart';
      const input: BackfillInput = {
        source: { type: 'csv', path: suite.csv },
        batchSize: 50,
        batchHeartbeatSeconds: 3,
      };
      const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId,
        args: [input],
      });
      const auditPath = await auditPathOf(handle);
      await waitFor(
        'work under way',
        async () => ((await auditOf(url, auditPath)).length >= 200 ? true : undefined),
        90_000,
      );
      const beforeRestart = (await auditOf(url, auditPath)).length;
      await suite.pg.restart();
      expect(beforeRestart).toBeLessThan(MEMBERS);
      expect((await handle.describe()).status.name).toBe('RUNNING');
      const afterRestart = (await auditOf(url, auditPath)).length;

      const result = (await handle.result()) as BackfillResult;
      expectExact(result, await auditOf(url, auditPath), stack, workflowId);
      console.log(
        `pg-restart: PostgreSQL crashed at ${beforeRestart}/${MEMBERS} audit entries and was back at ${afterRestart}; run ended exact`,
      );
    } finally {
      await worker.stop();
      await stack.close();
    }
  }, 240_000);
});
