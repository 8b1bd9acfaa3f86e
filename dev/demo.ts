// `npm run demo`: the whole repair on this machine, against a Channel Talk simulator and a webhook
// receiver seeded from examples/, on a real Temporal dev server with its Web UI.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { codecFromEnvValues } from '../src/codec/aes-gcm-codec';
import { loadConfig } from '../src/config';
import { main as cli } from '../src/cli/main';
import { ProgressOutput, RateMeter, renderProgress } from '../src/cli/progress-bar';
import { verifyCountersOf } from '../src/domain/verdicts';
import { CustomerRows, customerWrites } from './customer-database';
import { loadChannelUsers, startChannelSimulator, type ChannelFault } from './simulator/channel-simulator';
import { startWebhookReceiver, type ReceiverBehaviour } from './simulator/webhook-receiver';
import { findTemporalCli, isListening, startDevServer } from './temporal-cli';
import { createBackfillWorker } from '../src/worker-setup';
import { progressQuery, WORKFLOW_TYPE, type BackfillResult, type Progress } from '../workflows/definitions';

const EXAMPLES = path.resolve(__dirname, '..', 'examples');
const DEMO_KEY = 'demo-access-key';
const DEMO_SECRET = 'demo-access-secret';
const DEMO_TOKEN = 'demo-webhook-token';

interface ExpectedCounts {
  rows: number;
  upserts: number;
  deletes: number;
  unchanged: number;
  failed: number;
  skipped: number;
}

const args = new Set(process.argv.slice(2));
// Interactive users get to browse the Web UI afterwards; scripts and CI get an exit code.
const keepRunning = args.has('--keep') || (!args.has('--exit') && process.stdin.isTTY === true);

async function main(): Promise<number> {
  // The demo narrates; the SDK's own chatter would drown it. Warnings and errors still show.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const cleanups: (() => Promise<unknown>)[] = [];
  const shutdown = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.log('\nshutting down...');
      void shutdown().then(() => process.exit(130));
    });
  }

  try {
    // 1. Temporal: reuse a server on 7233, else start the CLI's dev server, else let the SDK download one.
    let address = '127.0.0.1:7233';
    let uiUrl: string | undefined = 'http://localhost:8233';
    if (await isListening(7233)) {
      console.log(`Temporal: reusing the server already listening on ${address} (Web UI assumed at ${uiUrl})`);
    } else {
      const cli = findTemporalCli({ build: true, log: (l) => console.log(l) });
      if (cli) {
        console.log(`Temporal CLI: ${cli.path} (${cli.how})`);
        const ui = (await isListening(8233)) ? undefined : 8233;
        const logFile = path.resolve('backfill-data', 'temporal-dev-server.log');
        await mkdir(path.dirname(logFile), { recursive: true });
        const server = await startDevServer({ cli: cli.path, port: 7233, uiPort: ui, logFile });
        cleanups.push(() => server.stop());
        address = server.address;
        uiUrl = server.uiUrl;
        console.log(`Temporal dev server: ${address}, Web UI ${uiUrl}`);
      } else {
        console.log('Temporal CLI: not found and not buildable here; letting the SDK download a dev server');
        const env = await TestWorkflowEnvironment.createLocal();
        cleanups.push(() => env.teardown());
        address = env.connection.options.address;
        uiUrl = undefined;
      }
    }

    // 2. The simulated Channel Talk API and the customer's webhook endpoint, seeded from examples/.
    const faults = JSON.parse(await readFile(path.join(EXAMPLES, 'faults.json'), 'utf8')) as {
      channel: Record<string, ChannelFault>;
      receiver: Record<string, ReceiverBehaviour>;
    };
    const expected = (
      JSON.parse(await readFile(path.join(EXAMPLES, 'expected.json'), 'utf8')) as { counts: ExpectedCounts }
    ).counts;
    const simulator = await startChannelSimulator({
      users: await loadChannelUsers(path.join(EXAMPLES, 'channel-users.json')),
      accessKey: DEMO_KEY,
      accessSecret: DEMO_SECRET,
      faults: faults.channel,
    });
    cleanups.push(() => simulator.close());
    const receiver = await startWebhookReceiver({ behaviours: faults.receiver });
    cleanups.push(() => receiver.close());
    console.log(`Channel Talk simulator: ${simulator.url}\nwebhook receiver: ${receiver.url}`);

    // 3. A worker configured exactly as in production, only pointed at the local stand-ins.
    const config = loadConfig({
      ...process.env,
      CHANNEL_API_URL: simulator.url,
      CHANNEL_ACCESS_KEY: DEMO_KEY,
      CHANNEL_ACCESS_SECRET: DEMO_SECRET,
      WEBHOOK_URL: receiver.url,
      WEBHOOK_TOKEN: DEMO_TOKEN,
      TEMPORAL_ADDRESS: address,
      CHANNEL_RATE_LIMIT: process.env.CHANNEL_RATE_LIMIT ?? '100',
    });
    const worker = await createBackfillWorker(config);
    const running = worker.run();
    cleanups.push(() => worker.close());

    // 4. Start the backfill as `temporal workflow start` would, and watch it.
    const connection = await Connection.connect(config.temporal.options);
    cleanups.push(() => connection.close());
    const codec = codecFromEnvValues(config);
    const client = new Client({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      ...(codec ? { dataConverter: { payloadCodecs: [codec] } } : {}),
    });
    const workflowId = `backfill-demo-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    const source = { type: 'csv' as const, path: path.join(EXAMPLES, 'members.csv') };
    const handle = await client.workflow.start(WORKFLOW_TYPE, {
      taskQueue: config.BACKFILL_TASK_QUEUE,
      workflowId,
      args: [{ source, batchSize: 25 }],
    });
    const link = uiUrl
      ? `${uiUrl}/namespaces/${config.TEMPORAL_NAMESPACE}/workflows/${encodeURIComponent(workflowId)}`
      : '(no Web UI)';
    console.log(`started ${workflowId}\n  Web UI: ${link}`);

    const result = await withProgress(handle);

    console.log('\nSummary');
    console.table({
      processed: result.processed,
      upserts: result.upserts,
      deletes: result.deletes,
      unchanged: result.unchanged,
      failed: result.failed,
      skipped: result.skipped,
    });
    console.log(`deliveries accepted by the receiver: ${receiver.accepted().length}`);
    console.log(`audit log: ${result.auditPath}`);
    console.log(`Web UI: ${link}`);
    const matches =
      result.processed === expected.rows &&
      result.upserts === expected.upserts &&
      result.deletes === expected.deletes &&
      result.unchanged === expected.unchanged &&
      result.failed === expected.failed &&
      result.skipped === expected.skipped;
    console.log(
      matches
        ? 'counts match examples/expected.json'
        : `counts DIFFER from examples/expected.json: ${JSON.stringify(expected)}`,
    );

    // 5. Prove it: the customer's logic applies what the receiver accepted to its copy of examples/members.csv,
    // the customer exports it again, and a verify run (a dry run over that export, restricted to the replayed
    // members) looks each one up again. Every delivered replay must now agree with Channel Talk.
    console.log('\nProve it: re-check the replayed members against a fresh export of the customer data');
    const db = await CustomerRows.fromCsv(source.path);
    db.apply(customerWrites(receiver.accepted()));
    const exported = path.join(path.dirname(result.auditPath), 'customer-export-after-repair.csv');
    await db.exportCsv(exported);
    const verifyId = `${workflowId}-verify`;
    const verifyHandle = await client.workflow.start(WORKFLOW_TYPE, {
      taskQueue: config.BACKFILL_TASK_QUEUE,
      workflowId: verifyId,
      args: [{ source: { type: 'csv', path: exported }, verifyAfter: { auditPath: result.auditPath }, batchSize: 25 }],
    });
    const verified = (await verifyHandle.result()) as BackfillResult;
    // The report a user gets from `webhook-backfill report --audit FILE` (or --workflow-id).
    await cli(['report', '--audit', verified.auditPath]);
    // The page to hand on: the repair and its proof in one self-contained HTML file.
    const htmlReport = path.join(path.dirname(result.auditPath), 'repair-report.html');
    const htmlWritten = await cli([
      ...['report', '--audit', result.auditPath, '--format', 'html'],
      ...['--out', htmlReport, '--verify', verified.auditPath],
    ]);
    if (htmlWritten === 0) console.log(`HTML report: ${htmlReport}`);
    const verdicts = verified.verify ?? verifyCountersOf(verified).verdicts;
    const replayed = result.upserts + result.deletes;
    const repaired = verdicts.repaired === replayed && verified.processed === replayed;
    console.log(
      repaired
        ? `every replayed member is repaired (${verdicts.repaired} of ${replayed})`
        : `NOT every replayed member is repaired: ${JSON.stringify(verdicts)} of ${replayed} replayed`,
    );

    if (keepRunning) {
      console.log('\neverything stays up so you can browse the Web UI; Ctrl-C shuts it all down');
      await running;
    }
    await shutdown();
    return matches && repaired ? 0 : 1;
  } catch (err) {
    await shutdown();
    throw err;
  }
}

/**
 * The run's progress while it goes: redrawn in place on a terminal; written to a file, a CI log or `docker logs`, a
 * plain stamped line every few seconds instead of hundreds of carriage-return updates on one line.
 */
async function withProgress(handle: WorkflowHandle): Promise<BackfillResult> {
  const tty = process.stdout.isTTY === true;
  const output = new ProgressOutput({
    tty,
    ...(process.stdout.columns !== undefined ? { columns: process.stdout.columns } : {}),
    stamp: (at) => new Date(at).toISOString(),
  });
  const meter = new RateMeter();
  const line = (p: Progress) => `  ${renderProgress(p, { rate: meter.rate(), barWidth: tty ? 24 : 20, unicode: tty })}`;
  const ticker = setInterval(() => {
    handle
      .query(progressQuery)
      .then((p: Progress) => {
        meter.sample(Date.now(), p.processed, p.paused);
        process.stdout.write(output.update(line(p), Date.now()));
      })
      .catch(() => undefined);
  }, 500);
  try {
    const result = (await handle.result()) as BackfillResult;
    clearInterval(ticker);
    const final = await handle.query(progressQuery).catch(() => undefined);
    process.stdout.write(final ? output.update(line(final), Date.now(), true) : output.end());
    return result;
  } finally {
    clearInterval(ticker);
    process.stdout.write(output.end());
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
