import { Agent, type Dispatcher } from 'undici';
import { z } from 'zod';
import { errorLabel } from '../http/error-label';
import { requestDeadline } from '../http/request-deadline';
import { parseRetryAfterMs } from '../http/retry-after';
import type { ComparedField, ScopeDelivery, SendResult, WebhookEvent, WebhookRoute } from '../domain/types';
import {
  deliveriesFor,
  deliveryWebhookId,
  MEMBER_SCOPES,
  scopeDeliveries,
  type Delivery,
  type EventNaming,
  type EventNamingRule,
  type WebhookEventNames,
} from './deliveries';
import type { ReplayPayload } from './payload';
import { scopesForChange, type MemberChange } from './routing';
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
  /** WEBHOOK_EVENT_NAMES: `notice` (default, `eventNames`) or `scopes` (one delivery per scope, see ./deliveries.ts). */
  eventNaming?: EventNaming;
  /** The scopes this endpoint stands for (WEBHOOK_URL_SCOPES; a registered webhook's own). Default all member scopes. */
  scopes?: readonly string[];
  /** Members whose partly accepted deliveries (scopes naming) are remembered at most. Default 100 000. */
  maxRemembered?: number;
}

/** Channel Talk does not confirm the `event` strings of user webhooks: see docs/channel-talk-unconfirmed.md. */
export type { WebhookEventNames } from './deliveries';

/** One member's replay: its webhook-id, its body, an upsert's differing fields (they route it), the caller's signal. */
export interface SendInput {
  webhookId: string;
  payload: ReplayPayload;
  fields?: readonly ComparedField[];
  signal?: AbortSignal;
}

export interface WebhookSender {
  /**
   * One POST, no retries (the caller owns retry policy). Never throws for HTTP or network failures;
   * rethrows only when the caller's own `signal` aborts, so cancellation propagates as cancellation.
   * `fields`: an upsert's differing fields, which a channel-webhooks target routes by (a plain URL ignores them).
   */
  send(input: SendInput): Promise<SendResult>;
  /** Where a change would go, without sending: a channel-webhooks target has it (the dry run records it). */
  route?(input: {
    event: WebhookEvent;
    fields?: readonly ComparedField[];
    signal?: AbortSignal;
  }): Promise<WebhookRoute[]>;
  /**
   * The deliveries a change would make, per scope, without sending (the dry run records them): undefined for the
   * notice naming, whose one delivery per endpoint the entry's `event` and `webhookId` already say.
   */
  plan?(input: MemberChange & { webhookId: string; signal?: AbortSignal }): Promise<ScopeDelivery[] | undefined>;
  close(): Promise<void>;
}

/** A replay's body as sent: its `event` named by the delivery. */
type SentBody = Omit<ReplayPayload, 'event'> & { event: string };

export const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_REMEMBERED = 100_000;
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
  const rule: EventNamingRule = { naming: o.eventNaming ?? 'notice', noticeNames: o.eventNames ?? {} };
  const scopes = o.scopes ?? MEMBER_SCOPES;
  const maxRemembered = o.maxRemembered ?? DEFAULT_MAX_REMEMBERED;
  /** Delivery webhook-id -> the status it was accepted with, while another delivery of its member is missing. */
  const accepted = new Map<string, number>();

  /** One POST of one delivery. */
  function post(webhookId: string, payload: SentBody, signal: AbortSignal | undefined): Promise<SendResult> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    // The bytes signed are the bytes sent.
    let body: Buffer;
    const headers: Record<string, string> = {
      ...extraHeaders,
      'content-type': 'application/json',
      'webhook-id': webhookId,
      'user-agent': USER_AGENT,
    };
    try {
      body = Buffer.from(JSON.stringify(payload), 'utf8');
      if (sign) {
        const timestamp = Math.floor(now() / 1000);
        headers['webhook-timestamp'] = String(timestamp);
        headers['webhook-signature'] = sign(webhookId, timestamp, body);
      }
    } catch (err) {
      return Promise.resolve({ kind: 'retryable', reason: errorLabel(err) ?? 'network error' });
    }
    return exchange({ origin: target.origin, path: target.path, method: 'POST', headers, body }, signal);
  }

  /**
   * One POST through undici's `request`: the verdict is the status, whatever happens while the answer's body is
   * drained (a body over the limit closes the connection instead); before a status, a failure is retryable (timeout,
   * or the network error's code), or the caller's abort reason when the caller aborted.
   */
  async function exchange(request: Dispatcher.RequestOptions, signal: AbortSignal | undefined): Promise<SendResult> {
    const deadline = requestDeadline(timeoutMs, signal);
    try {
      const res = await dispatcher.request({ ...request, signal: deadline.signal });
      const retryAfter = res.headers['retry-after'];
      const result = classifyStatus(res.statusCode, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
      try {
        // Not `.catch()`: one promise fewer. Whatever happens to the body, the status stands.
        await res.body.dump({ limit: RESPONSE_DUMP_LIMIT_BYTES });
      } catch {
        // A body that fails or runs over the limit closes its connection instead of returning it to the pool.
      }
      return result;
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (deadline.timedOut) return { kind: 'retryable', reason: `timeout after ${timeoutMs}ms` };
      return { kind: 'retryable', reason: errorLabel(err) ?? 'network error' };
    } finally {
      deadline.clear();
    }
  }

  /**
   * Not an async function: a replay's one delivery (the notice naming) is the POST's own promise, not one wrapped
   * in two more (with AsyncLocalStorage active, as in a Temporal worker, every promise pays an async hook). What
   * throws becomes a rejection, as from an async function.
   */
  function send(input: SendInput): Promise<SendResult> {
    try {
      const change: MemberChange = { event: input.payload.event, fields: input.fields };
      const deliveries = deliveriesFor(change, scopes, rule);
      const planned = scopeDeliveries(input.webhookId, [deliveries], rule);
      const withPlanned = (result: SendResult): SendResult => (planned ? { ...result, deliveries: planned } : result);
      if (deliveries.length === 0) {
        const reason = `the endpoint stands for ${scopes.join(', ')}: none of ${scopesForChange(change).join(' + ')}`;
        return Promise.resolve(withPlanned({ kind: 'rejected', status: 0, reason }));
      }
      const sent =
        deliveries.length === 1
          ? post(
              deliveryWebhookId(input.webhookId, deliveries[0]!),
              bodyOf(deliveries[0]!, input.payload),
              input.signal,
            )
          : sendAll(input.webhookId, deliveries, input.payload, input.signal);
      return planned ? sent.then(withPlanned) : sent;
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Each delivery in turn (more than one: scopes naming). The ones accepted are remembered until the member's
   * last is, so a retry sends only what is missing (another process resends all of them, with the same ids).
   * Aggregate: retryable if any is; else rejected if any is; else delivered.
   */
  async function sendAll(
    memberWebhookId: string,
    deliveries: readonly Delivery[],
    payload: ReplayPayload,
    signal: AbortSignal | undefined,
  ): Promise<SendResult> {
    const ids = deliveries.map((d) => deliveryWebhookId(memberWebhookId, d));
    let retryable: Extract<SendResult, { kind: 'retryable' }> | undefined;
    let rejected: Extract<SendResult, { kind: 'rejected' }> | undefined;
    for (const [i, d] of deliveries.entries()) {
      const id = ids[i]!;
      if (accepted.has(id)) continue;
      const result = await post(id, bodyOf(d, payload), signal);
      if (result.kind === 'delivered') remember(id, result.status);
      else if (result.kind === 'retryable') retryable ??= { ...result, reason: `${d.event}: ${result.reason}` };
      else rejected ??= { ...result, reason: `${d.event}: ${result.reason}` };
    }
    if (retryable) return retryable;
    const statuses = ids.map((id) => accepted.get(id));
    for (const id of ids) accepted.delete(id);
    if (rejected) return rejected;
    return { kind: 'delivered', status: Math.max(...statuses.map((s) => s ?? 0)) };
  }

  function remember(id: string, status: number): void {
    accepted.set(id, status);
    // Oldest first: a member stuck retrying long enough to be forgotten is merely resent whole.
    while (accepted.size > maxRemembered) {
      const oldest = accepted.keys().next().value;
      if (oldest === undefined) break;
      accepted.delete(oldest);
    }
  }

  return {
    send,
    async plan(input) {
      return scopeDeliveries(input.webhookId, [deliveriesFor(input, scopes, rule)], rule);
    },
    async close() {
      await ownDispatcher?.close();
    },
  };
}

/** A delivery's body: the replay's own when the delivery names its event, else a copy naming the delivery's. */
function bodyOf(delivery: Delivery, payload: ReplayPayload): SentBody {
  return delivery.event === payload.event ? payload : { ...payload, event: delivery.event };
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

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}
