import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Payload } from '@temporalio/common';
import {
  AesGcmCodec,
  codecFromEnvValues,
  ENCRYPTED_ENCODING,
  payloadToJson,
  type JsonPayload,
} from '../../src/codec/aes-gcm-codec';
import { startCodecServer } from '../../src/codec/codec-server';
import { findTemporalCli, type DevServer } from '../../dev/temporal-cli';
import { WORKFLOW_TYPE, type BackfillInput, type BackfillResult } from '../../workflows/definitions';
import { EXAMPLE_CSV, loadExamples, type Examples } from '../support/examples';
import { connectClient, startStack, startTestServer } from '../support/stack';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');

/** The codec server's CLI entry, `npx tsx src/codec/codec-server-main.ts`, in its own process group. */
async function spawnCodecServer(
  env: Record<string, string>,
  args: string[],
): Promise<{ url: string; child: ChildProcess; output: () => string; stop(): Promise<void> }> {
  const child = spawn('npx', ['tsx', 'src/codec/codec-server-main.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
  };
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`codec server did not start: ${output}`)), 30_000);
    const check = () => {
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', check);
    child.once('close', () => {
      clearTimeout(timer);
      reject(new Error(`codec server exited (${child.exitCode}): ${output}`));
    });
  });
  return { url, child, output: () => output, stop };
}

let server: DevServer;
let examples: Examples;

beforeAll(async () => {
  [server, examples] = await Promise.all([startTestServer(), loadExamples()]);
});
afterAll(async () => {
  await server?.stop();
});

/** Every Payload message anywhere in a (raw) history object. */
// Search attributes are indexed by the server, and a patch marker holds the patch's name (written by the
// SDK core, not the data converter): Temporal never passes them through a codec. They hold statuses,
// counts and a version name only; the scans of the serialised history below still cover them.
const PLAIN_BY_DESIGN = new Set(['searchAttributes', 'patch-data']);

function payloadsIn(value: unknown, out: Payload[] = []): Payload[] {
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return out;
  if (Array.isArray(value)) {
    for (const v of value) payloadsIn(v, out);
    return out;
  }
  const obj = value as Record<string, unknown>;
  if (obj.metadata && typeof obj.metadata === 'object' && ArrayBuffer.isView(obj.data)) out.push(obj as Payload);
  else for (const [key, v] of Object.entries(obj)) if (!PLAIN_BY_DESIGN.has(key)) payloadsIn(v, out);
  return out;
}

const encodingOf = (p: Payload) => Buffer.from(p.metadata?.encoding ?? new Uint8Array(0)).toString('utf8');

describe('payload codec (BACKFILL_CODEC_KEY) on a real Temporal dev server', () => {
  it('a run completes; its raw history shows no readable input; the codec server and the Temporal CLI decode it', async () => {
    const key = randomBytes(32).toString('base64');
    const stack = await startStack({
      server,
      users: examples.users,
      channelFaults: examples.faults.channel,
      receiverBehaviours: examples.faults.receiver,
      env: { BACKFILL_CODEC_KEY: key, BACKFILL_CODEC_KEY_ID: 'codec-test-key' },
    });
    const raw = await connectClient(server.address); // no codec: sees what the server stores
    const codec = codecFromEnvValues(stack.env)!;
    expect(codec.keyId).toBe('codec-test-key');
    let codecServer: Awaited<ReturnType<typeof spawnCodecServer>> | undefined;
    try {
      // The operator's codec server, started from its CLI entry with the workers' key variables.
      codecServer = await spawnCodecServer({ BACKFILL_CODEC_KEY: key, BACKFILL_CODEC_KEY_ID: 'codec-test-key' }, [
        '--port',
        '0',
        '--origin',
        'http://localhost:8233',
      ]);
      const workflowId = 'backfill-codec';
      const input: BackfillInput = {
        source: { type: 'csv', path: EXAMPLE_CSV },
        batchSize: 50,
        runLabel: 'codec-run-label-7c1',
      };
      const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
        taskQueue: stack.config.BACKFILL_TASK_QUEUE,
        workflowId,
        args: [input],
      });

      // The run works end to end with encryption on both sides (the client decodes the result).
      const result = (await handle.result()) as BackfillResult;
      const c = examples.expected.counts;
      expect(result).toMatchObject({
        processed: c.rows,
        upserts: c.upserts,
        deletes: c.deletes,
        unchanged: c.unchanged,
        failed: c.failed,
        skipped: c.skipped,
      });
      expect(stack.receiver.accepted()).toHaveLength(c.upserts + c.deletes);

      // What the server stores: every payload is encrypted with our key id, nothing of the input is readable.
      const rawHandle = raw.client.workflow.getHandle(workflowId);
      const history = await rawHandle.fetchHistory();
      const payloads = payloadsIn(history.events);
      expect(payloads.length).toBeGreaterThan(10); // input, activity inputs/results, heartbeats, result
      const encodings = new Map<string, number>();
      for (const p of payloads) encodings.set(encodingOf(p), (encodings.get(encodingOf(p)) ?? 0) + 1);
      expect([...encodings.keys()]).toEqual([ENCRYPTED_ENCODING]);
      expect(
        payloads.every((p) => Buffer.from(p.metadata!['encryption-key-id']!).toString() === 'codec-test-key'),
      ).toBe(true);
      const serialised = JSON.stringify(history);
      const decodedData = payloads.map((p) => Buffer.from(p.data!).toString('latin1')).join('\n');
      for (const text of [serialised, decodedData]) {
        expect(text).not.toContain(EXAMPLE_CSV);
        expect(text).not.toContain('members.csv');
        expect(text).not.toContain('codec-run-label-7c1');
        expect(text).not.toContain('auditPath');
        expect(text).not.toContain('m-0001');
      }
      // ...and a client without the key cannot read the result.
      await expect(rawHandle.result()).rejects.toThrow(/binary\/encrypted/);

      // The workflow input, taken raw from the first event, decodes through the codec server to the original JSON.
      const started = history.events?.find(
        (e) => e.workflowExecutionStartedEventAttributes,
      )?.workflowExecutionStartedEventAttributes;
      const inputPayload = started?.input?.payloads?.[0];
      expect(inputPayload).toBeDefined();
      const res = await fetch(`${codecServer.url}/decode`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-namespace': 'default', origin: 'http://localhost:8233' },
        body: JSON.stringify({ payloads: [payloadToJson(inputPayload!)] }),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:8233');
      const body = (await res.json()) as { payloads: JsonPayload[] };
      expect(Buffer.from(body.payloads[0]!.metadata!.encoding!, 'base64').toString()).toBe('json/plain');
      expect(JSON.parse(Buffer.from(body.payloads[0]!.data!, 'base64').toString('utf8'))).toEqual(input);

      // A codec server holding another key refuses, naming the key id it lacks.
      const wrong = await startCodecServer({ codec: new AesGcmCodec({ key: randomBytes(32) }) });
      try {
        const refused = await fetch(`${wrong.url}/decode`, {
          method: 'POST',
          body: JSON.stringify({ payloads: [payloadToJson(inputPayload!)] }),
        });
        expect(refused.status).toBe(400);
        expect(await refused.text()).toMatch(/key id "codec-test-key", which this codec does not have/);
      } finally {
        await wrong.close();
      }

      // The official Temporal CLI (a Go codec client) speaks the same protocol: with --codec-endpoint its JSON
      // output carries the decoded input; without it, the encrypted one.
      const cli = findTemporalCli()!.path;
      const shownInput = async (extra: string[]) => {
        const out = await run(
          cli,
          ['workflow', 'show', '--workflow-id', workflowId, '--address', server.address, '--output', 'json', ...extra],
          { maxBuffer: 64 * 1024 * 1024 },
        );
        const shown = JSON.parse(out.stdout) as {
          events: Array<{ workflowExecutionStartedEventAttributes?: { input: { payloads: JsonPayload[] } } }>;
        };
        const p = shown.events.find((e) => e.workflowExecutionStartedEventAttributes)!
          .workflowExecutionStartedEventAttributes!.input.payloads[0]!;
        return {
          encoding: Buffer.from(p.metadata!.encoding!, 'base64').toString(),
          data: Buffer.from(p.data!, 'base64').toString('utf8'),
        };
      };
      const plain = await shownInput([]);
      expect(plain.encoding).toBe(ENCRYPTED_ENCODING);
      expect(plain.data).not.toContain(EXAMPLE_CSV);
      const viaCodec = await shownInput(['--codec-endpoint', codecServer.url]);
      expect(viaCodec.encoding).toBe('json/plain');
      expect(JSON.parse(viaCodec.data)).toEqual(input);
    } finally {
      await codecServer?.stop();
      await raw.connection.close();
      await stack.close();
    }
  });

  it('the codec server CLI refuses a bad or missing key with one line and exit code 2, never echoing the key', async () => {
    const short = Buffer.alloc(16, 5).toString('base64');
    const bad = await spawnCodecServer({ BACKFILL_CODEC_KEY: short }, ['--port', '0']).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(bad).toMatch(/exited \(2\).*BACKFILL_CODEC_KEY must be the base64 of exactly 32 bytes \(got 16\)/s);
    expect(bad).not.toContain(short);
    const missing = await spawnCodecServer({ BACKFILL_CODEC_KEY: '' }, ['--port', '0']).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(missing).toMatch(/exited \(2\).*BACKFILL_CODEC_KEY is not set/s);
  });
});
