// The plain, non-durable script the project is measured against: what someone would write without Temporal.
// It reads the CSV (src/source/read-source.ts), looks members up at bounded concurrency (src/channel/client.ts,
// sharing one in-process rate limiter), decides (src/decide.ts), POSTs the replays (src/webhook/sender.ts, a
// few quick attempts) and appends one outcome line per member to a results file (no fsync, no resume, no
// per-member idempotence). Same libraries as the project, so the ratio measures what durability costs.
//
// Run by bench/run.ts as its own process (like the worker, so it gets its own event loop and its memory and
// CPU can be measured alone):
//   tsx bench/plain-script.ts --csv F --channel-url U --webhook-url U --concurrency C [--rate R] --run-label L --out F
// with CHANNEL_ACCESS_KEY, CHANNEL_ACCESS_SECRET and WEBHOOK_TOKEN in the environment. Prints one JSON line.
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createChannelClient } from '../src/channel/client';
import { createRateLimiter } from '../src/channel/rate-limiter';
import { decide } from '../src/decide';
import { readSource } from '../src/source/read-source';
import type { SourceEntry } from '../src/types';
import { buildDeletePayload, buildUpsertPayload } from '../src/webhook/payload';
import { createWebhookSender } from '../src/webhook/sender';
import { webhookId } from '../src/webhook/webhook-id';

export interface PlainScriptOptions {
  csv: string;
  channelUrl: string;
  accessKey: string;
  accessSecret: string;
  webhookUrl: string;
  webhookToken: string | undefined;
  concurrency: number;
  rateLimit: number | undefined;
  runLabel: string;
  out: string;
}

export interface PlainScriptResult {
  rows: number;
  elapsedMs: number;
  membersPerSecond: number;
  deliveries: number;
  outcomes: Record<string, number>;
  /** CPU of this process (all its threads) from the start of the work to its end, ms: start-up excluded. */
  cpuMs: number;
}

interface OutcomeLine {
  line: number;
  memberId?: string;
  outcome: 'upsert' | 'delete' | 'unchanged' | 'failed' | 'skipped';
  fields?: string[];
  reason?: string;
  event?: 'upsert' | 'delete';
  webhookId?: string;
  delivered?: boolean;
}

const SEND_ATTEMPTS = 3;

export async function runPlainScript(o: PlainScriptOptions): Promise<PlainScriptResult> {
  const started = Date.now();
  const cpu0 = process.cpuUsage();
  const channel = createChannelClient({ baseUrl: o.channelUrl, accessKey: o.accessKey, accessSecret: o.accessSecret });
  const sender = createWebhookSender({ url: o.webhookUrl, token: o.webhookToken });
  const limiter = createRateLimiter(o.rateLimit);
  const out = createWriteStream(o.out, { encoding: 'utf8' });
  const outcomes: Record<string, number> = {};
  let rows = 0;
  let deliveries = 0;

  const write = async (entry: OutcomeLine) => {
    outcomes[entry.outcome] = (outcomes[entry.outcome] ?? 0) + 1;
    if (!out.write(JSON.stringify(entry) + '\n')) await once(out, 'drain');
  };

  async function one(entry: SourceEntry): Promise<void> {
    rows += 1;
    if ('skip' in entry)
      return write({ line: entry.line, memberId: entry.memberId, outcome: 'skipped', reason: entry.skip });
    const { member } = entry;
    const fetched = await channel.getUserByMemberId(member.memberId, { limiter });
    const decision = decide(member, fetched, { defaultRegion: 'KR' });
    const base = { line: entry.line, memberId: member.memberId };
    if (decision.action === 'unchanged') return write({ ...base, outcome: 'unchanged' });
    if (decision.action === 'failed') return write({ ...base, outcome: 'failed', reason: decision.reason });
    if (decision.action === 'skipped') return write({ ...base, outcome: 'skipped', reason: decision.reason }); // never without onlyChangedSince
    const event = decision.action;
    const payload =
      event === 'upsert' && fetched.kind === 'found'
        ? buildUpsertPayload(fetched.user)
        : buildDeletePayload({ user: fetched.kind === 'found' ? fetched.user : undefined, stored: member });
    const id = webhookId(o.runLabel, member.memberId, event);
    let delivered = false;
    for (let attempt = 1; attempt <= SEND_ATTEMPTS && !delivered; attempt++) {
      const sent = await sender.send({ webhookId: id, payload });
      deliveries += 1;
      if (sent.kind === 'delivered') delivered = true;
      else if (sent.kind === 'rejected') break;
      else if (attempt < SEND_ATTEMPTS) await sleep(250 * 2 ** (attempt - 1));
    }
    const fields = decision.action === 'upsert' ? decision.fields : undefined;
    const reason = decision.action === 'delete' ? decision.reason : undefined;
    return write({
      ...base,
      outcome: delivered ? event : 'failed',
      ...(fields ? { fields } : {}),
      ...(reason ? { reason } : {}),
      event,
      webhookId: id,
      delivered,
    });
  }

  try {
    // One reader shared by C loops: each takes the next row when it is free (an async generator queues the calls).
    const rowsIn = readSource({ type: 'csv', path: o.csv })[Symbol.asyncIterator]();
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        for (;;) {
          const next = await rowsIn.next();
          if (next.done) return;
          await one(next.value);
        }
      }),
    );
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } finally {
    await Promise.all([channel.close(), sender.close()]);
  }
  const elapsedMs = Date.now() - started;
  const cpu = process.cpuUsage(cpu0);
  return {
    rows,
    elapsedMs,
    membersPerSecond: rows / (elapsedMs / 1000),
    deliveries,
    outcomes,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      csv: { type: 'string' },
      'channel-url': { type: 'string' },
      'webhook-url': { type: 'string' },
      concurrency: { type: 'string' },
      rate: { type: 'string' },
      'run-label': { type: 'string' },
      out: { type: 'string' },
    },
  });
  const need = (k: keyof typeof values) => {
    const v = values[k];
    if (typeof v !== 'string' || v === '') throw new Error(`--${k} is required`);
    return v;
  };
  const env = (k: string) => {
    const v = process.env[k];
    if (!v) throw new Error(`${k} is required in the environment`);
    return v;
  };
  const result = await runPlainScript({
    csv: need('csv'),
    channelUrl: need('channel-url'),
    webhookUrl: need('webhook-url'),
    accessKey: env('CHANNEL_ACCESS_KEY'),
    accessSecret: env('CHANNEL_ACCESS_SECRET'),
    webhookToken: process.env.WEBHOOK_TOKEN,
    concurrency: Number(need('concurrency')),
    rateLimit: values.rate ? Number(values.rate) : undefined,
    runLabel: need('run-label'),
    out: need('out'),
  });
  process.stdout.write(JSON.stringify(result) + '\n');
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`plain script failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
