// Lists the channel's registered webhooks: `GET /open/v5/webhooks?limit=500[&since=<next>]`, following `next`
// until the last page. Shape (Channel Talk's OpenAPI, `WebhooksView` / `webhook.Webhook`):
//   { webhooks: [{ id, channelId, name, url, token, createdAt, scopes: [...], apiVersion, lastBlockedAt, blocked }],
//     next?: <createdAt of the next page's first webhook> }
// Every webhook carries its own token: nothing this module returns in an error or reason ever holds a token, a
// URL's query string or a response body.
import { Agent, request, type Dispatcher } from 'undici';
import { z } from 'zod';
import type { ChannelPacer, RateHeaders } from './channel-pacer';
import { heedRateHeaders, rateLimitWaitMs } from './client';
import { withRetries, type AttemptResult, type RetryPolicy } from './retry';
import { invalidAt, issueAt } from './zod-issue';
import { errorLabel } from '../http/error-label';
import { BadCredentialsError } from './errors';

/** The user-related scopes (Channel Talk also has `lead.*` twins, which concern leads, not members). */
export const MEMBER_UPSERT_SCOPES = ['member.upserted.contact', 'member.upserted.subscription'] as const;
export const MEMBER_DELETE_SCOPE = 'member.deleted';

/** A field only reported (never routed on): kept when it is what the spec says, dropped otherwise, never a failure. */
const reported = <T extends z.ZodType>(schema: T) =>
  z
    .unknown()
    .transform((v) => {
      const parsed = schema.safeParse(v);
      return parsed.success ? (parsed.data as z.output<T>) : undefined;
    })
    .optional();

// What routing and delivery use must parse (id, url, token, scopes, blocked); `name`, `apiVersion` and
// `createdAt` may be null, missing or odd without making the whole list unreadable. A webhook without a usable
// apiVersion counts as not v5 (see ../webhook/routing.ts).
export const channelWebhookSchema = z.object({
  id: z.string().min(1),
  name: reported(z.string()),
  url: z.string().min(1),
  token: z
    .string()
    .nullish()
    .transform((v) => v ?? undefined)
    .optional(),
  // Unknown scopes are kept as strings: a scope added later must not make the whole list unreadable.
  scopes: z
    .array(z.string())
    .nullish()
    .transform((v) => v ?? []),
  apiVersion: reported(z.string()),
  // null = not blocked, as absent.
  blocked: z
    .boolean()
    .nullish()
    .transform((v) => v ?? undefined)
    .optional(),
  createdAt: reported(z.number()),
});
export type ChannelWebhook = z.infer<typeof channelWebhookSchema>;

export const webhooksPageSchema = z.object({
  webhooks: z.array(channelWebhookSchema),
  // int64 in the spec; tolerate a string cursor too, and null for "no more pages".
  next: z.union([z.number(), z.string()]).nullish(),
});

/** Listing failed for a reason other than bad credentials (which throw BadCredentialsError). The message is safe to log. */
export class ChannelWebhooksError extends Error {
  override name = 'ChannelWebhooksError';
}

export interface ChannelWebhooksClientOptions {
  /** e.g. https://api.channel.io */
  baseUrl: string;
  accessKey: string;
  accessSecret: string;
  /** Attempts per page for 5xx, network errors, timeouts and malformed bodies. Default 5. */
  maxAttempts?: number;
  /** Per request. Default 10 000. */
  timeoutMs?: number;
  /** 429s waited through per listing before it fails. Default 10. */
  max429Waits?: number;
  /** Page size, 1..500 (the API's maximum, and default here). */
  pageSize?: number;
  /** A listing longer than this many pages fails rather than replaying to a partial list. Default 100. */
  maxPages?: number;
  backoff?: { initialMs?: number; maxMs?: number };
  /**
   * The worker's pacer (channel-pacer.ts): each page waits for it and its answer's rate-limit headers feed it, as
   * every lookup's do, so the listing draws from the channel's budget with the rest of the worker. Default: none.
   */
  pacer?: ChannelPacer;
  dispatcher?: Dispatcher;
}

export interface ChannelWebhooksClient {
  /** Every registered webhook, all pages, deduplicated by id. Throws BadCredentialsError or ChannelWebhooksError. */
  list(signal?: AbortSignal): Promise<ChannelWebhook[]>;
  close(): Promise<void>;
}

type PageOutcome =
  | { kind: 'page'; webhooks: ChannelWebhook[]; next: string | undefined }
  | { kind: 'rate-limited'; waitMs: number | undefined }
  | { kind: 'retryable'; reason: string }
  | { kind: 'final'; reason: string };

export function createChannelWebhooksClient(o: ChannelWebhooksClientOptions): ChannelWebhooksClient {
  const url = new URL(o.baseUrl);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new TypeError(`baseUrl must be http(s), got ${url.protocol}`);
  const baseUrl = o.baseUrl.replace(/\/+$/, '');
  const policy: RetryPolicy = {
    maxAttempts: o.maxAttempts ?? 5,
    max429Waits: o.max429Waits ?? 10,
    backoff: { initialMs: o.backoff?.initialMs ?? 200, maxMs: o.backoff?.maxMs ?? 10_000 },
  };
  const timeoutMs = o.timeoutMs ?? 10_000;
  const pageSize = o.pageSize ?? 500;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 500)
    throw new RangeError(`pageSize must be 1..500, got ${pageSize}`);
  const maxPages = o.maxPages ?? 100;
  const ownDispatcher = o.dispatcher ? undefined : new Agent({ keepAliveTimeout: 10_000 });
  const dispatcher: Dispatcher = o.dispatcher ?? ownDispatcher!;
  const headers = { 'x-access-key': o.accessKey, 'x-access-secret': o.accessSecret, accept: 'application/json' };

  async function fetchPage(since: string | undefined, signal: AbortSignal | undefined): Promise<PageOutcome> {
    const query = new URLSearchParams({ limit: String(pageSize) });
    if (since !== undefined) query.set('since', since);
    if (signal?.aborted) throw signal.reason;
    await o.pacer?.acquire(signal);
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let seen: RateHeaders | undefined;
    try {
      const res = await request(`${baseUrl}/open/v5/webhooks?${query}`, {
        method: 'GET',
        headers,
        dispatcher,
        signal: combined,
      });
      const status = res.statusCode;
      seen = heedRateHeaders(status, res.headers, { pacer: o.pacer, fallbackMs: policy.backoff.initialMs });
      if (status >= 200 && status < 300) return parsePage(await res.body.text());
      await res.body.dump().catch(() => undefined);
      if (status === 401 || status === 403) throw new BadCredentialsError(status);
      if (status === 429) return { kind: 'rate-limited', waitMs: rateLimitWaitMs(res.headers, Date.now()) };
      if (status >= 500 || status === 408) return { kind: 'retryable', reason: `HTTP ${status}` };
      return { kind: 'final', reason: `HTTP ${status}` };
    } catch (err) {
      if (err instanceof BadCredentialsError) throw err;
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted) return { kind: 'retryable', reason: 'timeout' };
      return { kind: 'retryable', reason: `network error (${errorLabel(err) ?? 'unknown'})` };
    } finally {
      o.pacer?.observe(seen ?? { warned: false, rateLimited: false });
    }
  }

  async function pageWithRetries(
    since: string | undefined,
    signal: AbortSignal | undefined,
    rateLimited: { n: number },
  ): Promise<{ webhooks: ChannelWebhook[]; next: string | undefined }> {
    const failed = (reason: string) => new ChannelWebhooksError(`listing the channel's webhooks failed: ${reason}`);
    const result = await withRetries(
      async (): Promise<AttemptResult<{ webhooks: ChannelWebhook[]; next: string | undefined }>> => {
        const outcome = await fetchPage(since, signal);
        if (outcome.kind === 'final') throw failed(outcome.reason);
        return outcome.kind === 'page' ? { kind: 'done', value: outcome } : outcome;
      },
      policy,
      // A 429 holds the whole worker, as a lookup's does.
      { signal, rateLimited, holdFor: (waitMs) => o.pacer?.holdUntil(Date.now() + waitMs) },
    );
    if (result.kind === 'gave-up') throw failed(result.reason);
    return result.value;
  }

  return {
    async list(signal) {
      const byId = new Map<string, ChannelWebhook>();
      const rateLimited = { n: 0 };
      const seenCursors = new Set<string>();
      let since: string | undefined;
      for (let page = 1; ; page++) {
        if (page > maxPages)
          throw new ChannelWebhooksError(`listing the channel's webhooks failed: more than ${maxPages} pages`);
        const { webhooks, next } = await pageWithRetries(since, signal, rateLimited);
        for (const w of webhooks) if (!byId.has(w.id)) byId.set(w.id, w);
        // No cursor, an empty page or a cursor seen before (a server that repeats itself) all end the listing.
        if (next === undefined || webhooks.length === 0 || seenCursors.has(next)) break;
        seenCursors.add(next);
        since = next;
      }
      return [...byId.values()];
    },
    async close() {
      await ownDispatcher?.close();
    },
  };
}

function parsePage(text: string): PageOutcome {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { kind: 'retryable', reason: 'malformed response: invalid JSON' };
  }
  const parsed = webhooksPageSchema.safeParse(json);
  // The same answer again would not parse either: fail at once rather than spend the retries.
  if (!parsed.success) return { kind: 'final', reason: `malformed response: ${invalidAt(issueAt(parsed.error))}` };
  const { next } = parsed.data;
  return {
    kind: 'page',
    webhooks: parsed.data.webhooks,
    next: next === null || next === undefined || next === '' ? undefined : String(next),
  };
}

/** `https://host/path` of a webhook URL: no credentials, no query string (which may hold a token), no fragment. */
export function safeWebhookUrl(url: string): string {
  if (!URL.canParse(url)) return '(invalid URL)';
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}
