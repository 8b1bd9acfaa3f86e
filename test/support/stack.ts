import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, type DataConverter, type WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { codecFromEnvValues } from '../../src/codec/aes-gcm-codec';
import { loadConfig, type Config } from '../../src/config';
import type { LoggedEntry } from '../../src/audit/audit-entry';
import { parseAuditHeaderLine, type AuditHeader } from '../../src/audit/audit-header';
import { parseRunWaitLine, type RunWait } from '../../src/audit/run-wait';
import {
  startChannelSimulator,
  type ChannelFault,
  type ChannelSimulator,
  type ChannelSimulatorOptions,
} from '../../dev/simulator/channel-simulator';
import {
  startWebhookReceiver,
  type ReceiverBehaviour,
  type WebhookReceiver,
} from '../../dev/simulator/webhook-receiver';
import { findTemporalCli, startDevServer, type DevServer } from '../../dev/temporal-cli';
import type { ChannelUser } from '../../src/domain/types';
import { createBackfillWorker, type BackfillWorker } from '../../src/worker-setup';
import { WORKFLOW_TYPE, type BackfillInput, type BackfillResult } from '../../workflows/definitions';
import { EXAMPLE_CSV } from './examples';
import { workflowBundle } from './workflow-bundle';

export { workflowBundle };

export const ACCESS_KEY = 'test-access-key-7f3a';
export const ACCESS_SECRET = 'test-access-secret-91c2';
export const WEBHOOK_TOKEN = 'test-webhook-token-5d8e';

// Workers in tests log warnings and errors only; the assertions say what happened.
Runtime.install({ logger: new DefaultLogger('WARN') });

/** A real Temporal dev server. Never skipped: without a CLI the tests fail loudly. */
export async function startTestServer(o: { dbFile?: string; headless?: boolean } = {}): Promise<DevServer> {
  const cli = findTemporalCli({ build: true, log: (l) => console.log(l) });
  if (!cli) throw new Error('no Temporal CLI: set TEMPORAL_CLI or install Go so the tests can build it (see README)');
  return startDevServer({ cli: cli.path, headless: o.headless ?? true, dbFile: o.dbFile });
}

export async function connectClient(
  address: string,
  dataConverter?: DataConverter,
): Promise<{ client: Client; connection: Connection }> {
  // 90 s, within the files' 180 s hook timeout: a dev server started while both cores were busy once took more
  // than 30 s to answer (CI on a fresh clone, session 15); a healthy one answers in well under a second.
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      const connection = await Connection.connect({ address });
      const client = new Client({ connection, ...(dataConverter ? { dataConverter } : {}) });
      await client.workflowService.describeNamespace({ namespace: 'default' });
      return { client, connection };
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

export interface StackOptions {
  server: DevServer;
  users: ChannelUser[];
  channelFaults?: Record<string, ChannelFault>;
  receiverBehaviours?: Record<string, ReceiverBehaviour>;
  simulatorRateLimit?: number;
  /** false: the simulator's 429s carry only x-ratelimit-* headers, no Retry-After. */
  simulatorRetryAfter?: boolean;
  /** Any other simulator option (a bucket with its own burst, the grace period, production's credentials). */
  simulator?: Partial<Omit<ChannelSimulatorOptions, 'users' | 'accessKey' | 'accessSecret'>>;
  env?: Record<string, string>;
  taskQueue?: string;
  /** false: start the worker yourself (e.g. as a child process). */
  worker?: boolean;
}

export interface Stack {
  client: Client;
  simulator: ChannelSimulator;
  receiver: WebhookReceiver;
  config: Config;
  env: Record<string, string>;
  dataDir: string;
  worker: BackfillWorker | undefined;
  close(): Promise<void>;
}

export async function startStack(o: StackOptions): Promise<Stack> {
  const simulator = await startChannelSimulator({
    users: o.users,
    accessKey: ACCESS_KEY,
    accessSecret: ACCESS_SECRET,
    faults: o.channelFaults,
    ...(o.simulatorRateLimit ? { rateLimit: { perSecond: o.simulatorRateLimit } } : {}),
    ...(o.simulatorRetryAfter === false ? { retryAfter: false } : {}),
    ...o.simulator,
  });
  const receiver = await startWebhookReceiver({ behaviours: o.receiverBehaviours });
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'backfill-test-'));
  const env: Record<string, string> = {
    CHANNEL_API_URL: simulator.url,
    CHANNEL_ACCESS_KEY: ACCESS_KEY,
    CHANNEL_ACCESS_SECRET: ACCESS_SECRET,
    WEBHOOK_URL: receiver.url,
    WEBHOOK_TOKEN,
    TEMPORAL_ADDRESS: o.server.address,
    BACKFILL_TASK_QUEUE: o.taskQueue ?? `backfill-${Math.random().toString(36).slice(2)}`,
    BACKFILL_DATA_DIR: dataDir,
    // A lookup the simulator fails (the examples' 5xx, resets, unreadable bodies) is tried again after 20 ms, 40 ms,
    // ... instead of the product's 200 ms, 400 ms, ...: the same attempts, without batches waiting seconds on them.
    CHANNEL_RETRY_BACKOFF_MS: '20',
    ...o.env,
  };
  const config = loadConfig(env);
  // With BACKFILL_CODEC_KEY in the env, the client encrypts and decrypts payloads as the worker does.
  const codec = codecFromEnvValues(config);
  const { client, connection } = await connectClient(o.server.address, codec ? { payloadCodecs: [codec] } : undefined);
  let worker: BackfillWorker | undefined;
  if (o.worker !== false) {
    worker = await createBackfillWorker(config, { workflowBundle: await workflowBundle() });
    void worker.run();
  }
  return {
    client,
    simulator,
    receiver,
    config,
    env,
    dataDir,
    worker,
    async close() {
      await worker?.close();
      await connection.close();
      await Promise.all([simulator.close(), receiver.close()]);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Starts a backfill over the examples' CSV in batches of 50 (`input` overrides) and waits for its result. */
export async function runBackfill(
  stack: Stack,
  workflowId: string,
  input: Partial<BackfillInput>,
): Promise<BackfillResult> {
  const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
    taskQueue: stack.config.BACKFILL_TASK_QUEUE,
    workflowId,
    args: [{ source: { type: 'csv', path: EXAMPLE_CSV }, batchSize: 50, ...input }],
  });
  return (await handle.result()) as BackfillResult;
}

/** The records of a JSONL audit log, its header (the first line, when there is one) left out. */
/** The records of a JSONL audit log, without its header and its waits (readAuditWaits). */
export async function readAudit(file: string): Promise<LoggedEntry[]> {
  const text = await readFile(file, 'utf8');
  return text
    .split('\n')
    .filter((l, i) => l.trim() !== '' && !(i === 0 && parseAuditHeaderLine(l)) && !parseRunWaitLine(l))
    .map((l) => JSON.parse(l) as LoggedEntry);
}

/** The waits recorded in a JSONL audit log (src/audit/run-wait.ts), in file order. */
export async function readAuditWaits(file: string): Promise<RunWait[]> {
  const text = await readFile(file, 'utf8');
  return text.split('\n').flatMap((l) => parseRunWaitLine(l) ?? []);
}

/** The header of a JSONL audit log: its first line, which must be one. */
export async function readAuditHeader(file: string): Promise<AuditHeader> {
  const first = (await readFile(file, 'utf8')).split('\n')[0]!;
  const header = parseAuditHeaderLine(first);
  if (!header) throw new Error(`the first line of ${file} is no audit header: ${first.slice(0, 80)}`);
  return header;
}

/** Seconds of a protobuf Duration as the client returns it (seconds may be a Long). */
const durationSeconds = (d: { seconds?: unknown } | null | undefined): number | undefined =>
  d?.seconds === undefined || d.seconds === null ? undefined : Number(d.seconds);

/**
 * How the run scheduled an activity (e.g. `processBatch`, `replayDeferred`), read from its history: the attempt
 * timeout and longest backoff of the first one scheduled, and the highest attempt any of them started. Undefined
 * when none was scheduled.
 */
export async function activitySchedule(
  handle: WorkflowHandle,
  activityType: string,
): Promise<{ startToCloseSeconds?: number; maxBackoffSeconds?: number; maxAttempt: number } | undefined> {
  const events = (await handle.fetchHistory()).events ?? [];
  const ofType = new Set<string>();
  let schedule: { startToCloseSeconds?: number; maxBackoffSeconds?: number; maxAttempt: number } | undefined;
  for (const event of events) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name === activityType) {
      ofType.add(String(event.eventId));
      schedule ??= {
        startToCloseSeconds: durationSeconds(scheduled.startToCloseTimeout),
        maxBackoffSeconds: durationSeconds(scheduled.retryPolicy?.maximumInterval),
        maxAttempt: 0,
      };
    }
    const started = event.activityTaskStartedEventAttributes;
    if (schedule && started && ofType.has(String(started.scheduledEventId)))
      schedule.maxAttempt = Math.max(schedule.maxAttempt, started.attempt ?? 1);
  }
  return schedule;
}

export async function waitFor<T>(
  what: string | (() => string),
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    // A function names it at the time out, with what was seen by then (a process's output so far).
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
