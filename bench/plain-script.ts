// Our own overhead (`npm run bench -- --script own`): a plain, non-durable script over this project's own hot path.
// It reads the CSV (src/source/read-source.ts), looks members up at bounded concurrency (src/channel/client.ts,
// sharing one in-process rate limiter), decides (src/decide.ts), POSTs the replays (src/webhook/sender.ts, a
// few quick attempts) and appends one outcome line per member to a results file (no fsync, no resume, no
// per-member idempotence). Same code as the project, so the ratio measures what durability costs on top of our
// own hot path; the reference a customer compares with is bench/customer-script.ts (the bench's default).
//
// Run by bench/run.ts as its own process (like the worker, so it gets its own event loop and its memory and
// CPU can be measured alone):
//   tsx bench/plain-script.ts --csv F --channel-url U --webhook-url U --concurrency C [--rate R] --run-label L --out F
// with CHANNEL_ACCESS_KEY, CHANNEL_ACCESS_SECRET and WEBHOOK_TOKEN in the environment. Prints one JSON line.
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createChannelClient } from '../src/channel/client';
import { createRateLimiter } from '../src/channel/rate-limiter';
import { decide } from '../src/domain/decide';
import { readSource } from '../src/source/read-source';
import type { SourceEntry } from '../src/domain/types';
import { buildDeletePayload, buildUpsertPayload } from '../src/webhook/payload';
import { createWebhookSender } from '../src/webhook/sender';
import { webhookId } from '../src/webhook/webhook-id';
import { runFromCommandLine, scriptResult, type CustomerScriptOptions, type ScriptResult } from './customer-script';

/** The customer script's options but its HTTP client: this one uses the project's. */
export type PlainScriptOptions = Omit<CustomerScriptOptions, 'http'>;

export type PlainScriptResult = ScriptResult;

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
  return scriptResult(started, cpu0, { rows, deliveries, outcomes });
}

if (require.main === module) runFromCommandLine('plain script', runPlainScript);
