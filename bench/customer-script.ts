// The reference of `npm run bench` (issue 26): the script a customer would write instead of using this project.
// It imports nothing from this repository, on purpose: its own HTTP calls (Node's global fetch by default, or
// undici's `request` with --http undici, the faster choice a careful author might make), its own CSV reader and
// JSON handling, its own comparison, 32 lookups in flight. Only libphonenumber-js is shared, as any Korean
// customer comparing phone numbers would reach for it. No durability: no resume, no audit fsync, no idempotence
// beyond a webhook-id per (run, member, event).
//
// bench/plain-script.ts is the other script: it shares this project's client, decision and sender, so it
// measures our own overhead (what durability costs on top of our hot path), not the peer a customer compares.
//
// Run by bench/run.ts as its own process:
//   tsx bench/customer-script.ts --csv F --channel-url U --webhook-url U --concurrency C [--rate R]
//                                [--http fetch|undici] --run-label L --out F
// with CHANNEL_ACCESS_KEY, CHANNEL_ACCESS_SECRET and WEBHOOK_TOKEN in the environment. Prints one JSON line of the
// same shape as the plain script's (rows, elapsedMs, membersPerSecond, deliveries, outcomes, cpuMs).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import { request } from 'undici';

type Http = 'fetch' | 'undici';
interface Answer {
  status: number;
  headers: (name: string) => string | undefined;
  text: string;
}

/** One HTTP exchange through the chosen client; the body is always read to the end. */
async function exchange(
  http: Http,
  url: string,
  init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string },
): Promise<Answer> {
  if (http === 'undici') {
    const res = await request(url, init);
    const text = await res.body.text();
    return {
      status: res.statusCode,
      headers: (name) => {
        const v = res.headers[name];
        return Array.isArray(v) ? v[0] : v;
      },
      text,
    };
  }
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, headers: (name) => res.headers.get(name) ?? undefined, text };
}

// ---------------------------------------------------------------------------------------------------------
// CSV: RFC 4180 records (quoted cells may hold commas, quotes and line ends), streamed from the file.

interface CsvRecord {
  /** The physical line the record starts on (the header is line 1). */
  line: number;
  cells: string[];
}

async function* csvRecords(file: string): AsyncGenerator<CsvRecord> {
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let afterQuote = false;
  let line = 1;
  let recordLine = 1;
  let empty = true;
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 16 })) {
    const text = chunk as string;
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (quoted) {
        if (c === '"') {
          quoted = false;
          afterQuote = true;
        } else {
          if (c === '\n') line++;
          cell += c;
        }
        continue;
      }
      if (c === '"') {
        if (afterQuote) cell += '"'; // "" inside quotes
        quoted = true;
        afterQuote = false;
        empty = false;
      } else if (c === ',') {
        cells.push(cell);
        cell = '';
        afterQuote = false;
        empty = false;
      } else if (c === '\n') {
        if (!empty || cell !== '') {
          cells.push(cell.endsWith('\r') ? cell.slice(0, -1) : cell);
          yield { line: recordLine, cells };
        }
        cells = [];
        cell = '';
        afterQuote = false;
        empty = true;
        line++;
        recordLine = line;
      } else {
        cell += c;
        afterQuote = false;
        empty = false;
      }
    }
  }
  if (!empty || cell !== '') {
    cells.push(cell);
    yield { line: recordLine, cells };
  }
}

// ---------------------------------------------------------------------------------------------------------
// The comparison, as the incident notice describes it

interface Member {
  memberId: string;
  mobileNumber: string;
  email: string;
  unsubscribeEmail: boolean;
  unsubscribeTexting: boolean;
}
type User = Record<string, unknown> & { type?: string; profile?: Record<string, unknown> };

const FIELDS = ['mobileNumber', 'email', 'unsubscribeEmail', 'unsubscribeTexting'] as const;
const TRUE_WORDS = new Set(['true', '1', 'yes', 'y']);

const truthy = (cell: string | undefined) => TRUE_WORDS.has((cell ?? '').trim().toLowerCase());
const str = (v: unknown) => (typeof v === 'string' ? v.trim() : '');

function phone(value: string): string {
  if (value === '') return '';
  const parsed = parsePhoneNumberFromString(value, 'KR');
  return parsed?.isValid() ? parsed.number : value.replace(/[\s\-.()]/g, '');
}

function differingFields(m: Member, user: User): string[] {
  const theirs = (key: 'mobileNumber' | 'email') => str(user[key]) || str(user.profile?.[key]);
  const out: string[] = [];
  if (phone(m.mobileNumber.trim()) !== phone(theirs('mobileNumber'))) out.push('mobileNumber');
  if (m.email.trim().toLowerCase() !== theirs('email').toLowerCase()) out.push('email');
  if (m.unsubscribeEmail !== (user.unsubscribeEmail === true)) out.push('unsubscribeEmail');
  if (m.unsubscribeTexting !== (user.unsubscribeTexting === true)) out.push('unsubscribeTexting');
  return out;
}

/** The replay's webhook-id: the customer's own idempotency key, one per (run, member, event). */
export function customerWebhookId(runLabel: string, memberId: string, event: 'upsert' | 'delete'): string {
  return createHash('sha1').update(`${runLabel}\n${memberId}\n${event}`).digest('hex');
}

// ---------------------------------------------------------------------------------------------------------

export interface CustomerScriptOptions {
  csv: string;
  channelUrl: string;
  accessKey: string;
  accessSecret: string;
  webhookUrl: string;
  webhookToken: string | undefined;
  concurrency: number;
  rateLimit: number | undefined;
  http: Http;
  runLabel: string;
  out: string;
}

/** What both reference scripts print (one JSON line) for bench/run.ts. */
export interface ScriptResult {
  rows: number;
  elapsedMs: number;
  membersPerSecond: number;
  deliveries: number;
  outcomes: Record<string, number>;
  /** CPU of this process (all its threads) from the start of the work to its end, ms: start-up excluded. */
  cpuMs: number;
}

/** The figures of a script's work that began at `started` (Date.now()) and `cpu0` (process.cpuUsage()). */
export function scriptResult(
  started: number,
  cpu0: NodeJS.CpuUsage,
  counts: Pick<ScriptResult, 'rows' | 'deliveries' | 'outcomes'>,
): ScriptResult {
  const elapsedMs = Date.now() - started;
  const cpu = process.cpuUsage(cpu0);
  return {
    ...counts,
    elapsedMs,
    membersPerSecond: counts.rows / (elapsedMs / 1000),
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

export async function runCustomerScript(o: CustomerScriptOptions): Promise<ScriptResult> {
  const started = Date.now();
  const cpu0 = process.cpuUsage();
  const out = createWriteStream(o.out, { encoding: 'utf8' });
  const outcomes: Record<string, number> = {};
  let rows = 0;
  let deliveries = 0;
  const hook = `${o.webhookUrl}${o.webhookUrl.includes('?') ? '&' : '?'}token=${encodeURIComponent(o.webhookToken ?? '')}`;
  const auth = { 'x-access-key': o.accessKey, 'x-access-secret': o.accessSecret };
  // A plain spacing limiter: each lookup waits for its slot, 1/R s after the previous one.
  let nextSlot = 0;
  const waitForSlot = async () => {
    if (!o.rateLimit) return;
    const now = Date.now();
    nextSlot = Math.max(now, nextSlot + 1000 / o.rateLimit);
    if (nextSlot > now) await sleep(nextSlot - now);
  };

  const record = async (entry: Record<string, unknown> & { outcome: string }) => {
    outcomes[entry.outcome] = (outcomes[entry.outcome] ?? 0) + 1;
    if (!out.write(JSON.stringify(entry) + '\n')) await once(out, 'drain');
  };

  async function lookUp(memberId: string): Promise<User | undefined> {
    for (let attempt = 1; ; attempt++) {
      await waitForSlot();
      try {
        const res = await exchange(o.http, `${o.channelUrl}/open/v5/users/@${encodeURIComponent(memberId)}`, {
          method: 'GET',
          headers: auth,
        });
        if (res.status === 200) return (JSON.parse(res.text) as { user: User }).user;
        if (res.status === 404) return undefined;
        if (res.status === 429) {
          await sleep(Number(res.headers('retry-after') ?? 1) * 1000);
          continue;
        }
        if (res.status < 500 || attempt >= 3) throw new Error(`lookup of ${memberId}: HTTP ${res.status}`);
      } catch (err) {
        if (attempt >= 3) throw err;
      }
      await sleep(250 * attempt);
    }
  }

  async function replay(body: string, id: string): Promise<boolean> {
    for (let attempt = 1; attempt <= 3; attempt++) {
      deliveries += 1;
      try {
        const res = await exchange(o.http, hook, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'webhook-id': id },
          body,
        });
        if (res.status >= 200 && res.status < 300) return true;
        if (res.status < 500) return false;
      } catch {
        // network trouble: try again
      }
      if (attempt < 3) await sleep(250 * attempt);
    }
    return false;
  }

  async function handle(rec: CsvRecord, column: Record<string, number>): Promise<void> {
    rows += 1;
    const cell = (name: string) => rec.cells[column[name] ?? -1] ?? '';
    const memberId = cell('memberId').trim();
    if (memberId === '') return record({ line: rec.line, outcome: 'skipped', reason: 'no memberId' });
    const m: Member = {
      memberId,
      mobileNumber: cell('mobileNumber'),
      email: cell('email'),
      unsubscribeEmail: truthy(cell('unsubscribeEmail')),
      unsubscribeTexting: truthy(cell('unsubscribeTexting')),
    };
    let user: User | undefined;
    try {
      user = await lookUp(memberId);
    } catch (err) {
      return record({ line: rec.line, memberId, outcome: 'failed', reason: String(err) });
    }
    let event: 'upsert' | 'delete';
    let fields: string[] | undefined;
    let reason: string | undefined;
    if (!user) [event, reason] = ['delete', 'not-found'];
    else if (user.type === 'unified') [event, reason] = ['delete', 'unified'];
    else {
      fields = differingFields(m, user);
      if (fields.length === 0) return record({ line: rec.line, memberId, outcome: 'unchanged' });
      event = 'upsert';
    }
    const entity = user ?? Object.fromEntries(Object.entries(m).filter(([, v]) => v !== '' && v !== false));
    const id = customerWebhookId(o.runLabel, memberId, event);
    const delivered = await replay(JSON.stringify({ event, type: 'user', entity, refers: {} }), id);
    return record({
      line: rec.line,
      memberId,
      outcome: delivered ? event : 'failed',
      ...(fields ? { fields } : {}),
      ...(reason ? { reason } : {}),
      event,
      webhookId: id,
      delivered,
    });
  }

  const records = csvRecords(o.csv);
  const header = await records.next();
  if (header.done) throw new Error(`${o.csv} is empty`);
  const column = Object.fromEntries(header.value.cells.map((name, i) => [name.trim(), i]));
  for (const f of ['memberId', ...FIELDS]) if (!(f in column)) throw new Error(`${o.csv}: no column ${f}`);
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      for (let next = await records.next(); !next.done; next = await records.next()) await handle(next.value, column);
    }),
  );
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return scriptResult(started, cpu0, { rows, deliveries, outcomes });
}

/**
 * The command line both reference scripts take (this one and bench/plain-script.ts, which reuses it: this file
 * may import nothing from the project, the other way round is fine) and the secrets from the environment.
 */
export function readScriptCommandLine(argv: string[]): Omit<CustomerScriptOptions, 'http'> & { http: string } {
  const { values } = parseArgs({
    args: argv,
    options: {
      csv: { type: 'string' },
      'channel-url': { type: 'string' },
      'webhook-url': { type: 'string' },
      concurrency: { type: 'string' },
      rate: { type: 'string' },
      http: { type: 'string' },
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
  return {
    csv: need('csv'),
    channelUrl: need('channel-url'),
    webhookUrl: need('webhook-url'),
    accessKey: env('CHANNEL_ACCESS_KEY'),
    accessSecret: env('CHANNEL_ACCESS_SECRET'),
    webhookToken: process.env.WEBHOOK_TOKEN,
    concurrency: Number(need('concurrency')),
    rateLimit: values.rate ? Number(values.rate) : undefined,
    http: values.http ?? 'fetch',
    runLabel: need('run-label'),
    out: need('out'),
  };
}

/** Runs a reference script from its command line and prints its figures as one JSON line. */
export function runFromCommandLine(
  name: string,
  run: (o: ReturnType<typeof readScriptCommandLine>) => Promise<ScriptResult>,
): void {
  run(readScriptCommandLine(process.argv.slice(2))).then(
    (result) => process.stdout.write(JSON.stringify(result) + '\n'),
    (err: unknown) => {
      console.error(`${name} failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}

if (require.main === module) {
  runFromCommandLine('customer script', (o) => {
    if (o.http !== 'fetch' && o.http !== 'undici') throw new Error(`--http must be fetch or undici, got ${o.http}`);
    return runCustomerScript({ ...o, http: o.http });
  });
}
