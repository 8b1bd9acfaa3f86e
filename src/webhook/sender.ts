import { Agent, type Dispatcher } from 'undici';
import { z } from 'zod';
import { DispatchExchange, runExchange, type ResponseHeaders } from '../http/dispatch-exchange';
import { errorLabel } from '../http/error-label';
import type { ComparedField, SendResult, WebhookEvent, WebhookRoute } from '../types';
import type { ReplayPayload } from './payload';
import { createWebhookSigner, signingSecretProblem } from './signature';

export interface WebhookSenderOptions {
  /** The customer's webhook URL, as registered (any query string is kept). */
  url: string;
  /** The webhook's token; sent as `?token=` the way Channel Talk does. */
  token?: string;
  /** Limit on one whole attempt (connect, headers and body). Default 10 000 ms. */
  timeoutMs?: number;
  /** Shared connection pool; when absent the sender owns one and `close()` closes it. */
  dispatcher?: Dispatcher;
  extraHeaders?: Record<string, string>;
  /**
   * Standard Webhooks signing secret (`whsec_<base64>`, or a raw secret: see ./signature.ts). When set, every
   * attempt carries `webhook-timestamp` (that attempt's time) and `webhook-signature` over the exact bytes sent.
   */
  signingSecret?: string;
  /** Clock for `webhook-timestamp`, ms since the epoch. Default Date.now. */
  now?: () => number;
  /** The body's `event` string per event (WEBHOOK_EVENT_UPSERT / WEBHOOK_EVENT_DELETE). Default `upsert` / `delete`. */
  eventNames?: WebhookEventNames;
}

/** Channel Talk does not confirm the `event` strings of user webhooks: see README "Event names". */
export type WebhookEventNames = Partial<Record<WebhookEvent, string>>;

export interface WebhookSender {
  /**
   * One POST, no retries (the caller owns retry policy). Never throws for HTTP or network failures;
   * rethrows only when the caller's own `signal` aborts, so cancellation propagates as cancellation.
   * `fields`: an upsert's differing fields, which a channel-webhooks target routes by (a plain URL ignores them).
   */
  send(input: {
    webhookId: string;
    payload: ReplayPayload;
    fields?: readonly ComparedField[];
    signal?: AbortSignal;
  }): Promise<SendResult>;
  /** Where a change would go, without sending: a channel-webhooks target has it (the dry run records it). */
  route?(input: {
    event: WebhookEvent;
    fields?: readonly ComparedField[];
    signal?: AbortSignal;
  }): Promise<WebhookRoute[]>;
  close(): Promise<void>;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
const USER_AGENT = 'webhook-backfill';
// Bodies of webhook answers are irrelevant; read a little so keep-alive sockets can be reused, then drop.
const RESPONSE_DUMP_LIMIT_BYTES = 64 * 1024;

const optionsSchema = z.object({
  url: z.string().refine((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), 'must be an http(s) URL'),
  token: z.string().optional(),
  timeoutMs: z.number().int().positive().optional(),
  extraHeaders: z.record(z.string(), z.string()).optional(),
  signingSecret: z
    .string()
    .optional()
    .refine((s) => s === undefined || signingSecretProblem(s) === undefined, 'unusable signing secret'),
});

export function createWebhookSender(o: WebhookSenderOptions): WebhookSender {
  const parsed = optionsSchema.safeParse(o);
  if (!parsed.success) {
    // Only the field paths are reported: the values may hold the token.
    const fields = parsed.error.issues.map((i) => i.path.join('.') || '(root)').join(', ');
    throw new Error(`invalid webhook sender options: ${fields}`);
  }
  const timeoutMs = parsed.data.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const target = targetOf(parsed.data.url, parsed.data.token);
  const ownDispatcher = o.dispatcher ? undefined : new Agent({ connect: { timeout: timeoutMs } });
  const dispatcher: Dispatcher = o.dispatcher ?? (ownDispatcher as Agent);
  const extraHeaders = lowerCaseKeys(parsed.data.extraHeaders ?? {});
  const sign = parsed.data.signingSecret === undefined ? undefined : createWebhookSigner(parsed.data.signingSecret);
  const now = o.now ?? Date.now;
  const eventNames = o.eventNames ?? {};

  function send(input: { webhookId: string; payload: ReplayPayload; signal?: AbortSignal }): Promise<SendResult> {
    if (input.signal?.aborted) return Promise.reject(input.signal.reason);
    // The bytes signed are the bytes sent.
    let body: Buffer;
    const headers: Record<string, string> = {
      ...extraHeaders,
      'content-type': 'application/json',
      'webhook-id': input.webhookId,
      'user-agent': USER_AGENT,
    };
    try {
      const named = eventNames[input.payload.event];
      body = Buffer.from(
        JSON.stringify(named === undefined ? input.payload : { ...input.payload, event: named }),
        'utf8',
      );
      if (sign) {
        const timestamp = Math.floor(now() / 1000);
        headers['webhook-timestamp'] = String(timestamp);
        headers['webhook-signature'] = sign(input.webhookId, timestamp, body);
      }
    } catch (err) {
      return Promise.resolve({ kind: 'retryable', reason: errorLabel(err) ?? 'network error' });
    }
    return runExchange<SendResult>(
      dispatcher,
      { origin: target.origin, path: target.path, method: 'POST', headers, body },
      (resolve, reject) => new DeliveryExchange(resolve, reject, input.signal, timeoutMs, RESPONSE_DUMP_LIMIT_BYTES),
    );
  }

  return {
    send,
    async close() {
      await ownDispatcher?.close();
    },
  };
}

/** Maps one HTTP status to what the caller should do with the delivery. */
export function classifyStatus(status: number, retryAfter?: string, now: number = Date.now()): SendResult {
  if (status >= 200 && status < 300) return { kind: 'delivered', status };
  const reason = `HTTP ${status}`;
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfterMs(retryAfter, now);
    return retryAfterMs === undefined
      ? { kind: 'retryable', status, reason }
      : { kind: 'retryable', status, retryAfterMs, reason };
  }
  // 3xx included: a webhook endpoint that redirects is misconfigured, and replaying the POST elsewhere is unsafe.
  return { kind: 'rejected', status, reason };
}

/** `Retry-After` as delay-seconds or an HTTP-date; undefined when absent or unreadable. Never negative. */
export function parseRetryAfterMs(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // Every HTTP-date form starts with a day name; this keeps Date.parse from reading "-5" as a year.
  if (!/^[A-Za-z]{3}/.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * Origin and request path of the URL that is POSTed to. The registered query string is kept byte for byte
 * (re-serialising it through URLSearchParams would turn `a%20b` into `a+b` and `?flag` into `?flag=`); `token` is
 * appended, replacing a `token` parameter the URL already had.
 */
export function targetOf(url: string, token: string | undefined): { origin: string; path: string } {
  const u = new URL(url);
  if (token === undefined) return { origin: u.origin, path: u.search ? `${u.pathname}${u.search}` : u.pathname };
  const own = u.search
    .slice(1)
    .split('&')
    .filter((part) => part !== '' && paramName(part) !== 'token');
  return { origin: u.origin, path: `${u.pathname}?${[...own, `token=${encodeURIComponent(token)}`].join('&')}` };
}

function paramName(part: string): string {
  const raw = part.split('=', 1)[0]!.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/**
 * One POST (see DispatchExchange): the verdict is the status, whatever happens while the answer's body is
 * drained (a body over the limit closes the connection instead); before a status, a failure is retryable
 * (timeout, or the network error's code), or the caller's abort reason when the caller aborted.
 */
class DeliveryExchange extends DispatchExchange<SendResult> {
  private retryAfter: string | undefined;

  protected readHeaders(headers: ResponseHeaders): boolean {
    this.retryAfter = headerValue(headers['retry-after']);
    return false; // bodies of webhook answers are irrelevant
  }

  protected statusOutcome(): SendResult {
    return classifyStatus(this.status, this.retryAfter);
  }

  protected timeoutError(): Error {
    return new Error(`timeout after ${this.timeoutMs}ms`);
  }

  protected timeoutOutcome(): SendResult {
    return { kind: 'retryable', reason: `timeout after ${this.timeoutMs}ms` };
  }

  protected networkErrorOutcome(err: Error): SendResult {
    return { kind: 'retryable', reason: errorLabel(err) ?? 'network error' };
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}
