// Records the histories the replay test checks new workflow code against: test/histories/backfill-1.0-* were
// recorded by release 1.0. Run it when the workflow's behaviour changes on purpose (under patched(), and keep the old
// files: running workflows still have those histories):
//   npx tsx test/support/save-history.ts test/histories/<name>
// `--guard` records a run the delete guard pauses (thresholds the examples' 15% deletes pass), resumed plainly
// (stays paused), then with {"confirmDeletes": true}:
//   npx tsx test/support/save-history.ts test/histories/<name> --guard
// `--verify` records a verify run (input `verifyAfter`) of a repair over the examples, paused and resumed:
//   npx tsx test/support/save-history.ts test/histories/<name> --verify
// `--recheck` records a run whose waiting replays are looked up again (issue 23): the members the receiver refuses
// at first are deleted on Channel Talk's side right after their lookup, so their replays end as fresh deletes:
//   npx tsx test/support/save-history.ts test/histories/<name> --recheck
// `--outage` records a run whose receiver stops mid-run (issue 28): batches stop, replays report it, one probes;
// past a 4 s receiverOutagePauseSeconds the run pauses itself; the receiver comes back and a resume finishes it:
//   npx tsx test/support/save-history.ts test/histories/<name> --outage
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CustomerRows, customerWrites } from '../../dev/customer-database';
import { pauseUpdate, progressQuery, resumeSignal, WORKFLOW_TYPE } from '../../workflows/definitions';
import { EXAMPLE_CSV, loadExamples } from './examples';
import { runBackfill, startStack, startTestServer, waitFor } from './stack';

async function main(prefix: string, guard: boolean, verify: boolean, recheck: boolean, outage: boolean): Promise<void> {
  const server = await startTestServer();
  const examples = await loadExamples();
  const stack = await startStack({
    server,
    users: examples.users,
    channelFaults: examples.faults.channel,
    receiverBehaviours: examples.faults.receiver,
    env: { CHANNEL_RATE_LIMIT: '100', ...(recheck ? { REPLAY_RECHECK_AFTER_MS: '1' } : {}) },
  });
  try {
    if (recheck) {
      const refused = Object.keys(examples.faults.receiver ?? {});
      stack.simulator.setChanges(Object.fromEntries(refused.map((m) => [m, { afterMs: 50, user: null }])));
    }
    const workflowId = 'history-sample';
    // A verify run checks a repair over an export its simulated customer wrote.
    let source = { type: 'csv', path: EXAMPLE_CSV };
    let verifyAfter: { auditPath: string } | undefined;
    if (verify) {
      const repair = await runBackfill(stack, 'history-sample-repair', {});
      const db = await CustomerRows.fromCsv(EXAMPLE_CSV);
      db.apply(customerWrites(stack.receiver.accepted()));
      source = { type: 'csv', path: path.join(stack.dataDir, 'export.csv') };
      await db.exportCsv(source.path);
      verifyAfter = { auditPath: repair.auditPath };
    }
    const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
      taskQueue: stack.config.BACKFILL_TASK_QUEUE,
      workflowId,
      args: [
        {
          source,
          batchSize: 5,
          maxHistoryEvents: 200,
          ...(guard ? { maxDeleteShare: 0.05, deleteGuardMinDecisions: 20 } : {}),
          ...(verifyAfter ? { verifyAfter } : {}),
          ...(outage ? { receiverOutagePauseSeconds: 4 } : {}),
        },
      ],
    });
    if (outage) {
      await waitFor('progress', async () => ((await handle.query(progressQuery)).processed >= 30 ? true : undefined));
      await stack.receiver.stop();
      await waitFor(
        'paused by the receiver outage',
        async () =>
          (await handle.query(progressQuery)).pauseReason?.startsWith('receiver unavailable') ? true : undefined,
        60_000,
      );
      await stack.receiver.start();
      await handle.signal(resumeSignal);
    } else if (guard) {
      await waitFor('paused by the delete guard', async () =>
        (await handle.query(progressQuery)).pauseReason?.startsWith('delete guard:') ? true : undefined,
      );
      await handle.signal(resumeSignal);
      await new Promise((r) => setTimeout(r, 1_500));
      await handle.signal(resumeSignal, { confirmDeletes: true });
    } else {
      await waitFor('progress', async () => ((await handle.query(progressQuery)).processed >= 30 ? true : undefined));
      // Pause by update (answered), resume by signal: both kinds of handler are in the history.
      await handle.executeUpdate(pauseUpdate, { args: ['sample pause'] });
      await new Promise((r) => setTimeout(r, 1_500));
      await handle.signal(resumeSignal);
    }
    const result = (await handle.result()) as { runs: number };
    // Visibility is eventually consistent: wait until it lists every run of the chain.
    const runs = await waitFor('every run listed', async () => {
      const listed: string[] = [];
      for await (const run of stack.client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
        listed.push(run.runId);
      return listed.length === result.runs ? listed.reverse() : undefined;
    });
    let n = 0;
    for (const runId of runs) {
      const run = { runId };
      const history = await stack.client.workflow.getHandle(workflowId, run.runId).fetchHistory();
      const file = `${prefix}-run${++n}.json`;
      await writeFile(file, JSON.stringify(history));
      console.log(`saved ${file} (${history.events?.length} events)`);
    }
  } finally {
    await stack.close();
    await server.stop();
  }
}

main(
  process.argv[2] ?? 'test/histories/backfill-1.0',
  process.argv.includes('--guard'),
  process.argv.includes('--verify'),
  process.argv.includes('--recheck'),
  process.argv.includes('--outage'),
).catch((err) => {
  console.error(err);
  process.exit(1);
});
