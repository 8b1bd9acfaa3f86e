import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the customer's webhook endpoint, for the demo and tests. It records every request and
 * can be told to fail, slow down or go away, per member, to exercise the replay's retry paths.
 */

export interface ReceiverBehaviour {
  status: number;
  /** Answer `status` this many times (per memberId), then 200. Default: forever. */
  times?: number;
  delayMs?: number;
  retryAfterSeconds?: number;
  /** Only the job's replays (with a webhook-id header) get this answer; Channel Talk's own live webhooks carry none. */
  replaysOnly?: boolean;
}

export interface Delivery {
  seq: number;
  receivedAt: number;
  token: string | null;
  /** The other query parameters (token excluded), so tests can see a registered URL's query survived. */
  query: Record<string, string>;
  webhookId: string | null;
  contentType: string | null;
  userAgent: string | null;
  event: string;
  memberId: string | null;
  body: unknown;
  /** The body exactly as received (UTF-8 text; '' when too large), e.g. to check a signature over it. */
  rawBody: string;
  /** The request's headers as Node gives them (lower-case names). */
  headers: Record<string, string | string[] | undefined>;
  /** What the receiver answered. */
  status: number;
  /**
   * With `triggerEvents`: whether Channel Talk's n8n trigger node set to those events would start its workflow for
   * this body (false: it answers but ignores it). Absent without `triggerEvents`.
   */
  triggered?: boolean;
}

export interface WebhookReceiverOptions {
  port?: number;
  /** Default '/webhook'. */
  path?: string;
  behaviours?: Record<string, ReceiverBehaviour>;
  defaultBehaviour?: ReceiverBehaviour;
  /** Called once per recorded request, e.g. to print it. */
  onDelivery?: (d: Delivery) => void;
  /**
   * Act as Channel Talk's n8n trigger node (`ChannelTalkTrigger.node.ts`) set to these events: each delivery records
   * whether the node would keep its body (see `n8nTriggerKeeps`).
   */
  triggerEvents?: readonly string[];
}

/**
 * The body filter of Channel Talk's n8n trigger node (channel-io/n8n-nodes-channel-talk, ChannelTalkTrigger.node.ts,
 * `webhook()`): set to `*` it keeps everything; else it keeps a body only when its events include `body.event`, and
 * ignores the rest (answering without starting the workflow).
 */
export function n8nTriggerKeeps(events: readonly string[], body: unknown): boolean {
  if (events.includes('*')) return true;
  const event = isRecord(body) ? body.event : undefined;
  return typeof event === 'string' && events.includes(event);
}

export interface WebhookReceiver {
  url: string;
  port: number;
  deliveries(): Delivery[];
  accepted(): Delivery[];
  setBehaviour(memberId: string, b: ReceiverBehaviour | undefined): void;
  setDefaultBehaviour(b: ReceiverBehaviour | undefined): void;
  /** Stops listening and drops open connections (the receiver is down); recorded deliveries are kept. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;
// Counters of the default behaviour are per memberId too; requests without one share this key.
const NO_MEMBER_KEY = '\u0000no-member';

export async function startWebhookReceiver(o: WebhookReceiverOptions = {}): Promise<WebhookReceiver> {
  const path = o.path ?? '/webhook';
  const recorded: Delivery[] = [];
  const behaviours = new Map<string, ReceiverBehaviour>(Object.entries(o.behaviours ?? {}));
  let defaultBehaviour = o.defaultBehaviour;
  // How many times each member has been answered its failing status since its behaviour was set.
  const memberCounts = new Map<string, number>();
  const defaultCounts = new Map<string, number>();
  const pendingTimers = new Set<NodeJS.Timeout>();
  let seq = 0;

  /** Decides the answer for one member and counts it against the behaviour's `times`. */
  function answerFor(
    memberId: string | null,
    isReplay: boolean,
  ): { status: number; delayMs: number; retryAfterSeconds?: number } {
    const key = memberId ?? NO_MEMBER_KEY;
    const own = memberId !== null ? behaviours.get(memberId) : undefined;
    const behaviour = own ?? defaultBehaviour;
    if (!behaviour || (behaviour.replaysOnly && !isReplay)) return { status: 200, delayMs: 0 };
    const counts = own ? memberCounts : defaultCounts;
    const used = counts.get(key) ?? 0;
    // Once `times` is used up the behaviour is over: a plain, prompt 200.
    if (behaviour.times !== undefined && used >= behaviour.times) return { status: 200, delayMs: 0 };
    counts.set(key, used + 1);
    return {
      status: behaviour.status,
      delayMs: behaviour.delayMs ?? 0,
      retryAfterSeconds: behaviour.retryAfterSeconds,
    };
  }

  function record(d: Omit<Delivery, 'seq' | 'receivedAt'>, receivedAt: number): void {
    const delivery: Delivery = { seq: ++seq, receivedAt, ...d };
    recorded.push(delivery);
    o.onDelivery?.(delivery);
  }

  function respond(res: ServerResponse, status: number, delayMs: number, retryAfterSeconds?: number): void {
    const write = (): void => {
      if (res.destroyed || res.writableEnded) return;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
      res.writeHead(status, headers).end(JSON.stringify({ ok: status >= 200 && status < 300 }));
    };
    if (delayMs <= 0) return write();
    const timer = setTimeout(() => {
      pendingTimers.delete(timer);
      write();
    }, delayMs);
    pendingTimers.add(timer);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    const url = new URL(req.url ?? '/', 'http://receiver.invalid');
    const token = url.searchParams.get('token');
    const query = Object.fromEntries([...url.searchParams].filter(([k]) => k !== 'token'));
    const webhookId = headerValue(req.headers['webhook-id']);
    const contentType = req.headers['content-type'] ?? null;
    const userAgent = req.headers['user-agent'] ?? null;
    const raw = await readBody(req);
    const rawBody = raw === 'too-large' ? '' : raw;
    const headers = { ...req.headers };
    const base = {
      token,
      query,
      webhookId,
      contentType,
      userAgent,
      event: '',
      memberId: null,
      body: null,
      rawBody,
      headers,
    };

    if (url.pathname !== path || req.method !== 'POST') {
      const status = url.pathname !== path ? 404 : 405;
      record({ ...base, status }, receivedAt);
      return respond(res, status, 0);
    }
    if (raw === 'too-large') {
      record({ ...base, status: 413 }, receivedAt);
      return respond(res, 413, 0);
    }
    const body = parseJson(raw);
    if (body === undefined) {
      record({ ...base, status: 400 }, receivedAt);
      return respond(res, 400, 0);
    }
    const memberId = memberIdOf(body);
    const event = eventOf(body);
    const answer = answerFor(memberId, webhookId !== null);
    const triggered = o.triggerEvents ? { triggered: n8nTriggerKeeps(o.triggerEvents, body) } : {};
    record({ ...base, event, memberId, body, status: answer.status, ...triggered }, receivedAt);
    respond(res, answer.status, answer.delayMs, answer.retryAfterSeconds);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent && !res.destroyed) res.writeHead(500).end();
    });
  });

  async function listen(port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', onError);
        resolve();
      });
    });
    return (server.address() as AddressInfo).port;
  }

  async function stopListening(): Promise<void> {
    if (!server.listening) return;
    for (const timer of pendingTimers) clearTimeout(timer);
    pendingTimers.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Without this, clients holding keep-alive sockets would keep talking to a "down" receiver.
    server.closeAllConnections();
    await closed;
  }

  const port = await listen(o.port ?? 0);
  return {
    url: `http://127.0.0.1:${port}${path}`,
    port,
    deliveries: () => [...recorded],
    accepted: () => recorded.filter((d) => d.status >= 200 && d.status < 300),
    setBehaviour(memberId, b) {
      if (b) behaviours.set(memberId, b);
      else behaviours.delete(memberId);
      memberCounts.delete(memberId);
    },
    setDefaultBehaviour(b) {
      defaultBehaviour = b;
      defaultCounts.clear();
    },
    stop: stopListening,
    async start() {
      if (!server.listening) await listen(port);
    },
    close: stopListening,
  };
}

function headerValue(v: string | string[] | undefined): string | null {
  return (Array.isArray(v) ? v[0] : v) ?? null;
}

async function readBody(req: IncomingMessage): Promise<string | 'too-large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    // Keep draining so the answer can still be written on the same connection.
    if (size > MAX_BODY_BYTES) tooLarge = true;
    else chunks.push(chunk);
  }
  return tooLarge ? 'too-large' : Buffer.concat(chunks).toString('utf8');
}

/** undefined = not JSON (JSON `null` is a valid body and comes back as null). */
function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}

function memberIdOf(body: unknown): string | null {
  const entity = isRecord(body) ? body.entity : undefined;
  const memberId = isRecord(entity) ? entity.memberId : undefined;
  return typeof memberId === 'string' ? memberId : null;
}

function eventOf(body: unknown): string {
  const event = isRecord(body) ? body.event : undefined;
  return typeof event === 'string' ? event : '';
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
