// Issue 22: continuation state never comes from a client (workflows/carried-origin.ts), and whatever paths reach a
// batch, replay or cleanup, nothing outside the workflow's own storage is opened, written or removed
// (src/store/data-dir.ts runPathsProblem, checked by every such activity in activities/index.ts).
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { createFilePendingStore } from '../../src/audit/pending-store';
import { createFileAuditStore } from '../../src/audit/audit-store';
import { loadConfig } from '../../src/config';
import { runDataDir, runFiles, runPathsProblem } from '../../src/store/data-dir';
import { createFileWorkStore } from '../../src/store/work-store';
import { CARRIED_FROM_CLIENT, refuseCarried, type RunOrigin } from '../../workflows/carried-origin';

describe('refuseCarried: only the run\'s own continue-as-new may hand it "carried"', () => {
  const continued: RunOrigin = { continuedFromExecutionRunId: 'r0', attempt: 1 };
  it.each<[string, boolean, RunOrigin, string | null]>([
    ['a first run without carried', false, { attempt: 1 }, null],
    ['a continue-as-new with carried', true, continued, null],
    ['a continue-as-new without carried (never written so, harmless)', false, continued, null],
    ['a client start with carried', true, { attempt: 1 }, CARRIED_FROM_CLIENT],
    [
      'a workflow retry of a client start (previous run id, same input)',
      true,
      { ...continued, attempt: 2 },
      CARRIED_FROM_CLIENT,
    ],
    [
      'a cron run (previous run id, same input)',
      true,
      { ...continued, cronSchedule: '* * * * *' },
      CARRIED_FROM_CLIENT,
    ],
  ])('%s', (_name, hasCarried, origin, expected) => {
    expect(refuseCarried(hasCarried, origin)).toBe(expected);
  });
});

let root: string;
let dataDir: string;
let outside: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'run-paths-test-'));
  dataDir = path.join(root, 'data');
  outside = path.join(root, 'outside');
  await mkdir(path.join(dataDir, 'wf-1'), { recursive: true });
  await mkdir(outside, { recursive: true });
  await symlink(outside, path.join(dataDir, 'wf-1', 'link'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

const own = () => {
  const dir = runDataDir(dataDir, 'wf-1', 'run-1');
  return { dir, ...runFiles(dir), auditPath: path.join(dir, 'audit.jsonl') };
};

describe('runPathsProblem', () => {
  it.each<[string, () => ReturnType<typeof own>, RegExp | null]>([
    ['the paths the preparation derives', own, null],
    [
      'an auditPath elsewhere under the data dir (a user-chosen one)',
      () => ({ ...own(), auditPath: path.join(dataDir, 'a.jsonl') }),
      null,
    ],
    ['a directory outside the storage', () => ({ ...own(), dir: outside }), /^the run's directory/],
    [
      "another workflow's run",
      () => {
        const dir = runDataDir(dataDir, 'wf-2', 'run-1');
        return { dir, ...runFiles(dir), auditPath: path.join(dir, 'audit.jsonl') };
      },
      /^the run's directory/,
    ],
    [
      "the workflow's own directory itself (every run of it)",
      () => ({ ...own(), dir: path.join(dataDir, 'wf-1', 'run-1', '..') }),
      /^the run's directory/,
    ],
    [
      "a symlink out of the workflow's directory",
      () => {
        const dir = path.join(dataDir, 'wf-1', 'link');
        return { dir, ...runFiles(dir), auditPath: path.join(dataDir, 'a.jsonl') };
      },
      /^the run's directory/,
    ],
    ['a pending directory elsewhere', () => ({ ...own(), pendingDir: outside }), /^pendingDir/],
    [
      'a work file climbing out with ..',
      () => ({ ...own(), workFile: path.join(own().dir, '..', '..', '..', 'outside', 'x') }),
      /^workFile/,
    ],
    ['an audit log outside', () => ({ ...own(), auditPath: path.join(outside, 'audit.jsonl') }), /^auditPath/],
    [
      'an audit log through the symlink',
      () => ({ ...own(), auditPath: path.join(dataDir, 'wf-1', 'link', 'audit.jsonl') }),
      /^auditPath/,
    ],
  ])('%s', (_name, paths, expected) => {
    const problem = runPathsProblem(dataDir, 'wf-1', paths());
    if (expected === null) expect(problem).toBeNull();
    else expect(problem).toMatch(expected);
  });
});

describe("the activities refuse paths outside the workflow's storage before touching them", () => {
  const activities = () =>
    createActivities({
      config: loadConfig({ CHANNEL_ACCESS_KEY: 'k', CHANNEL_ACCESS_SECRET: 's', BACKFILL_DATA_DIR: dataDir }),
      channel: undefined as never, // never reached: the refusal comes first
      target: { send: () => Promise.reject(new Error('never sent')) } as never,
      audit: createFileAuditStore(),
      pending: createFilePendingStore(),
      work: createFileWorkStore(),
    });
  const victim = async () => {
    const dir = await mkdtemp(path.join(outside, 'victim-'));
    await writeFile(path.join(dir, 'canary.txt'), 'x');
    return {
      dir,
      workFile: path.join(dir, 'members.jsonl'),
      pendingDir: dir,
      auditPath: path.join(dir, 'audit.jsonl'),
    };
  };
  const env = () => new MockActivityEnvironment({ workflowExecution: { workflowId: 'wf-1', runId: 'r' } } as never);

  it.each([
    ['cleanupBackfill', (paths: ReturnType<typeof own>) => env().run(activities().cleanupBackfill, { paths })],
    [
      'recordWait',
      (paths: ReturnType<typeof own>) =>
        env().run(activities().recordWait, {
          paths,
          wait: { kind: 'receiver-unavailable' as const, since: 't0', until: 't1', ended: 'answered' as const },
        }),
    ],
    [
      'processBatch',
      (paths: ReturnType<typeof own>) =>
        env().run(activities().processBatch, {
          batch: 0,
          backfill: 'wf-1',
          options: { dryRun: true, target: { type: 'url' } },
          paths,
          share: 1,
        } as never),
    ],
    [
      'verifyBatch',
      (paths: ReturnType<typeof own>) =>
        env().run(activities().verifyBatch, {
          batch: 0,
          backfill: 'wf-1',
          options: { dryRun: true, verifyAfter: { auditPath: '/a' } },
          paths,
          share: 1,
        } as never),
    ],
    [
      'replayDeferred',
      (paths: ReturnType<typeof own>) =>
        env().run(activities().replayDeferred, { backfill: 'wf-1', line: 1, runLabel: 'x', paths, maxAttempts: 3 }),
    ],
  ])('%s: non-retryable, the directory and its canary survive', async (_name, call) => {
    const paths = await victim();
    await expect(call(paths)).rejects.toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(await readdir(paths.dir)).toEqual(['canary.txt']);
  });

  it("cleanupBackfill removes the run's own files", async () => {
    const paths = own();
    await mkdir(paths.pendingDir, { recursive: true });
    await writeFile(path.join(paths.pendingDir, '1.json'), '{}');
    const result = (await env().run(activities().cleanupBackfill, { paths })) as {
      kept: boolean;
      pendingRemoved: number;
    };
    expect(result).toMatchObject({ kept: false, pendingRemoved: 1 });
  });
});
