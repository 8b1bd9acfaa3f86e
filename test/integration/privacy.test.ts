// Issue 3 item 6: no access key or secret, webhook token, e-mail address or phone number reaches any workflow
// history of the run (every run of the continue-as-new chain), the worker's logs, or the failure messages sent
// to the server. The worker runs as a child process (`npx tsx src/worker.ts`) so its real logs are captured.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DevServer } from '../../dev/temporal-cli';
import {
  pauseSignal,
  progressQuery,
  resumeSignal,
  WORKFLOW_TYPE,
  type BackfillResult,
  type Progress,
} from '../../workflows/definitions';
import { EXAMPLE_CSV, EXAMPLES_DIR, loadExamples, type Examples } from '../support/examples';
import {
  ACCESS_KEY,
  ACCESS_SECRET,
  startStack,
  startTestServer,
  waitFor,
  WEBHOOK_TOKEN,
  type Stack,
} from '../support/stack';

const ROOT = path.resolve(__dirname, '../..');

// ---------------------------------------------------------------------------------------------------------
// The scanner: what must never appear, and every text form a history can hide it in.

interface Needle {
  kind: 'secret' | 'email' | 'phone';
  value: string;
  /** Where the value comes from (for the failure message). */
  from: string;
}

interface Haystack {
  where: string;
  text: string;
}

interface Leak {
  where: string;
  kind: Needle['kind'];
  value: string;
  from: string;
  context: string;
}

const EMAIL = /[^\s@,;"'<>()]+@[^\s@,;"'<>()]+\.[A-Za-z]{2,}/g;
/** Values with fewer digits than this are junk test rows (e.g. "12-34"), not phone numbers; they would match any counter. */
const MIN_PHONE_DIGITS = 7;

function phoneForms(raw: string): string[] {
  const trimmed = raw.trim();
  const digits = trimmed.replace(/\D/g, '');
  if (digits.length < MIN_PHONE_DIGITS) return [];
  const forms = new Set([trimmed, digits]);
  const parsed = parsePhoneNumberFromString(trimmed, 'KR');
  if (parsed) {
    forms.add(parsed.number); // E.164, +821012345678
    forms.add(parsed.number.slice(1)); // 821012345678
    forms.add(parsed.formatNational()); // 010-1234-5678
    forms.add(parsed.formatNational().replace(/\D/g, '')); // 01012345678
    forms.add(parsed.formatInternational()); // +82 10 1234 5678
  }
  return [...forms].filter((f) => f.replace(/\D/g, '').length >= MIN_PHONE_DIGITS);
}

function emailForms(raw: string): string[] {
  const e = raw.trim();
  return e === '' ? [] : [e.toLowerCase(), encodeURIComponent(e).toLowerCase()];
}

/** Every e-mail and phone number of the example data set, in every form the data and the code use. */
async function personalData(): Promise<Needle[]> {
  const needles: Needle[] = [];
  const csv = parseCsv(await readFile(EXAMPLE_CSV, 'utf8'), {
    columns: true,
    bom: true,
    relax_column_count: true,
    skip_empty_lines: true,
  }) as Array<Record<string, string>>;
  for (const row of csv) {
    for (const v of emailForms(row.email ?? ''))
      needles.push({ kind: 'email', value: v, from: `members.csv ${row.memberId}` });
    for (const v of phoneForms(row.mobileNumber ?? ''))
      needles.push({ kind: 'phone', value: v, from: `members.csv ${row.memberId}` });
  }
  const users = JSON.parse(await readFile(path.join(EXAMPLES_DIR, 'channel-users.json'), 'utf8')) as unknown;
  const walk = (value: unknown, key: string, from: string) => {
    if (typeof value === 'string') {
      if (/mobile|phone/i.test(key)) for (const v of phoneForms(value)) needles.push({ kind: 'phone', value: v, from });
      for (const m of value.match(EMAIL) ?? [])
        for (const v of emailForms(m)) needles.push({ kind: 'email', value: v, from });
    } else if (Array.isArray(value)) value.forEach((v) => walk(v, key, from));
    else if (value && typeof value === 'object') {
      const obj = value as Record<string, unknown>;
      const who = typeof obj.memberId === 'string' ? `channel-users.json ${obj.memberId}` : from;
      for (const [k, v] of Object.entries(obj)) walk(v, k, who);
    }
  };
  walk(users, '', 'channel-users.json');
  const seen = new Set<string>();
  return needles.filter((n) => (seen.has(`${n.kind}:${n.value}`) ? false : (seen.add(`${n.kind}:${n.value}`), true)));
}

const SECRETS: Needle[] = [
  { kind: 'secret', value: ACCESS_KEY, from: 'CHANNEL_ACCESS_KEY' },
  { kind: 'secret', value: ACCESS_SECRET, from: 'CHANNEL_ACCESS_SECRET' },
  { kind: 'secret', value: WEBHOOK_TOKEN, from: 'WEBHOOK_TOKEN' },
];

const BASE64 = /^[A-Za-z0-9+/]{8,}={0,2}$/;

/**
 * Every text a (history or describe) object holds: its JSON serialisation (bytes become base64 there), the
 * UTF-8 of every byte field (payload data and metadata), and the decoding of every base64-looking string.
 */
function textsOf(where: string, value: unknown): Haystack[] {
  const out: Haystack[] = [{ where: `${where} (JSON)`, text: JSON.stringify(value) }];
  const decoded: string[] = [];
  const visit = (v: unknown) => {
    if (typeof v === 'string') {
      if (BASE64.test(v) && v.length % 4 === 0) decoded.push(Buffer.from(v, 'base64').toString('utf8'));
    } else if (v instanceof Uint8Array) decoded.push(Buffer.from(v).toString('utf8'));
    else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') Object.values(v as Record<string, unknown>).forEach(visit);
  };
  visit(value);
  visit(JSON.parse(JSON.stringify(value) ?? 'null'));
  out.push({ where: `${where} (decoded payload data)`, text: decoded.join('\n') });
  return out;
}

function findLeaks(haystacks: Haystack[], needles: Needle[]): Leak[] {
  const leaks: Leak[] = [];
  for (const h of haystacks) {
    const lower = h.text.toLowerCase();
    for (const n of needles) {
      // E-mail addresses are case-insensitive; secrets and phone numbers are matched as written.
      const at = n.kind === 'email' ? lower.indexOf(n.value.toLowerCase()) : h.text.indexOf(n.value);
      if (at >= 0)
        leaks.push({
          where: h.where,
          kind: n.kind,
          value: n.value,
          from: n.from,
          context: h.text.slice(Math.max(0, at - 60), at + n.value.length + 60),
        });
    }
  }
  return leaks;
}

/** Failure messages (and stack traces) anywhere in an object: what workers sent to the server as failures. */
function failureTexts(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => failureTexts(v, out));
  else if (value && typeof value === 'object' && !(value instanceof Uint8Array)) {
    const obj = value as Record<string, unknown>;
    if (
      typeof obj.message === 'string' &&
      ('applicationFailureInfo' in obj || 'stackTrace' in obj || 'source' in obj)
    ) {
      out.push(obj.message);
      if (typeof obj.stackTrace === 'string') out.push(obj.stackTrace);
    }
    Object.values(obj).forEach((v) => failureTexts(v, out));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------

let server: DevServer;
let examples: Examples;
let needles: Needle[];

beforeAll(async () => {
  [server, examples, needles] = await Promise.all([startTestServer(), loadExamples(), personalData()]);
});
afterAll(async () => {
  await server?.stop();
});

describe('the privacy scanner', () => {
  it('knows the personal data of the example set, in every format', () => {
    const emails = needles.filter((n) => n.kind === 'email');
    const phones = needles.filter((n) => n.kind === 'phone');
    expect(emails.length).toBeGreaterThan(250);
    expect(phones.length).toBeGreaterThan(500);
    const values = new Set(needles.map((n) => n.value));
    // m-0001: members.csv has 010-2919-2366, Channel Talk has +821029192366.
    for (const form of [
      '010-2919-2366',
      '01029192366',
      '+821029192366',
      '821029192366',
      '+82 10 2919 2366',
      'junho.kim112@example.org',
    ]) {
      expect(values.has(form), form).toBe(true);
    }
  });

  it('finds what it must find (so a clean result means something)', () => {
    const all = [...SECRETS, ...needles];
    const found = (haystacks: Haystack[]) => findLeaks(haystacks, all).map((l) => `${l.kind}:${l.value}`);
    // plain strings, any case
    expect(found([{ where: 't', text: 'failed for junho.kim112@example.org, sorry' }])).toContain(
      'email:junho.kim112@example.org',
    );
    expect(found([{ where: 't', text: 'JUNHO.KIM112@EXAMPLE.ORG' }])).toContain('email:junho.kim112@example.org');
    expect(found([{ where: 't', text: `x-access-secret: ${ACCESS_SECRET}` }])).toContain(`secret:${ACCESS_SECRET}`);
    expect(found([{ where: 't', text: `?token=${WEBHOOK_TOKEN}` }])).toContain(`secret:${WEBHOOK_TOKEN}`);
    // a phone number inside a payload's bytes, as fetchHistory returns them
    const history = {
      events: [
        {
          activityTaskCompletedEventAttributes: {
            result: {
              payloads: [
                { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('{"m":"+821029192366"}') },
              ],
            },
          },
        },
      ],
    };
    expect(found(textsOf('h', history))).toContain('phone:+821029192366');
    // digits only, hidden in base64 in a JSON history (as `temporal workflow show -o json` writes it)
    const jsonHistory = {
      events: [{ input: { payloads: [{ data: Buffer.from('{"phone":"01029192366"}').toString('base64') }] } }],
    };
    expect(JSON.stringify(jsonHistory)).not.toContain('01029192366');
    expect(found(textsOf('h', jsonHistory))).toContain('phone:01029192366');
    // failure messages are collected from failures at any depth
    expect(
      failureTexts({
        a: [{ lastFailure: { message: 'boom junho.kim112@example.org', source: 'TypeScriptSDK', stackTrace: 'at x' } }],
      }),
    ).toEqual(['boom junho.kim112@example.org', 'at x']);
    // what the design does put in histories is not flagged
    expect(
      found([
        { where: 't', text: '{"line":2,"memberId":"m-0001","fields":["email","mobileNumber"],"outcome":"upsert"}' },
      ]),
    ).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------

interface ChildWorker {
  process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** `npx tsx src/worker.ts` in its own process group, stdout and stderr captured. */
function spawnWorker(env: Record<string, string>): ChildWorker {
  const child = spawn('npx', ['tsx', 'src/worker.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    process: child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // The group holds npx, tsx and the worker itself: SIGTERM lets the worker shut down cleanly.
      process.kill(-child.pid!, 'SIGTERM');
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

describe('privacy of a full run (worker as a child process)', () => {
  it(
    'no secret, e-mail or phone number in any history of the chain, the worker logs, or failure messages',
    { timeout: 110_000 },
    async () => {
      // One due member whose receiver answers 503 long enough that its replay is deferred and its own activity
      // fails (and retries) a few times: the run then really sends failure messages to the server.
      const faulty = new Set([...Object.keys(examples.faults.channel), ...Object.keys(examples.faults.receiver)]);
      const deferredMember = examples.expected.outcomes.find(
        (o) => o.outcome === 'upsert' && o.line > 60 && !faulty.has(o.memberId),
      )!.memberId;
      const stack: Stack = await startStack({
        server,
        users: examples.users,
        channelFaults: examples.faults.channel,
        receiverBehaviours: {
          ...examples.faults.receiver,
          [deferredMember]: { status: 503, times: 6, retryAfterSeconds: 1 },
        },
        env: { CHANNEL_RATE_LIMIT: '40' },
        worker: false,
      });
      const worker = spawnWorker(stack.env);
      const workflowId = 'backfill-privacy';
      const collected: Haystack[] = [];
      const failures: string[] = [];
      let sampling = true;
      let sampler: Promise<void> | undefined;
      try {
        await waitFor(
          'the child worker to start',
          async () => {
            if (worker.process.exitCode !== null) throw new Error(`the worker exited: ${worker.output()}`);
            return worker.output().includes('worker starting');
          },
          30_000,
        );
        const handle = await stack.client.workflow.start(WORKFLOW_TYPE, {
          taskQueue: stack.config.BACKFILL_TASK_QUEUE,
          workflowId,
          args: [
            { source: { type: 'csv', path: EXAMPLE_CSV }, batchSize: 5, maxHistoryEvents: 200, parallelBatches: 2 },
          ],
        });

        // What the server holds about pending activities (last failure, heartbeat details) never reaches a
        // completed history when a retry succeeds: sample it while the run goes on.
        let samples = 0;
        sampler = (async () => {
          while (sampling) {
            try {
              const d = await stack.client.workflowService.describeWorkflowExecution({
                namespace: 'default',
                execution: { workflowId },
              });
              samples++;
              collected.push(...textsOf(`describe #${samples}`, d));
              failures.push(...failureTexts(d.pendingActivities));
            } catch {
              // between runs of the chain
            }
            await new Promise((r) => setTimeout(r, 200));
          }
        })();
        const progress = async (): Promise<Progress> => {
          const p = await handle.query(progressQuery);
          collected.push({ where: 'progress query', text: JSON.stringify(p) });
          return p;
        };

        // 1. An operator pause and resume.
        await waitFor('some progress', async () => (await progress()).processed >= 30, 60_000);
        await handle.signal(pauseSignal, 'privacy test: operator pause');
        await waitFor('paused', async () => (await progress()).paused, 20_000);
        await new Promise((r) => setTimeout(r, 1_000));
        await handle.signal(resumeSignal);

        // 2. Credentials revoked mid-run: the run pauses itself with a reason; restored, then resumed.
        await waitFor('more progress', async () => (await progress()).processed >= 120, 60_000);
        stack.simulator.setCredentials('revoked-key', 'revoked-secret');
        const selfPaused = await waitFor(
          'the run to pause itself',
          async () => {
            const p = await progress();
            return p.paused && p.pauseReason?.includes('credentials') ? p : undefined;
          },
          30_000,
        );
        expect(selfPaused.pauseReason).toMatch(/rejected the API credentials/);
        expect(selfPaused.pauseReason).not.toContain(ACCESS_KEY);
        await new Promise((r) => setTimeout(r, 1_000));
        stack.simulator.setCredentials(ACCESS_KEY, ACCESS_SECRET);
        await handle.signal(resumeSignal);

        const result = (await handle.result()) as BackfillResult;
        sampling = false;
        await sampler;
        collected.push({ where: 'result', text: JSON.stringify(result) });

        // The run is still exact: nobody was failed for the revoked credentials or the pause.
        const c = examples.expected.counts;
        expect(result).toMatchObject({
          processed: c.rows,
          upserts: c.upserts,
          deletes: c.deletes,
          unchanged: c.unchanged,
          failed: c.failed,
          skipped: c.skipped,
        });
        expect(result.runs).toBeGreaterThanOrEqual(2);
        expect(stack.simulator.stats().unauthorized).toBeGreaterThan(0);
        expect(stack.receiver.accepted().filter((d) => d.memberId === deferredMember)).toHaveLength(1);

        // Every run of the continue-as-new chain, once visibility lists them all.
        const runIds = await waitFor(
          'every run of the chain listed',
          async () => {
            const ids: string[] = [];
            for await (const wf of stack.client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
              ids.push(wf.runId);
            return ids.length === result.runs ? ids.reverse() : undefined; // listed newest first
          },
          30_000,
        );
        let events = 0;
        const kinds = new Set<string>();
        for (const [i, runId] of runIds.entries()) {
          const history = await stack.client.workflow.getHandle(workflowId, runId).fetchHistory();
          events += history.events?.length ?? 0;
          for (const e of history.events ?? [])
            for (const [k, v] of Object.entries(e)) if (k.endsWith('Attributes') && v) kinds.add(k);
          collected.push(...textsOf(`history of run ${i + 1}/${runIds.length} (${runId})`, history));
          failures.push(...failureTexts(history));
        }
        // The histories really hold what the run did: the pauses, the continue-as-new and the cancellations.
        expect(kinds).toContain('workflowExecutionContinuedAsNewEventAttributes');
        expect(kinds).toContain('workflowExecutionSignaledEventAttributes');
        expect(kinds).toContain('activityTaskCancelRequestedEventAttributes');
        const all = collected.map((h) => h.text).join('\n');
        expect(all).toContain('rejected the API credentials'); // the self-pause was seen (progress query) and scanned too
        expect(all).toContain('privacy test: operator pause');

        // Failure messages the workers sent (last failures of retried activities, failed or cancelled ones).
        expect(failures.length, 'the run sent at least one failure to the server').toBeGreaterThan(0);
        expect(failures.join('\n')).toMatch(/not delivered yet: HTTP 503/);
        collected.push({ where: 'failure messages', text: failures.join('\n') });

        await worker.stop();
        const logs = worker.output();
        expect(logs).toContain('webhook-backfill worker starting');
        collected.push({ where: 'worker logs (stdout+stderr)', text: logs });

        const leaks = findLeaks(collected, [...SECRETS, ...needles]);
        const report = leaks
          .slice(0, 20)
          .map((l) => `${l.kind} ${JSON.stringify(l.value)} (${l.from}) in ${l.where}: …${l.context}…`);
        expect(report, `${leaks.length} leaks`).toEqual([]);
        console.log(
          `privacy: scanned ${runIds.length} runs (${events} events), ${samples} describe samples, ${failures.length} failure texts, ` +
            `${logs.length} bytes of worker logs for ${needles.length + SECRETS.length} values: no leak`,
        );
      } finally {
        sampling = false;
        await sampler?.catch(() => undefined);
        await worker.stop();
        await stack.close();
      }
    },
  );
});
