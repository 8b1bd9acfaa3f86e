// A fake Channel Talk Open API (`GET /open/v5/users/@{memberId}` and `GET /open/v5/webhooks`) for the demo, tests
// and benchmarks.
// It reproduces what the repair must cope with: credentials checks, a per-channel token bucket answering 429,
// and per-member faults (dropped connections, 503s, truncated bodies, slow answers, fixed statuses).
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { channelUserCheck } from '../../src/channel/user-schema';
import type { ChannelWebhook } from '../../src/channel/webhooks';
import type { ChannelUser } from '../../src/domain/types';

export interface ChannelFault {
  /** Destroy the socket without answering, this many times. */
  reset?: number;
  /** Then answer 503 this many times. */
  status5xx?: number;
  /** Then answer 200 with a truncated, non-JSON body this many times. */
  malformed?: number;
  /** Delay every answer for this member. */
  delayMs?: number;
  /** Once the counters above are used up, answer this status forever (e.g. 500). */
  status?: number;
}

/**
 * A change on Channel Talk's side while a repair runs (its own webhooks flow again): some time after the member's
 * first answered lookup, the user is replaced (or deleted) and Channel Talk's own live webhook is POSTed.
 */
export interface UserChange {
  /** How long after the first answered lookup of the member. */
  afterMs: number;
  /** The user from then on; null: deleted (lookups answer 404). */
  user: ChannelUser | null;
  /** Where Channel Talk's live webhook goes (`{event: "upsert"|"delete", type: "user", entity}`, no webhook-id). */
  liveWebhookUrl?: string;
}

export interface ChannelSimulatorOptions {
  /** Served by memberId; an absent memberId answers 404 notFoundError. */
  users: ChannelUser[];
  /**
   * Consulted for a memberId not in `users` (e.g. a lazily generated data set of a million members that need
   * not sit in an array); undefined answers 404.
   */
  lookupUser?: (memberId: string) => ChannelUser | undefined;
  /** Both headers must match, else 401. */
  accessKey: string;
  accessSecret: string;
  /** Token bucket: capacity `burst` (default perSecond), refilled perSecond per second; excess answers 429. */
  rateLimit?: { perSecond: number; burst?: number };
  /** Default true: send Retry-After on 429 (false = only the x-ratelimit-* headers). */
  retryAfter?: boolean;
  /**
   * Channel Talk's grace period: a call over the limit still succeeds, carrying `x-ratelimit-will-be-throttled:
   * true`, instead of a 429. Default false (enforcement).
   */
  grace?: boolean;
  /**
   * More credentials of the same channel (the customer's own production code): accepted like the job's, drawing
   * from the same bucket, and counted apart, in `stats().others`, so the job's counts stay the job's.
   */
  otherCredentials?: Array<{ accessKey: string; accessSecret: string }>;
  /** Per memberId. */
  faults?: Record<string, ChannelFault>;
  /** Per memberId: a change applied after its first answered lookup. */
  changes?: Record<string, UserChange>;
  /**
   * Registered webhooks served by `GET /open/v5/webhooks` (newest first by createdAt, `limit` 1..500 default 25,
   * `since` = createdAt of the first one to return, `next` = createdAt of the next page's first). Webhooks without
   * createdAt get distinct ones in the order given.
   */
  webhooks?: ChannelWebhook[];
  /** The channel `GET /open/v5/channel` answers for these credentials. Default id "1", name "Simulated channel". */
  channel?: { id: string; name?: string | null };
  /**
   * Default true: count requests per memberId (`stats().byMember`). The benchmark turns it off: at ten million
   * members the map alone would be gigabytes in the process whose CPU it shares with what it measures.
   */
  countPerMember?: boolean;
  port?: number;
  host?: '127.0.0.1';
}

export interface ChannelSimulatorStats {
  /** Every request except `GET /open/v5/channel` (counted in `channelInfo`). */
  requests: number;
  ok: number;
  notFound: number;
  rateLimited: number;
  unauthorized: number;
  faults: number;
  /** Requests per memberId that reached the user route (empty with `countPerMember: false`). */
  byMember: Map<string, number>;
  /** Most requests admitted (authorised and not 429'd) in any one-second fixed window. */
  maxPerSecond: number;
  /** Requests that reached the webhooks route (any answer). */
  webhookLists: number;
  /** Requests that reached `GET /open/v5/channel` (any answer). */
  channelInfo: number;
  /** Over-limit calls admitted in the grace period (they carried x-ratelimit-will-be-throttled: true). */
  throttleWarnings: number;
  /** The requests made with `otherCredentials`, by answer: none of them is in the counts above. */
  others: { requests: number; ok: number; rateLimited: number; throttleWarnings: number };
}

export interface ChannelSimulator {
  /** http://127.0.0.1:PORT */
  url: string;
  stats(): ChannelSimulatorStats;
  /** Revoke or restore credentials mid-run. */
  setCredentials(key: string, secret: string): void;
  /** Replaces all faults, with fresh counters. */
  setFaults(faults: Record<string, ChannelFault>): void;
  /** Replaces the rate limit (bucket starts full); undefined removes it. */
  setRateLimit(r?: { perSecond: number; burst?: number }): void;
  /** Switches the grace period on or off (see the option). */
  setGrace(grace: boolean): void;
  /** Replaces the registered webhooks. */
  setWebhooks(webhooks: ChannelWebhook[]): void;
  /** Replaces the changes to apply after a member's first lookup (members already looked up wait for their next). */
  setChanges(changes: Record<string, UserChange>): void;
  /** Replaces (or, with null, deletes) a user now. */
  setUser(memberId: string, user: ChannelUser | null): void;
  /** The user Channel Talk holds now (undefined: none). */
  user(memberId: string): ChannelUser | undefined;
  /** Members whose change was applied, in order, with the time (and the live webhook's answer status, if sent). */
  changesApplied(): Array<{ memberId: string; at: number; liveStatus?: number }>;
  close(): Promise<void>;
}

const USER_ROUTE = /^\/open\/v5\/users\/@(.+)$/;
const WEBHOOKS_ROUTE = '/open/v5/webhooks';
const CHANNEL_ROUTE = '/open/v5/channel';
const WEBHOOK_PAGE_DEFAULT = 25;
const WEBHOOK_PAGE_MAX = 500;

/** Newest first, each with a distinct createdAt so `since`/`next` pagination is well defined. */
function toWebhookList(webhooks: ChannelWebhook[] | undefined): Array<ChannelWebhook & { createdAt: number }> {
  const base = 1_730_000_000_000;
  return (webhooks ?? [])
    .map((w, i) => ({ ...w, createdAt: w.createdAt ?? base - i }))
    .sort((a, b) => b.createdAt - a.createdAt);
}

interface FaultState {
  reset: number;
  status5xx: number;
  malformed: number;
  delayMs: number;
  status: number | undefined;
}

type FaultAction = 'reset' | 'status5xx' | 'malformed' | 'status' | undefined;

/** Consumes one fault for this request, in the documented order. */
function takeFault(state: FaultState | undefined): FaultAction {
  if (!state) return undefined;
  if (state.reset > 0) {
    state.reset -= 1;
    return 'reset';
  }
  if (state.status5xx > 0) {
    state.status5xx -= 1;
    return 'status5xx';
  }
  if (state.malformed > 0) {
    state.malformed -= 1;
    return 'malformed';
  }
  return state.status === undefined ? undefined : 'status';
}

function toFaultStates(faults: Record<string, ChannelFault> | undefined): Map<string, FaultState> {
  const states = new Map<string, FaultState>();
  for (const [memberId, f] of Object.entries(faults ?? {})) {
    states.set(memberId, {
      reset: f.reset ?? 0,
      status5xx: f.status5xx ?? 0,
      malformed: f.malformed ?? 0,
      delayMs: f.delayMs ?? 0,
      status: f.status,
    });
  }
  return states;
}

/** Channel Talk's per-channel bucket, as the unofficial sources describe it. */
class TokenBucket {
  private tokens: number;
  private refilledAt = Date.now();
  readonly capacity: number;

  constructor(
    readonly perSecond: number,
    burst: number | undefined,
  ) {
    if (!(perSecond > 0)) throw new RangeError(`rateLimit.perSecond must be > 0, got ${perSecond}`);
    this.capacity = Math.max(1, burst ?? perSecond);
    this.tokens = this.capacity;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond);
    this.refilledAt = now;
  }

  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** ms until one whole token is available (0 if one is now). */
  msUntilToken(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : ((1 - this.tokens) / this.perSecond) * 1000;
  }

  headers(now: number): Record<string, string> {
    const waitMs = this.msUntilToken(now);
    return {
      'x-ratelimit-limit': String(this.capacity),
      'x-ratelimit-remaining': String(Math.floor(this.tokens)),
      // When the next request will be admitted, in epoch seconds rounded up so waiting until it is enough.
      'x-ratelimit-reset': String(Math.ceil((now + waitMs) / 1000)),
    };
  }
}

export async function startChannelSimulator(o: ChannelSimulatorOptions): Promise<ChannelSimulator> {
  const users = new Map<string, ChannelUser>();
  for (const user of o.users) if (typeof user.memberId === 'string') users.set(user.memberId, user);
  let accessKey = o.accessKey;
  let accessSecret = o.accessSecret;
  let bucket = o.rateLimit ? new TokenBucket(o.rateLimit.perSecond, o.rateLimit.burst) : undefined;
  const sendRetryAfter = o.retryAfter ?? true;
  let grace = o.grace ?? false;
  const others = new Map((o.otherCredentials ?? []).map((c) => [c.accessKey, c.accessSecret]));
  let faults = toFaultStates(o.faults);
  let webhooks = toWebhookList(o.webhooks);
  let changes = new Map(Object.entries(o.changes ?? {}));
  const applied: Array<{ memberId: string; at: number; liveStatus?: number }> = [];
  const changeTimers = new Set<NodeJS.Timeout>();
  const deleted = new Set<string>();

  const stats = {
    requests: 0,
    ok: 0,
    notFound: 0,
    rateLimited: 0,
    unauthorized: 0,
    faults: 0,
    maxPerSecond: 0,
    webhookLists: 0,
    channelInfo: 0,
    throttleWarnings: 0,
  };
  const otherStats = { requests: 0, ok: 0, rateLimited: 0, throttleWarnings: 0 };
  const channel = {
    id: o.channel?.id ?? '1',
    name: o.channel?.name === undefined ? 'Simulated channel' : o.channel.name,
  };
  const byMember = new Map<string, number>();
  let windowSecond = -1;
  let windowCount = 0;

  // Delayed answers still pending, so close() can cut them short instead of waiting them out.
  const pendingDelays = new Set<() => void>();
  let closing = false;

  function countAdmitted(now: number): void {
    const second = Math.floor(now / 1000);
    if (second !== windowSecond) {
      windowSecond = second;
      windowCount = 0;
    }
    windowCount += 1;
    stats.maxPerSecond = Math.max(stats.maxPerSecond, windowCount);
  }

  function delay(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pendingDelays.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      pendingDelays.add(done);
    });
  }

  function send(res: http.ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
    if (res.destroyed || res.writableEnded) return;
    const rateHeaders = bucket ? bucket.headers(Date.now()) : {};
    res.writeHead(status, { 'content-type': 'application/json', ...rateHeaders, ...extra });
    res.end(body);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    // The preflight is counted on its own (channelInfo): `requests` stays what tests compare lookups against.
    if (path === CHANNEL_ROUTE) return channelInfo(req, res);
    if (isOther(req)) return otherRequest(res);
    stats.requests += 1;
    if (path === WEBHOOKS_ROUTE) return listWebhooks(req, res);
    const match = USER_ROUTE.exec(path);
    if (!match?.[1]) return send(res, 404, JSON.stringify({ type: 'notFoundError', message: 'route not found' }));
    let memberId: string;
    try {
      memberId = decodeURIComponent(match[1]);
    } catch {
      return send(res, 400, JSON.stringify({ type: 'badRequestError', message: 'malformed memberId encoding' }));
    }
    if (req.method !== 'GET') return send(res, 405, JSON.stringify({ type: 'methodNotAllowed' }), { allow: 'GET' });
    if (o.countPerMember !== false) byMember.set(memberId, (byMember.get(memberId) ?? 0) + 1);

    if (!admit(req, res)) return;

    const faultState = faults.get(memberId);
    const fault = takeFault(faultState);
    await delay(faultState?.delayMs ?? 0);
    if (closing) {
      req.socket.destroy();
      return;
    }
    const user = deleted.has(memberId) ? undefined : (users.get(memberId) ?? o.lookupUser?.(memberId));
    switch (fault) {
      case 'reset':
        stats.faults += 1;
        req.socket.destroy();
        return;
      case 'status5xx':
        stats.faults += 1;
        return send(res, 503, JSON.stringify({ type: 'serviceUnavailableError', message: 'simulated outage' }));
      case 'malformed': {
        stats.faults += 1;
        const full = JSON.stringify({ user: user ?? { memberId }, online: null });
        return send(res, 200, full.slice(0, Math.max(1, Math.floor(full.length / 2))));
      }
      case 'status':
        stats.faults += 1;
        return send(res, faultState!.status!, JSON.stringify({ type: 'simulatedError', status: faultState!.status }));
      case undefined:
        break;
    }
    scheduleChange(memberId);
    if (!user) {
      stats.notFound += 1;
      return send(res, 404, JSON.stringify({ type: 'notFoundError', status: 404, message: 'User not found' }));
    }
    stats.ok += 1;
    send(res, 200, JSON.stringify({ user, online: null }));
  }

  function setUser(memberId: string, user: ChannelUser | null): void {
    if (user) {
      users.set(memberId, user);
      deleted.delete(memberId);
    } else {
      users.delete(memberId);
      deleted.add(memberId);
    }
  }

  /** After a member's first answered lookup: its change, once, then Channel Talk's live webhook for it. */
  function scheduleChange(memberId: string): void {
    const change = changes.get(memberId);
    if (!change) return;
    changes.delete(memberId);
    const timer = setTimeout(() => {
      changeTimers.delete(timer);
      setUser(memberId, change.user);
      const record: { memberId: string; at: number; liveStatus?: number } = { memberId, at: Date.now() };
      applied.push(record);
      if (!change.liveWebhookUrl) return;
      const body = change.user
        ? { event: 'upsert', type: 'user', entity: change.user, refers: {} }
        : { event: 'delete', type: 'user', entity: { memberId }, refers: {} };
      void fetch(change.liveWebhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(
        async (res) => {
          record.liveStatus = res.status;
          await res.arrayBuffer();
        },
        () => undefined,
      );
    }, change.afterMs);
    changeTimers.add(timer);
  }

  /** Both routes check credentials, then the rate limit, exactly as the real API would; false = answered. */
  function admit(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (req.headers['x-access-key'] !== accessKey || req.headers['x-access-secret'] !== accessSecret) {
      stats.unauthorized += 1;
      send(res, 401, JSON.stringify({ type: 'unauthorizedError', message: 'invalid access key or secret' }));
      return false;
    }
    const now = Date.now();
    const verdict = takeToken(res, now);
    if (verdict === 'refused') {
      stats.rateLimited += 1;
      return false;
    }
    if (verdict === 'warned') stats.throttleWarnings += 1;
    countAdmitted(now);
    return true;
  }

  /**
   * The channel's bucket, whoever calls: 'refused' has been answered 429; 'warned' (grace period) goes on with the
   * warning header set on `res`.
   */
  function takeToken(res: http.ServerResponse, now: number): 'admitted' | 'warned' | 'refused' {
    if (!bucket || bucket.take(now)) return 'admitted';
    if (grace) {
      res.setHeader('x-ratelimit-will-be-throttled', 'true');
      return 'warned';
    }
    const retryAfter = Math.max(1, Math.ceil(bucket.msUntilToken(now) / 1000));
    const extra: Record<string, string> = sendRetryAfter ? { 'retry-after': String(retryAfter) } : {};
    send(res, 429, JSON.stringify({ type: 'tooManyRequestsError', message: 'rate limit exceeded' }), extra);
    return 'refused';
  }

  function isOther(req: http.IncomingMessage): boolean {
    const key = req.headers['x-access-key'];
    return typeof key === 'string' && others.has(key) && others.get(key) === req.headers['x-access-secret'];
  }

  /** The customer's production: any route answers 200 from the shared bucket (what it asks does not matter). */
  function otherRequest(res: http.ServerResponse): void {
    otherStats.requests += 1;
    const verdict = takeToken(res, Date.now());
    if (verdict === 'refused') {
      otherStats.rateLimited += 1;
      return;
    }
    if (verdict === 'warned') otherStats.throttleWarnings += 1;
    otherStats.ok += 1;
    send(res, 200, JSON.stringify({ user: null, online: null }));
  }

  /** `GET /open/v5/channel`: the channel of the credentials, behind the same credentials check and rate limit. */
  function channelInfo(req: http.IncomingMessage, res: http.ServerResponse): void {
    stats.channelInfo += 1;
    if (req.method !== 'GET') return send(res, 405, JSON.stringify({ type: 'methodNotAllowed' }), { allow: 'GET' });
    if (!admit(req, res)) return;
    send(
      res,
      200,
      JSON.stringify({ channel: { id: channel.id, name: channel.name, homepageUrl: null, country: 'KR' } }),
    );
  }

  /** `GET /open/v5/webhooks`: the same credentials check and rate limit as the users route. */
  function listWebhooks(req: http.IncomingMessage, res: http.ServerResponse): void {
    stats.webhookLists += 1;
    if (req.method !== 'GET') return send(res, 405, JSON.stringify({ type: 'methodNotAllowed' }), { allow: 'GET' });
    if (!admit(req, res)) return;
    const query = new URL(req.url ?? '/', 'http://simulator.invalid').searchParams;
    const limitText = query.get('limit');
    const limit = limitText === null ? WEBHOOK_PAGE_DEFAULT : Number(limitText);
    const sinceText = query.get('since');
    const since = sinceText === null ? undefined : Number(sinceText);
    if (
      !Number.isInteger(limit) ||
      limit < 1 ||
      limit > WEBHOOK_PAGE_MAX ||
      (since !== undefined && !Number.isFinite(since))
    ) {
      return send(res, 422, JSON.stringify({ type: 'unprocessableEntityError', message: 'invalid limit or since' }));
    }
    const start = since === undefined ? 0 : webhooks.findIndex((w) => w.createdAt <= since);
    const page = start < 0 ? [] : webhooks.slice(start, start + limit);
    const after = start < 0 ? undefined : webhooks[start + limit];
    send(res, 200, JSON.stringify(after ? { webhooks: page, next: after.createdAt } : { webhooks: page }));
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, JSON.stringify({ type: 'internalServerError' }));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    stats: () => ({ ...stats, others: { ...otherStats }, byMember: new Map(byMember) }),
    setCredentials(key, secret) {
      accessKey = key;
      accessSecret = secret;
    },
    setFaults(next) {
      faults = toFaultStates(next);
    },
    setRateLimit(r) {
      bucket = r ? new TokenBucket(r.perSecond, r.burst) : undefined;
    },
    setGrace(next) {
      grace = next;
    },
    setWebhooks(next) {
      webhooks = toWebhookList(next);
    },
    setChanges(next) {
      changes = new Map(Object.entries(next));
    },
    setUser,
    user: (memberId) => (deleted.has(memberId) ? undefined : (users.get(memberId) ?? o.lookupUser?.(memberId))),
    changesApplied: () => applied.map((a) => ({ ...a })),
    async close() {
      closing = true;
      for (const timer of changeTimers) clearTimeout(timer);
      for (const finish of [...pendingDelays]) finish();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

const usersFileSchema = z.object({
  users: z.array(channelUserCheck.extend({ memberId: z.string().min(1) })),
});

/** Reads `{"users":[ ...ChannelUser ]}`; every user needs a memberId, unknown fields are kept. */
export async function loadChannelUsers(file: string): Promise<ChannelUser[]> {
  const text = await readFile(file, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${file}: not valid JSON`);
  }
  const parsed = usersFileSchema.safeParse(json);
  if (!parsed.success) {
    // Paths and codes only: the file holds personal data and zod messages may quote values.
    const where = parsed.error.issues.slice(0, 5).map((i) => `${i.path.map(String).join('.') || '(root)'} (${i.code})`);
    throw new Error(`${file}: not a channel users file: ${where.join(', ')}`);
  }
  // Served as written (every key and null kept), as Channel Talk would: the schema only checks them.
  return (json as { users: ChannelUser[] }).users;
}
