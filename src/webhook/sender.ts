import { Agent, type Dispatcher } from 'undici';
import { z } from 'zod';
import { DispatchExchange, runExchange, type ResponseHeaders } from '../http/dispatch-exchange';
import { errorLabel } from '../http/error-label';
import type { SendResult } from '../types';
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
}

export interface WebhookSender {
  /**
   * One POST, no retries (the caller owns retry policy). Never throws for HTTP or network failures;
   * rethrows only when the caller's own `signal` aborts, so cancellation propagates as cancellation.
   */
  send(input: { webhookId: string; payload: ReplayPayload; signal?: AbortSignal }): Promise<SendResult>;
  close(): Promise<void>;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
const USER_AGENT = 'webhook-backfill';
// Bodies of webhook answers are irrelevant; read a little so keep-alive sockets can be reused, then drop.
const RESPONSE_DUMP_LIMIT_BYTES = 64 * 1024;

const optionsSchema = z.object({
  url: z
    .string()
    .refine((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), 'must be an http(s) URL'),
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

  function send(input: { webhookId: string; payload: ReplayPayload; signal?: AbortSignal }): Promise<SendResult> {
    if (input.signal?.aborted) return Promise.reject(input.signal.reason);
    // The bytes signed are the bytes sent.
    let body: Buffer;
    const headers: Record<string, string> = { ...extraHeaders, 'content-type': 'application/json', 'webhook-id': input.webhookId, 'user-agent': USER_AGENT };
    try {
      body = Buffer.from(JSON.stringify(input.payload), 'utf8');
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
    return retryAfterMs === undefined ? { kind: 'retryable', status, reason } : { kind: 'retryable', status, retryAfterMs, reason };
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

/** Origin and request path (query included) of the URL that is POSTed to, as undici derives them from it. */
function targetOf(url: string, token: string | undefined): { origin: string; path: string } {
  const u = new URL(url);
  if (token !== undefined) u.searchParams.set('token', token);
  return { origin: u.origin, path: u.search ? `${u.pathname}${u.search}` : u.pathname };
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

