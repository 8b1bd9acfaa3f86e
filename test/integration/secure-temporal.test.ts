import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DevServer } from '../../dev/temporal-cli';
import type { BackfillResult } from '../../workflows/definitions';
import { runProcess, type ProcessResult } from '../support/child-process';
import { EXAMPLE_CSV, loadExamples } from '../support/examples';
import { startStack, startTestServer, type Stack } from '../support/stack';
import {
  makeTestCerts,
  startApiKeyFront,
  startMtlsFront,
  type ApiKeyFront,
  type MtlsFront,
  type TestCerts,
} from '../support/tls-fronts';
import { workerProcess, type WorkerProcess } from '../support/worker-process';

// The worker (`npm run worker`) and `webhook-backfill` against a secured Temporal, configured only by the
// Temporal CLI's standard variables: a mutual-TLS front and an API-key front (test/support/tls-fronts.ts)
// stand before the plain dev server, with certificates made by openssl here. Each run is reached only
// through a front; the fronts count who came through.

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin', 'webhook-backfill.js');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const WORKER_ENTRY = path.join(ROOT, 'src', 'worker.ts');
const API_KEY = 'tk-secure-test-9b41e7c2d0a5f3';
const ROWS = 12;
// The CLI (grpc-js) sends the host of TEMPORAL_ADDRESS as the TLS server name, and Node warns on stderr when
// that is an IP address (RFC 6066). The worker (Rust core) checks the IP against the certificate silently.
const CLI_SERVER_NAME = { TEMPORAL_TLS_SERVER_NAME: 'localhost' };

let server: DevServer;
let stack: Stack;
let tmp: string;
let certs: TestCerts;
let mtls: MtlsFront;
let apiFront: ApiKeyFront;
let csv: string;
const workers: WorkerProcess[] = [];
const outputs: string[] = [];

/** The worker's environment from the stack (Channel Talk, webhook, data dir), with Temporal reached as `temporal` says. */
function workerEnv(taskQueue: string, temporal: Record<string, string>): Record<string, string> {
  const { TEMPORAL_ADDRESS: _direct, ...rest } = stack.env;
  return { ...rest, BACKFILL_TASK_QUEUE: taskQueue, ...temporal };
}

async function cli(args: string[], env: Record<string, string>): Promise<ProcessResult> {
  const r = await runProcess(process.execPath, [BIN, ...args], env, 45_000);
  outputs.push(r.stdout, r.stderr);
  return r;
}

function mtlsEnv(client: string): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: mtls.address,
    TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clients[client]!.cert,
    TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clients[client]!.key,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert,
  };
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'secure-temporal-'));
  let examples;
  [server, examples, certs] = await Promise.all([
    startTestServer(),
    loadExamples(),
    makeTestCerts(path.join(tmp, 'certs'), ['worker', 'cli']),
  ]);
  [mtls, apiFront] = await Promise.all([startMtlsFront(certs, server.port), startApiKeyFront(certs, server.port)]);
  // A small members file: the first rows of the example.
  csv = path.join(tmp, 'members.csv');
  await writeFile(
    csv,
    (await readFile(EXAMPLE_CSV, 'utf8'))
      .split('\n')
      .slice(0, ROWS + 1)
      .join('\n') + '\n',
  );
  // The stack's own client (to read results) talks to the dev server directly; no worker of its own.
  stack = await startStack({ server, users: examples.users, env: { CHANNEL_RATE_LIMIT: '100' }, worker: false });
}, 120_000);

afterAll(async () => {
  for (const w of workers) await w.stop(5_000);
  await stack?.close();
  await Promise.all([mtls?.close(), apiFront?.close()]);
  await server?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('connecting to a secured Temporal with the standard variables', () => {
  it('a certificate path that does not exist: exit 2 and one line naming the variable, before any connection (worker and CLI)', async () => {
    const missing = path.join(tmp, 'no-such-cert.pem');
    const env = { ...mtlsEnv('worker'), TEMPORAL_TLS_CLIENT_CERT_PATH: missing };
    const before = { accepted: mtls.accepted.length, refused: mtls.refused };
    const [worker, status] = await Promise.all([
      runProcess(TSX, [WORKER_ENTRY], workerEnv('secure-bad-path', env), 45_000),
      cli(['status', '--workflow-id', 'any', '--json'], { ...env, BACKFILL_TASK_QUEUE: 'secure-bad-path' }),
    ]);
    expect(worker.code, worker.stdout + worker.stderr).toBe(2);
    expect(worker.stdout).toBe('');
    expect(worker.stderr).toMatch(
      new RegExp(
        `^[^\\n]*TEMPORAL_TLS_CLIENT_CERT_PATH ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read it \\(ENOENT\\)\\n$`,
      ),
    );
    expect(status.code, status.stderr).toBe(2);
    expect(status.stdout).toBe('');
    expect(status.stderr).toMatch(
      /^webhook-backfill: [^\n]*TEMPORAL_TLS_CLIENT_CERT_PATH [^\n]*no-such-cert\.pem: cannot read it \(ENOENT\)\n$/,
    );
    // Neither got as far as a TLS handshake with the front.
    expect({ accepted: mtls.accepted.length, refused: mtls.refused }).toEqual(before);
  }, 60_000);

  it('mutual TLS: the worker completes a backfill and the CLI starts and reads it, both only through the front; no certificate, no entry', async () => {
    const taskQueue = 'secure-mtls';
    const worker = workerProcess({
      env: workerEnv(taskQueue, mtlsEnv('worker')),
      logFile: path.join(tmp, 'worker-mtls.log'),
    });
    workers.push(worker);
    await worker.start();
    const byWorker = mtls.accepted.filter((cn) => cn === 'worker').length;
    expect(byWorker).toBeGreaterThan(0);

    const cliEnv = { ...mtlsEnv('cli'), ...CLI_SERVER_NAME, BACKFILL_TASK_QUEUE: taskQueue };
    const id = 'secure-mtls-run';
    const started = await cli(['start', '--source', csv, '--workflow-id', id], cliEnv);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stderr).toBe('');
    expect(started.stdout).toMatch(new RegExp(`^started ${id} `));
    const result = (await stack.client.workflow.getHandle(id).result()) as BackfillResult;
    expect(result.processed).toBe(ROWS);

    const status = await cli(['status', '--workflow-id', id, '--json'], cliEnv);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stderr).toBe('');
    expect(JSON.parse(status.stdout)).toMatchObject({ workflowId: id, status: 'COMPLETED', processed: ROWS });
    const byCli = mtls.accepted.filter((cn) => cn === 'cli').length;
    expect(byCli).toBeGreaterThanOrEqual(2); // start and status, a connection each

    // The same CLI with the CA but without a client certificate: the front refuses the handshake.
    const refusedBefore = mtls.refused;
    const noCert: Record<string, string> = { ...cliEnv };
    delete noCert.TEMPORAL_TLS_CLIENT_CERT_PATH;
    delete noCert.TEMPORAL_TLS_CLIENT_KEY_PATH;
    const anonymous = await cli(['status', '--workflow-id', id, '--json'], noCert);
    expect(anonymous.code, anonymous.stdout).toBe(1);
    expect(anonymous.stderr).toMatch(/^webhook-backfill: cannot reach Temporal at 127\.0\.0\.1:\d+: [^\n]+\n$/);
    expect(mtls.refused).toBeGreaterThan(refusedBefore);
    expect(mtls.accepted.filter((cn) => cn !== 'worker' && cn !== 'cli')).toEqual([]);

    console.log(
      `mTLS front ${mtls.address}: accepted ${mtls.accepted.length} connections (worker certificate ${byWorker} by start-up,` +
        ` ${mtls.accepted.filter((cn) => cn === 'worker').length} in all; CLI certificate ${byCli}), refused ${mtls.refused} handshakes (no client certificate)`,
    );
    await worker.stop();
  }, 120_000);

  it('API key: every call of the worker and the CLI carries "authorization: Bearer <key>" over TLS; the key is in no output', async () => {
    const taskQueue = 'secure-api-key';
    const temporal = {
      TEMPORAL_ADDRESS: apiFront.address,
      TEMPORAL_API_KEY: API_KEY,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert,
    };
    const worker = workerProcess({
      env: workerEnv(taskQueue, temporal),
      logFile: path.join(tmp, 'worker-api-key.log'),
    });
    workers.push(worker);
    await worker.start();
    const byWorker = apiFront.requests.length;
    expect(byWorker).toBeGreaterThan(0);

    const cliEnv = { ...temporal, ...CLI_SERVER_NAME, BACKFILL_TASK_QUEUE: taskQueue };
    const id = 'secure-api-key-run';
    const started = await cli(['start', '--source', csv, '--workflow-id', id], cliEnv);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stderr).toBe('');
    expect(((await stack.client.workflow.getHandle(id).result()) as BackfillResult).processed).toBe(ROWS);
    const status = await cli(['status', '--workflow-id', id, '--json'], cliEnv);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stderr).toBe('');
    expect(JSON.parse(status.stdout)).toMatchObject({ workflowId: id, status: 'COMPLETED', processed: ROWS });
    await worker.stop();

    const requests = [...apiFront.requests];
    // The worker's calls (Rust core) and the CLI's (grpc-js) tell themselves apart by user agent.
    const agentOf = (r: { userAgent: string | undefined }) => (r.userAgent ?? '?').split('/')[0]!;
    const perAgent = new Map<string, number>();
    for (const r of requests) perAgent.set(agentOf(r), (perAgent.get(agentOf(r)) ?? 0) + 1);
    expect([...perAgent.keys()].sort()).toEqual(['grpc-node-js', 'tonic']);
    const agents = [...perAgent].map(([agent, n]) => `${agent} ${n}`);
    expect(requests.filter((r) => r.authorization !== `Bearer ${API_KEY}`)).toEqual([]);
    expect(requests.some((r) => r.path.endsWith('/StartWorkflowExecution'))).toBe(true);
    expect(requests.some((r) => r.path.endsWith('/PollWorkflowTaskQueue'))).toBe(true);
    expect(requests.some((r) => r.path.endsWith('/RespondActivityTaskCompleted'))).toBe(true);

    const workerLog = await worker.log();
    expect(workerLog).toMatch(/TEMPORAL_API_KEY[^\n]*\(set\)/);
    for (const text of [workerLog, ...outputs]) expect(text).not.toContain(API_KEY);
    console.log(
      `API-key front ${apiFront.address}: ${requests.length} gRPC calls, all with the bearer key (${byWorker} by the worker's start-up); calls per user agent (tonic: the worker, grpc-node-js: the CLI): ${agents.join(', ')}`,
    );
  }, 120_000);
});
