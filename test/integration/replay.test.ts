import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';

// Histories recorded by released versions of the workflow (test/support/save-history.ts; stop30-* by the release
// before 1.0, 7d02edd; backfill-1.0-* by 1.0 as it landed, d7a2c83, untouched since; stop32-* by c209684, the
// version landed before the replay heartbeat and the search-attribute patch; prepare-overlap-* by the code
// that added patch prepare-overlap-v1; search-attributes-known-total-run1 by the code that added patch
// search-attributes-known-total-v1, from workflow-stubs.test.ts's run whose source is read beside ten batches, the
// history of its "no progress-only search-attribute upsert" case). If a change to workflows/ would break runs
// already in flight (non-determinism), replaying them fails here: such a change goes under patched()
// (docs/development.md).
const dir = path.resolve(__dirname, '../histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('replay of saved histories', () => {
  it('has histories to replay, including a pause, a resume and a continue-as-new', () => {
    expect(files.length).toBeGreaterThan(0);
    const all = files.map((f) => readFileSync(path.join(dir, f), 'utf8')).join('\n');
    expect(all).toContain('EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW');
    expect(all).toContain('EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED');
  });

  it('covers every feature path: pause by update, guard confirmed by signal, cleanup, verify, re-check, outage', () => {
    const events = files.flatMap(
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- raw history JSON, probed with optional chaining
      (f) => (JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { events: Record<string, any>[] }).events,
    );
    const decoded = (payloads: { data?: string }[] | undefined) =>
      (payloads ?? []).map((p) => Buffer.from(p.data ?? '', 'base64').toString());
    const updates = events.flatMap((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input);
    expect(updates.map((u) => u?.name)).toContain('pause');
    const activityTypes = new Set(events.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name));
    for (const type of [
      'prepareBackfill',
      'processBatch',
      'verifyBatch',
      'replayDeferred',
      'recordWait',
      'cleanupBackfill',
    ])
      expect(activityTypes).toContain(type);
    const signals = events.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'resume');
    expect(signals.flatMap((e) => decoded(e.workflowExecutionSignaledEventAttributes.input?.payloads))).toContain(
      '{"confirmDeletes":true}',
    );
    expect(events.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'cleanupBackfill')).toBe(
      true,
    );
  });

  it.each(files)('%s replays with the current workflow code', async (file) => {
    const history = temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
    await expect(
      Worker.runReplayHistory({ workflowsPath: path.resolve(__dirname, '../../workflows/index.ts') }, history, file),
    ).resolves.toBeUndefined();
  });
});
