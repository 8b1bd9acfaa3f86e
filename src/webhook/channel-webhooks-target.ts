// Replays to the webhooks registered on the channel (workflow input `"target": {"type": "channel-webhooks"}`)
// instead of one WEBHOOK_URL. It is a WebhookSender, so the batch and deferred-replay activities use it unchanged.
//
// - Routed as Channel Talk routes (./routing.ts): an upsert whose differing fields include email or mobileNumber
//   to `member.upserted.contact` subscribers, one with a consent flag to `member.upserted.subscription`
//   subscribers, both kinds to the union (once per webhook); deletes to `member.deleted`. Each with its own token
//   (`?token=`). `lead.*` scopes are left out on purpose: they concern leads (visitors without a memberId), and a
//   backfill repairs members keyed by memberId.
// - Blocked webhooks are skipped, counted and logged (id, name and URL without its query string; never a token).
//   So are webhooks whose apiVersion is not v5 (the bodies built here are v5 users), unless `sendNonV5`.
// - Every result names the webhooks the member was routed to and the subscribers skipped (ids and names).
// - The list is cached per process for `ttlMs` (default 60 s); concurrent sends share one listing.
// - One member's delivery is delivered when every subscribed webhook accepted it. Which endpoints already accepted
//   is remembered per webhook-id in this process, so a retry only goes to the endpoints still missing. (Another
//   worker process, or this one after a restart, resends to all of them with the same webhook-id, which receivers
//   deduplicate on.) Aggregate: retryable if any endpoint is retryable; else rejected if any rejected; else delivered.
import { Agent, type Dispatcher } from 'undici';
import { BadCredentialsError } from '../channel/errors';
import { ChannelWebhooksError, MEMBER_DELETE_SCOPE, safeWebhookUrl, type ChannelWebhook } from '../channel/webhooks';
import type { ScopeDelivery, SendResult, WebhookRoute } from '../domain/types';
import { deliveriesFor, scopeDeliveries, type EventNaming, type EventNamingRule } from './deliveries';
import { isV5, routeChange, routesOf, type MemberChange } from './routing';
import {
  createWebhookSender,
  DEFAULT_TIMEOUT_MS,
  type SendInput,
  type WebhookEventNames,
  type WebhookSender,
} from './sender';

export interface ChannelWebhooksLogger {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
}

export interface ChannelWebhooksTargetOptions {
  /** The channel's registered webhooks, normally `createChannelWebhooksClient(...).list`. */
  list: (signal?: AbortSignal) => Promise<ChannelWebhook[]>;
  /** How long one listing is reused. Default 60 000 ms. */
  ttlMs?: number;
  /** Per delivery attempt to one endpoint. Default 10 000 ms. */
  timeoutMs?: number;
  /** Standard Webhooks signing secret (see ./signature.ts); every attempt to every endpoint is signed. */
  signingSecret?: string;
  extraHeaders?: Record<string, string>;
  /** Shared connection pool; by default the target owns one and `close()` closes it. */
  dispatcher?: Dispatcher;
  logger?: ChannelWebhooksLogger;
  /** ms since the epoch; for the cache and `webhook-timestamp`. Default Date.now. */
  now?: () => number;
  /** Members whose partial progress (endpoints that accepted) is remembered at most. Default 100 000. */
  maxRemembered?: number;
  /** Send v5 bodies to webhooks registered with another apiVersion too (WEBHOOK_SEND_NON_V5). Default: skip them. */
  sendNonV5?: boolean;
  /** The `event` strings of the bodies (WEBHOOK_EVENT_UPSERT / WEBHOOK_EVENT_DELETE). */
  eventNames?: WebhookEventNames;
  /** WEBHOOK_EVENT_NAMES: `scopes` sends each webhook one delivery per scope of its own (./deliveries.ts). */
  eventNaming?: EventNaming;
}

export interface ChannelWebhooksStats {
  /** Successful listings, and failed ones. */
  listings: number;
  listingFailures: number;
  /** In the latest listing: how many webhooks, and the ids of the blocked ones. */
  registered: number;
  blocked: string[];
  /** Per registered webhook id, the results of the attempts made to it. */
  perWebhook: Record<string, { delivered: number; retryable: number; rejected: number }>;
  /** Member deliveries that skipped at least one blocked webhook subscribed to their event. */
  skippedBlocked: number;
  /** Member deliveries for which no unblocked webhook subscribes to the event. */
  noSubscriber: number;
  /** In the latest listing: ids of the webhooks whose apiVersion is not v5, and member deliveries that skipped one. */
  nonV5: string[];
  skippedNonV5: number;
}

export interface ChannelWebhooksTarget extends WebhookSender {
  stats(): ChannelWebhooksStats;
  /** Where a change would go, without sending (the dry run). Throws as `send` would for bad credentials. */
  route(input: MemberChange & { signal?: AbortSignal }): Promise<WebhookRoute[]>;
  /** The deliveries per scope a change would make (scopes naming; the dry run). Throws as `route` does. */
  plan(input: MemberChange & { webhookId: string; signal?: AbortSignal }): Promise<ScopeDelivery[] | undefined>;
}

export const DEFAULT_WEBHOOK_LIST_TTL_MS = 60_000;
const DEFAULT_MAX_REMEMBERED = 100_000;

interface EndpointSender {
  url: string;
  token: string | undefined;
  scopes: string;
  sender: WebhookSender | undefined;
}

export function createChannelWebhooksTarget(o: ChannelWebhooksTargetOptions): ChannelWebhooksTarget {
  const ttlMs = o.ttlMs ?? DEFAULT_WEBHOOK_LIST_TTL_MS;
  const now = o.now ?? Date.now;
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxRemembered = o.maxRemembered ?? DEFAULT_MAX_REMEMBERED;
  const ownDispatcher = o.dispatcher ? undefined : new Agent({ connect: { timeout: timeoutMs } });
  const dispatcher: Dispatcher = o.dispatcher ?? ownDispatcher!;
  const rule: EventNamingRule = { naming: o.eventNaming ?? 'notice', noticeNames: o.eventNames ?? {} };

  let cache: { at: number; webhooks: ChannelWebhook[] } | undefined;
  let inflight: Promise<ChannelWebhook[]> | undefined;
  let lastReported: string | undefined;
  const endpoints = new Map<string, EndpointSender>();
  /** webhook-id -> (registered webhook id -> status it accepted with). */
  const accepted = new Map<string, Map<string, number>>();
  const counters = {
    listings: 0,
    listingFailures: 0,
    registered: 0,
    blocked: [] as string[],
    skippedBlocked: 0,
    noSubscriber: 0,
    nonV5: [] as string[],
    skippedNonV5: 0,
  };
  const perWebhook = new Map<string, { delivered: number; retryable: number; rejected: number }>();

  function currentList(): Promise<ChannelWebhook[]> {
    if (cache && now() - cache.at < ttlMs) return Promise.resolve(cache.webhooks);
    // The listing is shared by every member waiting on it, so no one member's signal may cancel it.
    inflight ??= o
      .list()
      .then(
        (webhooks) => {
          counters.listings += 1;
          cache = { at: now(), webhooks };
          report(webhooks);
          return webhooks;
        },
        (err: unknown) => {
          counters.listingFailures += 1;
          throw err;
        },
      )
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  }

  /** Logs the list when it differs from the last one logged. Ids, names, scopes and URLs without query strings only. */
  function report(webhooks: ChannelWebhook[]): void {
    counters.registered = webhooks.length;
    counters.blocked = webhooks.filter((w) => w.blocked === true).map((w) => w.id);
    counters.nonV5 = webhooks.filter((w) => !isV5(w)).map((w) => w.id);
    const describe = (w: ChannelWebhook) => ({
      id: w.id,
      name: w.name,
      url: safeWebhookUrl(w.url),
      scopes: w.scopes,
      blocked: w.blocked === true,
    });
    const summary = JSON.stringify(webhooks.map((w) => ({ ...describe(w), apiVersion: w.apiVersion })));
    if (summary === lastReported) return;
    lastReported = summary;
    const usable = (w: ChannelWebhook) => w.blocked !== true && (isV5(w) || o.sendNonV5 === true);
    const ids = (scope: string) =>
      webhooks.filter((w) => usable(w) && w.scopes.some((s) => s === scope || s === '*')).map((w) => w.id);
    o.logger?.info('channel webhooks listed', {
      registered: webhooks.length,
      contact: ids('member.upserted.contact'),
      subscription: ids('member.upserted.subscription'),
      deletes: ids(MEMBER_DELETE_SCOPE),
      blocked: counters.blocked,
      nonV5: counters.nonV5,
    });
    for (const w of webhooks) {
      if (w.blocked === true)
        o.logger?.warn('channel webhook is blocked by Channel Talk: replays skip it', describe(w));
      else if (!isV5(w)) {
        const what =
          o.sendNonV5 === true
            ? 'replays send it v5 bodies (WEBHOOK_SEND_NON_V5=true)'
            : 'replays skip it (WEBHOOK_SEND_NON_V5=true sends it v5 bodies)';
        o.logger?.warn(`channel webhook's apiVersion is not v5: ${what}`, {
          ...describe(w),
          apiVersion: w.apiVersion ?? null,
        });
      }
    }
  }

  function endpointFor(w: ChannelWebhook): WebhookSender | undefined {
    const known = endpoints.get(w.id);
    const scopes = JSON.stringify(w.scopes);
    if (known && known.url === w.url && known.token === w.token && known.scopes === scopes) return known.sender;
    let sender: WebhookSender | undefined;
    try {
      sender = createWebhookSender({
        url: w.url,
        token: w.token,
        timeoutMs,
        dispatcher,
        extraHeaders: o.extraHeaders,
        signingSecret: o.signingSecret,
        now,
        eventNames: o.eventNames,
        eventNaming: rule.naming,
        // Each registered webhook gets the deliveries of the scopes it subscribes to, and only those.
        scopes: w.scopes,
      });
    } catch {
      sender = undefined; // an unusable URL: every member due to this webhook is rejected, see below
    }
    endpoints.set(w.id, { url: w.url, token: w.token, scopes, sender });
    return sender;
  }

  function count(id: string, kind: SendResult['kind']): void {
    const c = perWebhook.get(id) ?? { delivered: 0, retryable: 0, rejected: 0 };
    c[kind] += 1;
    perWebhook.set(id, c);
  }

  function remember(webhookId: string, progress: Map<string, number>): void {
    accepted.delete(webhookId);
    accepted.set(webhookId, progress);
    // Oldest first: a member stuck retrying long enough to be forgotten is merely resent to every endpoint.
    while (accepted.size > maxRemembered) {
      const oldest = accepted.keys().next().value;
      if (oldest === undefined) break;
      accepted.delete(oldest);
    }
  }

  async function listed(
    signal: AbortSignal | undefined,
  ): Promise<ChannelWebhook[] | Extract<SendResult, { kind: 'retryable' }>> {
    signal?.throwIfAborted();
    try {
      return await untilAborted(currentList(), signal);
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      if (err instanceof BadCredentialsError) throw err; // the run pauses, as for a lookup
      return {
        kind: 'retryable',
        reason: err instanceof ChannelWebhooksError ? err.message : "listing the channel's webhooks failed",
      };
    }
  }

  async function route(input: MemberChange & { signal?: AbortSignal }): Promise<WebhookRoute[]> {
    const webhooks = await listed(input.signal);
    if (!Array.isArray(webhooks)) throw new ChannelWebhooksError(webhooks.reason);
    return routesOf(routeChange(webhooks, input, { sendNonV5: o.sendNonV5 }));
  }

  /** A member's deliveries per scope over the webhooks it is routed to (undefined for the notice naming). */
  function deliveriesOver(
    targets: readonly ChannelWebhook[],
    change: MemberChange,
    webhookId: string,
  ): ScopeDelivery[] | undefined {
    return scopeDeliveries(
      webhookId,
      targets.map((w) => deliveriesFor(change, w.scopes, rule)),
      rule,
    );
  }

  async function plan(input: MemberChange & { webhookId: string; signal?: AbortSignal }) {
    const webhooks = await listed(input.signal);
    if (!Array.isArray(webhooks)) throw new ChannelWebhooksError(webhooks.reason);
    return deliveriesOver(routeChange(webhooks, input, { sendNonV5: o.sendNonV5 }).targets, input, input.webhookId);
  }

  async function send(input: SendInput): Promise<SendResult> {
    const { signal } = input;
    const webhooks = await listed(signal);
    if (!Array.isArray(webhooks)) return webhooks;

    const change: MemberChange = { event: input.payload.event, fields: input.fields };
    const routing = routeChange(webhooks, change, { sendNonV5: o.sendNonV5 });
    const planned = deliveriesOver(routing.targets, change, input.webhookId);
    const routes = routesOf(routing);
    const routed = planned ? { webhooks: routes, deliveries: planned } : { webhooks: routes };
    const label = routing.scopes.join(' + ');
    const active = routing.targets;
    const blocked = routing.skipped.filter((s) => s.reason === 'blocked').map((s) => s.webhook);
    const oldVersion = routing.skipped.filter((s) => s.reason === 'api-version').map((s) => s.webhook);
    if (blocked.length > 0) counters.skippedBlocked += 1;
    if (oldVersion.length > 0) counters.skippedNonV5 += 1;
    if (active.length === 0) {
      counters.noSubscriber += 1;
      accepted.delete(input.webhookId);
      const why = [
        ...(blocked.length > 0 ? [`blocked (${blocked.map((w) => w.id).join(', ')})`] : []),
        ...(oldVersion.length > 0
          ? [
              `not v5 and skipped (${oldVersion.map((w) => w.id).join(', ')}; WEBHOOK_SEND_NON_V5=true sends them v5 bodies)`,
            ]
          : []),
      ];
      const reason =
        why.length > 0
          ? `every registered webhook subscribed to ${label} is ${why.join(' or ')}`
          : `no registered webhook subscribes to ${label}`;
      return { kind: 'rejected', status: 0, reason, ...routed };
    }

    const progress = new Map(accepted.get(input.webhookId) ?? []);
    const pending = active.filter((w) => !progress.has(w.id));
    const settled = await Promise.allSettled(
      pending.map(async (w): Promise<SendResult> => {
        const sender = endpointFor(w);
        if (!sender) return { kind: 'rejected', status: 0, reason: 'unusable URL' };
        return sender.send({ webhookId: input.webhookId, payload: input.payload, fields: input.fields, signal });
      }),
    );
    const retryable: Array<{ id: string; result: Extract<SendResult, { kind: 'retryable' }> }> = [];
    const rejected: Array<{ id: string; result: Extract<SendResult, { kind: 'rejected' }> }> = [];
    settled.forEach((s, i) => {
      const id = pending[i]!.id;
      if (s.status === 'rejected') return; // only an abort of the caller's signal throws; handled below
      count(id, s.value.kind);
      if (s.value.kind === 'delivered') progress.set(id, s.value.status);
      else if (s.value.kind === 'retryable') retryable.push({ id, result: s.value });
      else rejected.push({ id, result: s.value });
    });
    if (signal?.aborted) {
      // Whatever did get through is kept, so the redo does not resend it from this process.
      if (progress.size > 0) remember(input.webhookId, progress);
      throw signal.reason;
    }
    const firstThrown = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (firstThrown) throw firstThrown.reason;

    const of = `${active.length} subscribed webhook${active.length === 1 ? '' : 's'}`;
    if (retryable.length > 0) {
      remember(input.webhookId, progress);
      const waits = retryable.map((r) => r.result.retryAfterMs).filter((ms): ms is number => ms !== undefined);
      const first = retryable[0]!.result;
      const result: SendResult = {
        kind: 'retryable',
        reason: `not delivered to ${retryable.length + rejected.length} of ${of}: ${describeFailures([...retryable, ...rejected])}`,
      };
      if (first.status !== undefined) result.status = first.status;
      if (waits.length > 0) result.retryAfterMs = Math.max(...waits);
      return Object.assign(result, routed);
    }
    accepted.delete(input.webhookId);
    if (rejected.length > 0) {
      return {
        kind: 'rejected',
        status: rejected[0]!.result.status,
        reason: `rejected by ${rejected.length} of ${of}: ${describeFailures(rejected)}`,
        ...routed,
      };
    }
    return { kind: 'delivered', status: Math.max(...progress.values()), ...routed };
  }

  return {
    send,
    route,
    plan,
    stats: () => ({
      ...counters,
      blocked: [...counters.blocked],
      nonV5: [...counters.nonV5],
      perWebhook: Object.fromEntries([...perWebhook].map(([k, v]) => [k, { ...v }])),
    }),
    async close() {
      await ownDispatcher?.close();
    },
  };
}

/** `wh-1 HTTP 503; wh-2 ECONNREFUSED`: webhook ids and the senders' own safe reasons (statuses, error codes). */
function describeFailures(failures: Array<{ id: string; result: { reason: string } }>): string {
  return failures.map((f) => `webhook ${f.id} ${f.result.reason}`).join('; ');
}

/** Waits for a shared promise, giving up (with the signal's reason) when this caller's signal aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
